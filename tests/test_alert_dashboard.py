"""The dashboard's side of alerts: the notifications line on the incidents screen and the
terminal bell for ``bell`` channel notices, with Pilot over a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from store.alerting import trial_notice
from store.db import open_db
from store.notifications import queue_notice
from tests import dashboard_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp
from tui.widgets import Drawing


def _queue(db_path: Path, channel: str, channel_type: str, status: str, result: str) -> None:
    db = open_db(db_path)
    try:
        row = queue_notice(db, trial_notice(channel, "lab", NOW), {channel: channel_type}, NOW)[0]
        db.execute(
            "UPDATE notifications SET status = ?, result = ?, attempts = 1 WHERE id = ?",
            [status, result, row],
        )
        db.conn.commit()
    finally:
        db.close()


async def test_notifications_line_and_bell(tmp_path: Path) -> None:
    db_path = dashboard_fixture.build(tmp_path / "dash.db")
    _queue(db_path, "ops", "webhook", "failed", "HTTP 500")
    app = InferwatchApp(db_path, window_s=3600, source_label="t", clock=lambda: NOW, refresh_s=1)
    rung: list[int] = []
    app.bell = lambda: rung.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None:
                break
        assert rung == []  # what was there before the dashboard opened never rings
        await pilot.press("i")
        await pilot.pause(0.2)
        text = app.screen.query_one("#incidents-all", Drawing).text.plain
        assert "Notifications: 0 sent · 1 failed" in text
        assert "test test:ops → ops: failed (HTTP 500)" in text
        _queue(db_path, "bell", "bell", "sent", "for the dashboard's bell")
        for _ in range(60):
            await pilot.pause(0.1)
            if rung:
                break
        assert rung == [1]
        text = app.screen.query_one("#incidents-all", Drawing).text.plain
        assert "Notifications: 1 sent · 1 failed" in text

"""The dashboard and its prober's life (issue #11), via Pilot over a real SQLite file.

* A dead prober: the status line says where its log is and how to restart it; ``r`` and
  ``p`` say it is not running instead of queueing commands nobody takes.
* The database replaced under the dashboard is noticed within seconds and read afresh; a
  deleted one is said on the status line.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

from textual.pilot import Pilot

from probes.timestamps import iso
from tests import dashboard_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp
from tui.prober_lock import lock_path
from tui.widgets import Drawing


def status(app: InferwatchApp) -> str:
    return app.screen.query_one("#status", Drawing).text.plain


def notes(app: InferwatchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def until(pilot: Pilot[None], what: str, check: object, seconds: float = 8.0) -> None:
    for _ in range(int(seconds / 0.1)):
        await pilot.pause(0.1)
        if check():  # type: ignore[operator]
            return
    raise AssertionError(f"timed out waiting for {what}")


def _commands(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM commands").fetchone()[0])
    finally:
        conn.close()


async def test_a_dead_prober_says_where_its_log_is_and_keys_say_so(tmp_path: Path) -> None:
    db = dashboard_fixture.build(tmp_path / "dash.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE prober SET heartbeat_at = ?", [iso(NOW - timedelta(minutes=3))])
    conn.commit()
    conn.close()
    restart = f"inferwatch run --headless --db {db}"
    lock_path(db).write_text(
        json.dumps(
            {
                "pid": 4242,
                "host": "h",
                "since": iso(NOW - timedelta(hours=1)),
                "log": "/var/log/inferwatch-prober.log",
                "restart": restart,
            }
        )
    )
    app = InferwatchApp(db, window_s=3600, source_label="test", clock=lambda: NOW)
    async with app.run_test(size=(400, 30)) as pilot:
        await until(pilot, "the hint", lambda: "its log:" in status(app))
        line = status(app)
        assert "prober not running since" in line and line.count("not running") == 1
        assert "its log: /var/log/inferwatch-prober.log" in line
        assert f"restart: {restart}" in line
        before = _commands(db)
        await pilot.press("r", "p", "R")
        await pilot.pause(0.3)
        said = [n for n in notes(app) if n.startswith("prober not running:")]
        assert len(said) == 3 and "probe now not sent" in said[0] and "pause not sent" in said[1]
        assert all("/var/log/inferwatch-prober.log" in n for n in said)
        assert _commands(db) == before, "nothing was queued for a prober that is not there"


async def test_a_replaced_or_deleted_database_is_said_and_read_afresh(tmp_path: Path) -> None:
    db = dashboard_fixture.build(tmp_path / "dash.db")
    app = InferwatchApp(db, window_s=3600, source_label="test", clock=lambda: NOW)
    async with app.run_test(size=(240, 30)) as pilot:
        await until(pilot, "the first snapshot", lambda: app.snap is not None)
        assert app.snap is not None and app.snap.targets
        # Another file at the path: the same schema, no targets published.
        fresh = tmp_path / "fresh.db"
        src, dst = sqlite3.connect(db), sqlite3.connect(fresh)
        src.backup(dst)
        dst.execute("DELETE FROM targets")
        dst.commit()
        src.close()
        dst.close()
        os.replace(fresh, db)
        await until(pilot, "replaced", lambda: "database replaced at" in status(app))
        await until(
            pilot, "the new file read", lambda: app.snap is not None and not app.snap.targets
        )
        os.unlink(db)
        await until(pilot, "deleted", lambda: "database deleted at" in status(app))
        assert "nothing is stored" in status(app)

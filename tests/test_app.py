"""The dashboard, driven with App.run_test() and Pilot over a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from probes.record import ProbeRecord
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget
from store.queries import iso
from tui.app import HelpScreen, InferwatchApp, visible_columns


def _status_text(app: InferwatchApp) -> str:
    return str(app.query_one("#status", Static).render())


def _rows(app: InferwatchApp) -> list[list[str]]:
    table = app.query_one("#targets", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "dash.db"
    db = open_db(path)
    control.publish_targets(
        db,
        [
            control.PublishedTarget("fast", "groq", "llama", "chat", 30, True, False),
            control.PublishedTarget("broken", "openai", "gpt", "chat", 30, True, False),
            control.PublishedTarget("nokey", "anthropic-ish", "claude", None, 30, False, False),
        ],
    )
    now = datetime.now(UTC)
    history = HistoryWriter(
        db,
        [
            MonitoredTarget("fast", "api.groq.example"),
            MonitoredTarget("broken", "api.openai.example"),
            MonitoredTarget("nokey", "api.other.example", configured=False),
        ],
        now - timedelta(hours=1),
    )
    for i in range(20):
        history.store_probe(
            ProbeRecord(
                started_at=iso(now - timedelta(seconds=30 * (20 - i))),
                target="fast",
                provider="groq",
                model="llama",
                status="ok",
                ttft_ms=100.0 + i,
                total_ms=400.0,
                decode_tps=300.0,
                output_tokens=40,
                input_tokens=20,
                cost_usd=0.00004,
            ),
        )
    for i in range(4):
        history.store_probe(
            ProbeRecord(
                started_at=iso(now - timedelta(seconds=30 * (4 - i))),
                target="broken",
                provider="openai",
                model="gpt",
                status="error",
                error_kind="server_error",
                http_status=500,
                error_message="HTTP 500: boom",
            ),
        )
    control.heartbeat(db, pid=4242, paused=False, config_path="test.toml")
    db.close()
    return path


async def test_every_target_visible_at_80x24(db_path: Path) -> None:
    app = InferwatchApp(db_path, window_s=3600, source_label="test")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        rows = _rows(app)
        assert [r[1].strip() for r in rows] == ["fast", "broken", "nokey"]
        states = [r[0].strip() for r in rows]
        assert states == ["✔ up", "✖ down", "○ not configured"]
        fast = rows[0]
        assert fast[2].strip() == "110"  # P50 of 100..119 ms
        assert "$0.000040" in fast[6]
        assert "probing" in _status_text(app)
        detail = str(app.query_one("#detail-text", Static).render())
        assert "fast" in detail and "P50 110 ms" in detail


async def test_detail_follows_the_cursor_and_shows_the_error(db_path: Path) -> None:
    app = InferwatchApp(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        await pilot.press("down")
        detail = str(app.query_one("#detail-text", Static).render())
        assert "broken" in detail and "server_error: HTTP 500: boom" in detail


async def test_help_opens_and_closes(db_path: Path) -> None:
    app = InferwatchApp(db_path)
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_pause_and_probe_now_reach_the_prober(db_path: Path) -> None:
    app = InferwatchApp(db_path)
    async with app.run_test() as pilot:
        await pilot.pause(0.3)
        await pilot.press("p")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        db = open_db(db_path)
        taken = [c.command for c in control.take_commands(db)]
        assert taken == ["pause", "probe_now"]
        # The prober takes the pause and says so in its heartbeat; the dashboard shows it.
        control.heartbeat(db, pid=4242, paused=True, config_path="test.toml")
        db.close()
        await pilot.pause(1.6)
        assert "PAUSED" in _status_text(app)
        assert "waiting for prober" not in _status_text(app)


async def test_window_key_cycles(db_path: Path) -> None:
    app = InferwatchApp(db_path, window_s=3600)
    async with app.run_test() as pilot:
        await pilot.press("w")
        assert app.window_s == 86400
        for _ in range(30):  # the 24 h view reads rollups in a worker; allow a busy machine
            await pilot.pause(0.1)
            if "window 24h" in _status_text(app):
                break
        assert "window 24h" in _status_text(app)


async def test_stale_heartbeat_says_monitor_blind(db_path: Path) -> None:
    db = open_db(db_path)
    db.execute(
        "UPDATE prober SET heartbeat_at = ?", [iso(datetime.now(UTC) - timedelta(minutes=5))]
    )
    db.close()
    app = InferwatchApp(db_path)
    async with app.run_test() as pilot:
        await pilot.pause(0.5)
        assert "prober NOT RUNNING" in _status_text(app)
        assert app.query_one("#status").has_class("blind")


async def test_too_small_then_resized_back(db_path: Path) -> None:
    app = InferwatchApp(db_path)
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause(0.3)
        assert app.screen.has_class("too-small")
        assert "Terminal too small: 50x12" in str(app.query_one("#too-small", Static).render())
        await pilot.resize_terminal(120, 30)
        await pilot.pause(0.3)
        assert not app.screen.has_class("too-small")
        assert len(app.query_one("#targets", DataTable).columns) > 8


async def test_quit_keys(db_path: Path) -> None:
    for key in ("q", "ctrl+c"):
        app = InferwatchApp(db_path)
        async with app.run_test() as pilot:
            await pilot.press(key)
            await pilot.pause(0.1)
        assert app.return_code == 0


async def test_empty_database_first_paint_says_no_data(tmp_path: Path) -> None:
    app = InferwatchApp(tmp_path / "new.db")
    async with app.run_test() as pilot:
        await pilot.pause(0.5)
        assert "No targets yet" in str(app.query_one("#detail-text", Static).render())
        assert "never ran" in _status_text(app)


def test_columns_drop_by_priority() -> None:
    narrow = [c.key for c in visible_columns(80)]
    assert narrow[:4] == ["state", "target", "p50", "p99"] and "age" in narrow
    assert sum(c.width for c in visible_columns(80)) <= 79
    wide = [c.key for c in visible_columns(200)]
    assert {"p95", "trend", "model"} <= set(wide)

"""The dashboard, driven with App.run_test() and Pilot over a real SQLite file.

Every key and every screen has a test here; layout is checked by the snapshot tests in
``test_snapshots.py``. The database is the deterministic fixture of ``dashboard_fixture.py``
and the app's clock is fixed at its ``NOW``.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rich.table import Table
from textual.pilot import Pilot

from probes.timestamps import iso
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget
from store.reader import SnapshotReader
from tests import dashboard_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp
from tui.messages import CommandFailed, CommandSent, ReadFailed, SnapshotReady
from tui.reader import DatabaseReader, ReadRequest, SendCommand
from tui.screens import (
    CompareScreen,
    CostScreen,
    DetailScreen,
    HelpScreen,
    IncidentsScreen,
    OverviewScreen,
    TooSmallScreen,
)
from tui.table import TargetTable, visible_columns
from tui.widgets import Drawing


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return dashboard_fixture.build(tmp_path / "dash.db")


def make_app(db: Path, **kwargs: object) -> InferwatchApp:
    return InferwatchApp(db, window_s=3600, source_label="test", clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


async def loaded(pilot: Pilot[None], app: InferwatchApp, detail: bool = False) -> None:
    """Wait until a snapshot (and, if asked, the detail) has been drawn."""
    for _ in range(100):
        await pilot.pause(0.05)
        if app.snap is not None and (not detail or app.snap.detail is not None):
            await pilot.pause()
            return
    raise AssertionError("no snapshot within 5 s")


async def settled(app: InferwatchApp) -> None:
    """Wait for the command and export workers (not the long-lived reader)."""
    busy = [w for w in app.workers if w.group != "reader"]
    if busy:  # an empty list would mean "every worker", the reader included
        await app.workers.wait_for_complete(busy)


def status(app: InferwatchApp) -> str:
    return app.screen.query_one("#status", Drawing).text.plain


def drawing(app: InferwatchApp, selector: str) -> str:
    return app.screen.query_one(selector, Drawing).text.plain


def table(app: InferwatchApp) -> TargetTable:
    return app.screen.query_one(TargetTable)


async def test_overview_groups_primary_and_fallback_at_80x24(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        t = table(app)
        assert t.keys == [
            "group:chat",
            "chat-primary",
            "chat-fallback",
            "fast-llama",
            "reasoner",
            "flaky-mix",
            "local-llm",
            "no-key",
        ]
        rows = t.row_texts()
        assert "primary ✖ down · fallback ✔ up" in rows[0]
        assert rows[1].split()[:3] == ["✖", "down", "4m"]
        assert "├ chat-primary" in rows[1] and "└◆chat-fallba" in rows[2]
        assert "▲ degraded" in rows[5] and "○ not configured" in rows[7]
        assert all(len(r) <= 79 for r in rows)  # never wraps
        # uptime and the share of the window seen; $/req makes room for the state words
        assert "85.0%" in rows[1] and "99%" in rows[1] and "$0.000525" not in rows[1]
        assert "● prober up since 10:59:55Z" in status(app)
        assert t.cursor_key == "chat-primary"
        selected = drawing(app, "#selected")
        assert "since 11:55:01Z: 3 consecutive failures" in selected
        assert "HTTP 503: upstream unavailable" in selected
        incidents = drawing(app, "#incidents")
        assert incidents.index("chat-primary") < incidents.index("flaky-mix")
        assert "OPEN" in incidents


def test_columns_drop_by_priority() -> None:
    narrow = [c.key for c in visible_columns(80)]
    assert narrow[:4] == ["state", "since", "target", "p50"]
    assert {"p99", "tps", "err", "uptime", "seen", "age"} <= set(narrow)
    # On-call's columns before latency detail and cost: "○ not configured" takes 17 cells.
    assert "cost" not in narrow and "p95" not in narrow
    assert sum(c.width for c in visible_columns(80)) <= 79
    wide = [c.key for c in visible_columns(200)]
    assert {"p95", "cost", "dist", "trend", "headroom", "kind", "model"} <= set(wide)
    assert [c.key for c in visible_columns(30)][:2] == ["state", "target"]
    # A fleet that is all up ("✔ up", narrower than the header): its 12 spare cells show P95
    # and the cost per request at 80 columns, and the row still fits.
    all_up = visible_columns(80, len("state"))
    assert {"p95", "cost"} <= {c.key for c in all_up}
    assert sum(c.width for c in all_up) <= 79
    assert next(c.width for c in all_up if c.key == "state") == 6


async def test_cursor_moves_over_targets_only_and_the_panel_follows(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.press("up")  # the group row above is not selectable
        assert table(app).cursor_key == "chat-primary"
        await pilot.press("down", "j")
        assert table(app).cursor_key == "fast-llama"
        await pilot.pause()
        assert drawing(app, "#selected").startswith("fast-llama")
        await pilot.press("k")
        assert table(app).cursor_key == "chat-fallback"
        await pilot.press("end")
        assert table(app).cursor_key == "no-key"
        await pilot.press("home")
        assert table(app).cursor_key == "chat-primary"


async def test_click_selects_then_opens(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.click(TargetTable, offset=(20, 4))  # header, group, primary, fallback
        assert table(app).cursor_key == "fast-llama"
        await pilot.click(TargetTable, offset=(20, 4))
        assert isinstance(app.screen, DetailScreen)


async def test_enter_opens_the_detail_and_esc_goes_back(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(120, 60)) as pilot:
        await loaded(pilot, app)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await loaded(pilot, app, detail=True)
        await pilot.pause(0.1)
        assert "TTFT histogram" in drawing(app, "#ttft-hist")
        assert "▲P50" in drawing(app, "#ttft-hist") and "▲P99" in drawing(app, "#total-hist")
        assert "TTFT over time" in drawing(app, "#ttft-trend")
        assert "Decode tok/s over time" in drawing(app, "#tps-trend")
        errors = drawing(app, "#errors")
        assert "server_error" in errors and "last: HTTP 503: upstream unavailable" in errors
        recent = drawing(app, "#recent")
        assert "✖ server_error" in recent and "HTTP 503: upstream unavailable" in recent
        history = drawing(app, "#history")
        assert "✖ down" in history and "OPEN" in history and "✔ up" in history
        assert "uptime 1h 85.0% (99% seen), 24h 85.0% (4% seen)" in drawing(app, "#head")
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("backspace")
        assert isinstance(app.screen, OverviewScreen)
        assert app.snap is not None


async def test_compare_marks_fastest_and_cheapest(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        await pilot.pause()
        text = drawing(app, "#compare")
        lines = text.splitlines()

        def line_of(section: str, name: str) -> str:
            start = next(i for i, line in enumerate(lines) if line.startswith(section))
            return next(line for line in lines[start:] if line.startswith(name))

        assert "◆ fastest" in line_of("TTFT distribution", "local-llm")
        assert "◆ most tok/s" in line_of("Decode speed", "fast-llama")
        assert "◆ cheapest" in line_of("Cost per request", "local-llm")
        # The down primary does not compete, but is still drawn on the same axes.
        assert "◆" not in line_of("TTFT distribution", "chat-primary")
        assert "┃" in line_of("TTFT distribution", "chat-primary")
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_incidents_screen_lists_open_and_recent_newest_first(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("i")
        assert isinstance(app.screen, IncidentsScreen)
        await pilot.pause()
        lines = drawing(app, "#incidents-all").splitlines()
        body = [line for line in lines if line.startswith(("✖", "▲"))]
        assert [line.split()[2] for line in body] == [
            "chat-primary",
            "chat-primary",
            "flaky-mix",
            "flaky-mix",
        ]
        assert "OPEN" in body[0] and "OPEN" not in body[1]
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_cost_screen_marks_cheapest_and_fastest(db_path: Path) -> None:
    app = make_app(db_path, config=dashboard_fixture.config())
    async with app.run_test(size=(160, 50)) as pilot:
        await loaded(pilot, app)
        await pilot.press("dollar_sign")
        assert isinstance(app.screen, CostScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if app.cost is not None:
                break
        await pilot.pause(0.1)
        assert app.cost is not None and app.cost.projections is not None
        lines = [
            "".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()
        ]
        text = "\n".join(lines)
        assert "support-chat: 20,000 requests/day" in text and "Cost of monitoring" in text
        local = next(line for line in lines if "local-llm" in line)
        assert "cheapest" in local  # free
        fast = next(line for line in lines if "fast-llama" in line)
        assert "fastest" in fast  # TTFT + 300 tokens at 385 tok/s beats local's 27 tok/s
        primary = next(line for line in lines if "chat-primary" in line)
        assert "cheapest" not in primary
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_help_lists_every_key(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        grid = next(w.content for w in app.screen.query("Static") if isinstance(w.content, Table))
        keys = [str(cell) for cell in grid.columns[0].cells]
        assert all(str(cell) for cell in grid.columns[1].cells)
        # The README's key table, written out here: a key dropped from (or added to) the
        # bindings must change this list.
        assert keys == [
            "q, ctrl+c",
            "?, f1",
            "↑ ↓ j k",
            "i",
            "enter",
            "p",
            "r",
            "w",
            "/",
            "s",
            "c",
            "$",
            "e",
            "P",
            "R",
            "escape",
            "escape, backspace",
        ]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # closes the help, does not quit
        assert isinstance(app.screen, OverviewScreen)


async def test_window_key_changes_every_figure(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        assert app.snap is not None
        hour = {s.name: s.count for s in app.snap.targets}
        await pilot.press("w")
        assert app.window_s == 86400
        for _ in range(60):
            await pilot.pause(0.05)
            if app.snap.window_s == 86400:
                break
        assert "window 24h" in status(app)
        day = {s.name: s for s in app.snap.targets}
        assert day["fast-llama"].from_rollups and day["fast-llama"].count == hour["fast-llama"]
        assert day["fast-llama"].window_uptime is not None
        assert day["fast-llama"].window_uptime.window_s == 86400
        assert day["fast-llama"].trend is not None
        assert day["fast-llama"].trend.step_s == 3600  # hour rollups, not minute rows
        await pilot.press("w", "w")
        assert app.window_s == 900
        for _ in range(60):
            await pilot.pause(0.05)
            if app.snap.window_s == 900:
                break
        quarter = {s.name: s.count for s in app.snap.targets}
        assert quarter["fast-llama"] == 30  # 15 min of 30 s probes
        assert "window 15m" in status(app)


async def test_filter_and_escape(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.press("slash")
        await pilot.press(*"llama")
        await pilot.pause()
        assert table(app).keys == ["fast-llama"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert isinstance(app.focused, TargetTable)
        assert "filter “llama”" in status(app)
        await pilot.press("slash")
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace")
        await pilot.press(*"chat", "enter")
        assert table(app).keys == ["group:chat", "chat-primary", "chat-fallback"]
        await pilot.press("escape")
        assert len(table(app).keys) == 8
        assert "filter" not in status(app)


async def test_sort_cycles_and_keeps_groups_together(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.press("s")  # worst state first
        assert app.sort == "state"
        assert table(app).keys[:4] == ["group:chat", "chat-primary", "chat-fallback", "flaky-mix"]
        await pilot.press("s")  # fastest P50 first
        assert table(app).keys[:2] == ["local-llm", "fast-llama"]
        await pilot.press("s", "s")  # cheapest first
        assert app.sort == "cost" and table(app).keys[0] == "local-llm"
        await pilot.press("s", "s")
        assert app.sort == "config" and table(app).keys[0] == "group:chat"
        assert table(app).cursor_key == "chat-primary"  # the cursor stayed on its target


async def take(db_path: Path) -> list[tuple[str, str | None]]:
    db = open_db(db_path)
    try:
        return [(c.command, c.target) for c in control.take_commands(db)]
    finally:
        db.close()


async def test_pause_and_probe_keys_reach_the_prober_and_show_done(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("p")
        await settled(app)
        await pilot.pause()
        assert "⧗ pause chat-primary: sent" in status(app)
        await pilot.press("r", "P", "R")
        await settled(app)
        assert await take(db_path) == [
            ("pause", "chat-primary"),
            ("probe_now", "chat-primary"),
            ("pause", None),
            ("probe_now", None),
        ]
        # The prober applies the pause as it would: published flag and outage history.
        db = open_db(db_path)
        control.set_target_paused(db, "chat-primary", True)
        HistoryWriter(db, [MonitoredTarget("chat-primary", "x")], NOW).set_paused(
            "chat-primary", True, NOW
        )
        db.close()
        for _ in range(60):
            await pilot.pause(0.05)
            if "⧗" not in status(app):
                break
        assert "✔ probe now all: done" in status(app)  # the newest confirmation
        await pilot.pause(0.2)
        assert table(app).row_texts()[1].lstrip().startswith("‖ paused")
        # p on a paused target resumes it.
        await pilot.press("p")
        await settled(app)
        assert await take(db_path) == [("resume", "chat-primary")]


async def test_pause_from_the_detail_screen_acts_on_its_target(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("p", "r")
        await settled(app)
        assert await take(db_path) == [("pause", "fast-llama"), ("probe_now", "fast-llama")]


async def test_export_writes_the_window_and_says_where(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    app = make_app(db_path, export_dir=out)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        await pilot.press("e")
        await settled(app)
        await pilot.pause(0.1)
        (written,) = out.glob("inferwatch-all-1h-*.csv")
        assert written.read_text().count("\n") == 1 + 6 * 120  # header + every probe
        assert any(str(written) in n.message for n in app._notifications)
        # From the detail screen only that target is exported.
        await pilot.press("enter", "e")
        await settled(app)
        (one,) = out.glob("inferwatch-chat-primary-1h-*.csv")
        assert one.read_text().count("\n") == 1 + 120


async def test_stale_heartbeat_says_monitor_blind(db_path: Path) -> None:
    db = open_db(db_path)
    db.execute("UPDATE prober SET heartbeat_at = ?", [iso(NOW - timedelta(minutes=5))])
    db.close()
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        assert "✖ MONITOR BLIND: prober not running since 11:55:00Z" in status(app)
        assert app.screen.query_one("#status").has_class("blind")
        assert all("? stale" in r for r in table(app).row_texts()[1:7])


async def test_too_small_then_resized_back(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.screen, TooSmallScreen)
        message = str(app.screen.query_one("#too-small").render())
        assert "Terminal too small: 50x12" in message and "at least 60x15" in message
        await pilot.resize_terminal(200, 50)
        await pilot.pause(0.3)
        assert isinstance(app.screen, OverviewScreen)
        assert table(app).row_texts()[1].count(" ") > 20
        assert "TTFT dist" in table(app)._header and "model" in table(app)._header
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert "TTFT dist" not in table(app)._header
        assert all(len(r) <= 79 for r in table(app).row_texts())
        await pilot.resize_terminal(40, 10)
        await pilot.pause(0.2)
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_quit_keys(db_path: Path) -> None:
    for key in ("q", "ctrl+c"):
        app = make_app(db_path)
        async with app.run_test() as pilot:
            await loaded(pilot, app)
            await pilot.press(key)
            await pilot.pause(0.1)
        assert app.return_code == 0


async def test_exits_when_the_terminal_goes_away(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a TTY any more
        app._watch_terminal()
        await pilot.pause(0.1)
    assert app.return_code == 0


async def test_empty_database_first_paint_says_no_data(tmp_path: Path) -> None:
    app = InferwatchApp(tmp_path / "new.db", clock=lambda: NOW)
    started = time.perf_counter()
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        assert time.perf_counter() - started < 1.0
        assert (
            "no data yet: waiting for the prober to create the database"
            in (table(app).row_texts()[0])
        )
        assert "No targets yet" in drawing(app, "#selected")
        assert "none: no target was degraded" in drawing(app, "#incidents")
        assert "no prober has run" in status(app)


async def test_no_color_keeps_state_words(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        assert app.no_color
        rows = table(app).row_texts()
        assert "✖ down" in rows[1] and "✔ up" in rows[2] and "▲ degraded" in rows[5]


async def test_refreshes_never_overlap_and_coalesce(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = 0
    peak = 0
    starts: list[float] = []
    real = SnapshotReader.read

    def slow_read(self: SnapshotReader, *args: object, **kwargs: object) -> object:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        starts.append(time.monotonic())
        time.sleep(0.15)
        active -= 1
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SnapshotReader, "read", slow_read)
    app = make_app(db_path)
    async with app.run_test() as pilot:
        await loaded(pilot, app)
        burst = time.monotonic()
        for _ in range(20):  # a burst of refresh requests (keys, commands, resizes)
            app.request_refresh()
        await pilot.pause(3.5)
    assert peak == 1
    after = [t for t in starts if t >= burst]
    # The burst costs at most the read in flight plus one for the rest (not 20) ...
    assert 1 <= len([t for t in after if t < burst + 0.5]) <= 2, after
    # ... and then one timer again: reads a second apart, never two timers racing.
    settled = [t for t in after if t >= burst + 0.5]
    assert settled and all(b - a >= 0.99 for a, b in itertools.pairwise(settled)), settled


async def test_refresh_is_at_most_once_a_second(db_path: Path) -> None:
    app = make_app(db_path)
    reads: list[float] = []
    async with app.run_test() as pilot:
        snapshots = app.reader.snapshots
        real = snapshots.read

        def counted(*args: object, **kwargs: object) -> object:
            reads.append(time.monotonic())
            return real(*args, **kwargs)  # type: ignore[arg-type]

        snapshots.read = counted  # type: ignore[method-assign]
        await asyncio.sleep(3.2)
        await pilot.pause()
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert 2 <= len(reads) <= 4 and all(g >= 0.99 for g in gaps)


def test_the_reader_coalesces_what_piles_up_during_a_read(db_path: Path) -> None:
    """While a read runs, 20 read requests and two commands pile up: both commands are sent
    in order, then one read of the newest request; never one read per request."""
    posted: list[object] = []
    second = threading.Event()

    def post(message: object) -> None:
        posted.append(message)
        if [type(m) for m in posted].count(SnapshotReady) == 2:
            second.set()

    reader = DatabaseReader(db_path, post, lambda: NOW)
    reading, release = threading.Event(), threading.Event()
    windows: list[float] = []
    real = reader.snapshots.read

    def blocking_read(window_s: float, now: object = None, detail: object = None) -> object:
        windows.append(window_s)
        reading.set()
        release.wait(5)
        return real(window_s, NOW, None)

    reader.snapshots.read = blocking_read  # type: ignore[assignment,method-assign]
    thread = threading.Thread(target=reader.run)
    thread.start()
    try:
        reader.submit(ReadRequest(900.0))
        assert reading.wait(5)
        for i in range(20):
            reader.submit(ReadRequest(3600.0 + i))
        reader.submit(SendCommand("pause", "chat-primary"))
        reader.submit(SendCommand("probe_now"))
        release.set()
        assert second.wait(5)
    finally:
        reader.stop()
        thread.join(5)
    assert windows == [900.0, 3619.0]
    sent = [m.what for m in posted if isinstance(m, CommandSent)]
    assert sent == ["pause chat-primary", "probe now all"]
    assert [type(m) for m in posted].count(SnapshotReady) == 2


def test_the_reader_survives_a_database_it_cannot_open(tmp_path: Path) -> None:
    """A command or a read against a missing or broken file is a message; the reader thread
    keeps serving (it would otherwise die and the dashboard stop refreshing)."""
    posted: list[object] = []
    answered = threading.Event()

    def post(message: object) -> None:
        posted.append(message)
        if isinstance(message, ReadFailed):
            answered.set()

    missing = DatabaseReader(tmp_path / "none.db", post, lambda: NOW)
    missing.submit(SendCommand("pause", "a"))
    missing.stop()
    missing.run()
    (failed,) = posted
    assert isinstance(failed, CommandFailed)
    assert failed.error == "waiting for the prober to create the database"

    posted.clear()
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database, just text " * 100)
    reader = DatabaseReader(broken, post, lambda: NOW)
    thread = threading.Thread(target=reader.run)
    thread.start()
    try:
        reader.submit(SendCommand("probe_now"))
        reader.submit(ReadRequest(3600.0))
        assert answered.wait(5)
    finally:
        reader.stop()
        thread.join(5)
    assert [type(m) for m in posted] == [CommandFailed, ReadFailed]


async def test_on_calls_view_at_80x24(db_path: Path) -> None:
    """Issue 11: the one-line summary, the group's best target now, "○ not configured"
    naming the variable to set, and the keys on-call needs in the footer."""
    app = make_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert drawing(app, "#summary") == "✔ 4 up · ▲ 1 degraded · ✖ 1 down · ○ 1 not configured"
        rows = table(app).row_texts()
        # The primary is down: the fallback is where traffic should go now (◆ in its branch).
        assert "├ chat-primary" in rows[1] and "└◆chat-fallba" in rows[2]
        footer = app.screen._compositor.render_strips()[-1].text
        assert footer.startswith(" q quit  ? keys  i incidents")
        await pilot.press("end")
        await pilot.pause(0.2)
        assert table(app).cursor_key == "no-key"
        selected = drawing(app, "#selected")
        assert "○ not configured" in selected
        assert "set ANTHROPIC_API_KEY and restart the prober" in selected


async def test_the_help_wraps_at_80_columns(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        screen = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        # The longest description continues on the next line instead of being cut.
        assert "Cost: feature projections (cheapest, fastest) and" in screen
        assert "cost of monitoring" in screen

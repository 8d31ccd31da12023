"""Issue 11, the incidents panel at 80x24: open outages pinned first, a flaky target's blips
folded into one line, and the ``i`` screen's severity filter. Real SQLite file, real outage
writer, the real app through Pilot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.pilot import Pilot

from store import control
from store.db import open_db
from store.health import State
from store.history import HistoryWriter, MonitoredTarget
from store.incidents import Incident, recent_incidents
from tests.history_helpers import record, set_heartbeat
from tui.app import InferwatchApp
from tui.incident_list import arrange
from tui.screens import IncidentsScreen
from tui.widgets import Drawing

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def build(path: Path) -> Path:
    """``steady`` goes down 10 minutes ago and stays down; ``flaky`` has 12 blips of 6 s
    after it (a 429, then successes: one in seven probes, under the error-rate rule), a
    probe every 6 s."""
    db = open_db(path)
    names = ["steady", "flaky"]
    control.publish_targets(
        db,
        [
            control.PublishedTarget(n, "openai-compatible", "m", None, 10.0, True, False)
            for n in names
        ],
    )
    start = NOW - timedelta(minutes=10)
    writer = HistoryWriter(db, [MonitoredTarget(n, f"{n}.example") for n in names], start)
    steady = ".." + "x" * 98  # down from probe 2 on
    flaky = ".." + "r......" * 12 + "." * 14
    for i in range(100):
        when = start + timedelta(seconds=6 * i)
        for name, pattern in (("steady", steady), ("flaky", flaky)):
            ch = pattern[i]
            if ch == ".":
                writer.store_probe(record(name, when))
            elif ch == "x":
                writer.store_probe(record(name, when, "error", "server_error", "HTTP 503"))
            else:
                writer.store_probe(record(name, when, "error", "rate_limited", "HTTP 429"))
    set_heartbeat(db, NOW - timedelta(seconds=1))
    db.close()
    return path


def make_app(db: Path) -> InferwatchApp:
    return InferwatchApp(db, window_s=900, source_label="test", clock=lambda: NOW)


async def loaded(pilot: Pilot[None], app: InferwatchApp) -> None:
    for _ in range(100):
        await pilot.pause(0.05)
        if app.snap is not None:
            await pilot.pause()
            return
    raise AssertionError("no snapshot within 5 s")


async def test_an_open_outage_is_pinned_and_blips_fold_at_80x24(tmp_path: Path) -> None:
    app = make_app(build(tmp_path / "i.db"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        lines = app.screen.query_one("#incidents", Drawing).text.plain.splitlines()
        # Title, header, then the open outage although twelve blips are newer.
        assert lines[2].split()[:4] == ["✖", "down", "steady", "11:50:12Z"], lines
        assert "OPEN" in lines[2]
        flaky = [line for line in lines if "flaky" in line]
        assert len(flaky) == 1 and "12 blips in 15m" in flaky[0], lines
        await pilot.press("i")
        await pilot.pause(0.2)
        assert isinstance(app.screen, IncidentsScreen)
        every = app.screen.query_one("#incidents-all", Drawing).text.plain
        assert "12 blips in 15m" in every and "steady" in every
        await pilot.press("f")  # down only
        await pilot.pause(0.2)
        down = app.screen.query_one("#incidents-all", Drawing).text.plain
        assert "down only" in down and "steady" in down and "flaky" not in down
        await pilot.press("f")  # degraded only
        await pilot.pause(0.2)
        degraded = app.screen.query_one("#incidents-all", Drawing).text.plain
        assert "degraded only" in degraded and "flaky" in degraded and "steady" not in degraded


def incident(i: int, target: str, state: State, start_s: float, lasted_s: float | None) -> Incident:
    started = NOW - timedelta(seconds=start_s)
    ended = None if lasted_s is None else started + timedelta(seconds=lasted_s)
    return Incident(
        i,
        target,
        State.UP,
        state,
        started.isoformat(),
        ended.isoformat() if ended else None,
        lasted_s,
        "x",
        "",
        1,
        1,
    )


def test_one_blip_stays_a_line_and_a_long_incident_is_never_folded() -> None:
    incidents = [
        incident(5, "a", State.DEGRADED, 10, 5),  # one blip of a: not folded
        incident(4, "b", State.DEGRADED, 20, 5),
        incident(3, "b", State.DOWN, 30, 59),  # a blip too (under 60 s), and down
        incident(2, "b", State.DEGRADED, 100, 60),  # 60 s: not a blip
        incident(1, "c", State.DOWN, 900, None),  # open outage, oldest: pinned first
    ]
    entries = arrange(incidents)
    assert [(e.incident.id, e.blips) for e in entries] == [(1, 1), (5, 1), (4, 2), (2, 1)]
    assert entries[2].worst is State.DOWN


def test_the_querys_limit_never_drops_an_open_outage(tmp_path: Path) -> None:
    db = open_db(build(tmp_path / "l.db"))
    rows = recent_incidents(db, NOW, 900, limit=3)  # twelve newer blips than the outage
    db.close()
    assert rows[0].target == "steady" and rows[0].open and rows[0].to_state is State.DOWN
    assert len(rows) == 3

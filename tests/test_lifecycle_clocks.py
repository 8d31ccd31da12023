"""Clocks (issue #11): heartbeat gaps on the steady clock, one gap per outage of the prober,
retention relative to the newest stored probe. Clocks are injected; nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from probes.timestamps import iso
from store.db import insert_probe, open_db
from store.history import HistoryWriter, MonitoredTarget
from store.rollups import Retention, prune, rollup_all
from tests.history_helpers import T0, record, set_heartbeat
from tui.prober import SteadyWallClock


class Steady:
    """A steady clock the test moves by hand."""

    def __init__(self) -> None:
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "c.db")
    yield database
    database.close()


def gaps(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    return [
        (r["started_at"], r["ended_at"], r["message"])
        for r in db.query("SELECT * FROM monitor_gaps ORDER BY id")
    ]


def test_a_wall_clock_jump_forward_records_no_gap(db: sqlite_utils.Database) -> None:
    steady = Steady()
    w = HistoryWriter(db, [MonitoredTarget("a", "h")], T0, steady)
    steady.s += 2
    assert w.heartbeat(T0 + timedelta(seconds=2)) is None
    steady.s += 2  # two seconds pass; the wall clock is stepped two days ahead
    assert w.heartbeat(T0 + timedelta(days=2, seconds=4)) is None
    assert gaps(db) == []


def test_a_stall_on_the_steady_clock_is_one_gap_as_long_as_the_stall(
    db: sqlite_utils.Database,
) -> None:
    steady = Steady()
    w = HistoryWriter(db, [MonitoredTarget("a", "h")], T0, steady)
    steady.s += 30  # SIGSTOP, a suspended laptop: 30 s without a heartbeat
    now = T0 + timedelta(seconds=30)
    gap = w.heartbeat(now)
    assert gap is not None
    assert gaps(db) == [(iso(T0), iso(now), "prober was stalled or suspended")]
    steady.s += 2
    assert w.heartbeat(now + timedelta(seconds=2)) is None


def test_a_restart_after_an_outage_records_one_gap_not_two(db: sqlite_utils.Database) -> None:
    """The prober's first heartbeat comes right after the writer recorded the gap since the
    last prober's heartbeat; it used to see that old heartbeat again and add an overlapping
    row."""
    set_heartbeat(db, T0)
    steady = Steady()
    restart = T0 + timedelta(minutes=5)
    w = HistoryWriter(db, [MonitoredTarget("a", "h")], restart, steady)
    assert w.start_gap is not None
    steady.s += 0.2
    assert w.heartbeat(restart + timedelta(seconds=0.2)) is None
    assert gaps(db) == [(iso(T0), iso(restart), "prober was not running")]


def test_the_steady_wall_clock_never_runs_ahead_of_the_steady_clock() -> None:
    steady = Steady()
    wall = [T0]
    clock = SteadyWallClock(lambda: wall[0], steady)
    steady.s += 10
    wall[0] = T0 + timedelta(days=3)  # stepped ahead by three days
    assert clock.now() == T0 + timedelta(seconds=10)
    wall[0] = T0 + timedelta(seconds=5)  # stepped back: the wall clock is earlier
    assert clock.now() == T0 + timedelta(seconds=5)


def test_retention_counts_back_from_the_newest_probe_not_from_now(
    db: sqlite_utils.Database,
) -> None:
    """A wall clock two days ahead (or a database reopened after two days) with one day of
    rollup retention: the rolled-up rows of the day before the newest probe stay."""
    for minute in range(0, 36 * 60, 30):  # 36 hours, a probe every 30 minutes
        insert_probe(db, record("a", T0 + timedelta(minutes=minute)))
    rollup_all(db)
    newest = T0 + timedelta(hours=35, minutes=30)
    hours_before = db.execute("SELECT count(*) FROM rollup_hour").fetchone()[0]
    now = newest + timedelta(days=2)
    while prune(db, now, Retention(raw_days=0.5, rollup_days=1)):
        pass
    kept = db.execute("SELECT min(bucket), count(*) FROM rollup_hour").fetchone()
    # Cut at newest - 1 day = T0 + 11:30: the buckets that start after it are kept.
    assert kept[0] == iso(T0 + timedelta(hours=12))
    assert kept[1] == 24 < hours_before == 36
    raw = db.execute("SELECT min(started_at) FROM probes").fetchone()[0]
    assert raw == iso(newest - timedelta(hours=12)), "raw rows counted back from the newest too"

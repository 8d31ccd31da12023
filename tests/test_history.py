"""Persisted outage state: incidents, restart resumption, blind periods, uptime with gaps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from store.db import open_db
from store.health import State
from store.history import (
    HistoryWriter,
    MonitoredTarget,
    blind_status,
    incidents,
    persisted_states,
    uptime,
)
from store.outage import OutageRules
from tests.history_helpers import T0, minutes, record, set_heartbeat


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "h.db")
    yield database
    database.close()


def targets(*names: str, **kw: object) -> list[MonitoredTarget]:
    return [MonitoredTarget(n, f"{n}.example", **kw) for n in names]  # type: ignore[arg-type]


def feed(w: HistoryWriter, target: str, start: datetime, pattern: str) -> datetime:
    """Store one probe a minute: ``.`` ok, ``x`` server error, ``r`` 429, ``d`` dns."""
    kinds = {"x": "server_error", "r": "rate_limited", "d": "dns"}
    when = start
    for ch in pattern:
        if ch == ".":
            w.store_probe(record(target, when))
        else:
            w.store_probe(record(target, when, "error", kinds[ch], 'HTTP 500, "boom"'))
        when += minutes(1)
    return when


def test_every_state_change_is_an_incident_row(db: sqlite_utils.Database) -> None:
    w = HistoryWriter(db, targets("a"), T0)
    feed(w, "a", T0, "..xxx..")
    rows = sorted(incidents(db, "a"), key=lambda r: r["id"])
    assert [(r["from_state"], r["to_state"]) for r in rows] == [
        ("no data", "up"),
        ("up", "down"),
        ("down", "up"),
    ]
    up, down, back = rows
    assert down["started_at"] == "2026-11-01T00:02:00.000Z"
    assert up["ended_at"] == down["started_at"] and up["duration_s"] == pytest.approx(120)
    assert down["ended_at"] == "2026-11-01T00:05:00.000Z"
    assert down["duration_s"] == pytest.approx(180)
    assert down["cause_kind"] == "server_error" and 'HTTP 500, "boom"' in down["cause_message"]
    assert (down["probes"], down["failures"]) == (3, 3)
    assert (up["probes"], back["probes"]) == (2, 2)
    assert back["ended_at"] is None and back["cause_kind"] == "recovered"


def test_restart_resumes_the_state_it_had(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    db = open_db(path)
    w = HistoryWriter(db, targets("a"), T0)
    end = feed(w, "a", T0, "..xxx")
    set_heartbeat(db, end)
    db.close()
    # A new prober process: same file, fresh objects, 20 s later.
    db = open_db(path)
    w2 = HistoryWriter(db, targets("a"), end + timedelta(seconds=5))
    assert persisted_states(db)["a"].state is State.DOWN
    feed(w2, "a", end, "x")
    assert len(incidents(db, "a")) == 2, "no new incident"
    feed(w2, "a", end + minutes(1), ".")
    assert persisted_states(db)["a"].state is State.DOWN, "hysteresis state survived too"
    feed(w2, "a", end + minutes(2), ".")
    assert persisted_states(db)["a"].state is State.UP
    assert db.execute("SELECT count(*) FROM monitor_gaps").fetchone()[0] == 0
    db.close()


def test_prober_gap_is_recorded_and_uptime_counts_it_unknown(db: sqlite_utils.Database) -> None:
    w = HistoryWriter(db, targets("a"), T0)
    end = feed(w, "a", T0, "." * 60)  # one hour up
    set_heartbeat(db, end)
    restart = end + timedelta(hours=2)  # the prober was not running for two hours
    w2 = HistoryWriter(db, targets("a"), restart)
    gaps = list(db.query("SELECT * FROM monitor_gaps"))
    assert len(gaps) == 1 and gaps[0]["cause"] == "prober_not_running"
    assert (gaps[0]["started_at"], gaps[0]["ended_at"]) == (
        "2026-11-01T01:00:00.000Z",
        "2026-11-01T03:00:00.000Z",
    )
    later = feed(w2, "a", restart, "xxx" + "." * 57)
    set_heartbeat(db, later)
    now = later
    u = uptime(db, 86400, now)["a"]
    assert u.up_s == pytest.approx(3600 + 57 * 60 - 0)  # first hour + recovery hour part
    assert u.down_s == pytest.approx(180 - 0, abs=1)
    assert u.unknown_s == pytest.approx(86400 - u.up_s - u.down_s - u.degraded_s)
    assert u.unknown_s >= 7200, "the gap is unknown, not up"
    assert u.pct == pytest.approx(100 * (u.up_s + u.degraded_s) / (u.up_s + u.down_s))


def test_uptime_is_unknown_not_100_without_data(db: sqlite_utils.Database) -> None:
    HistoryWriter(db, targets("a"), T0)
    u = uptime(db, 86400, T0 + timedelta(hours=1), ["a"])["a"]
    assert u.pct is None and u.unknown_s == 86400


def test_uptime_while_the_prober_is_dead_now(db: sqlite_utils.Database) -> None:
    w = HistoryWriter(db, targets("a"), T0)
    end = feed(w, "a", T0, "." * 10)
    set_heartbeat(db, end)
    now = end + timedelta(hours=5)
    status = blind_status(db, now)
    assert status is not None and status.cause == "prober_not_running"
    assert status.since == "2026-11-01T00:10:00.000Z"
    u = uptime(db, 86400, now)["a"]
    assert u.up_s == pytest.approx(600) and u.pct == pytest.approx(100.0)
    assert u.unknown_s == pytest.approx(86400 - 600)


def test_no_network_is_recorded_as_monitor_blindness(db: sqlite_utils.Database) -> None:
    w = HistoryWriter(db, targets("a", "b", "c"), T0)
    for name in "abc":
        feed(w, name, T0, "..")
    start = T0 + minutes(2)
    for i in range(6):  # six rounds with no network
        for j, name in enumerate("abc"):
            when = start + minutes(i) + timedelta(seconds=j)
            w.store_probe(record(name, when, "error", "connect_error", "network unreachable"))
    states = persisted_states(db)
    assert {n: s.state for n, s in states.items()} == dict.fromkeys("abc", State.UP)
    gap = db.execute("SELECT started_at, ended_at, cause, probes FROM monitor_gaps").fetchall()
    assert gap == [("2026-11-01T00:02:00.000Z", None, "network", 18)]
    now = start + minutes(6)
    set_heartbeat(db, now)
    blind = blind_status(db, now)
    assert blind is not None and blind.cause == "network" and blind.since == gap[0][0]
    assert not [r for r in incidents(db) if r["to_state"] == "down"]
    # Back online.
    w.store_probe(record("a", now))
    assert blind_status(db, now) is None
    ended = db.execute("SELECT ended_at FROM monitor_gaps").fetchone()[0]
    assert ended == "2026-11-01T00:08:00.000Z"
    u = uptime(db, 3600, now + minutes(1))["b"]
    assert u.down_s == 0 and u.unknown_s >= 6 * 60 - 1


def test_pause_and_resume_are_incidents(db: sqlite_utils.Database) -> None:
    w = HistoryWriter(db, targets("a", "b"), T0)
    feed(w, "a", T0, "..")
    w.set_paused("a", True, T0 + minutes(3))
    assert persisted_states(db)["a"].state is State.PAUSED
    w.set_paused(None, False, T0 + minutes(10))
    assert persisted_states(db)["a"].state is State.NO_DATA
    kinds = [
        (r["from_state"], r["to_state"]) for r in sorted(incidents(db, "a"), key=lambda r: r["id"])
    ]
    assert kinds == [("no data", "up"), ("up", "paused"), ("paused", "no data")]
    u = uptime(db, 3600, T0 + minutes(20))["a"]
    assert u.up_s == pytest.approx(180), "paused time is not counted as up"


def test_not_configured_target_and_a_restart_that_configures_it(db: sqlite_utils.Database) -> None:
    HistoryWriter(db, targets("a", configured=False), T0)
    assert persisted_states(db)["a"].state is State.NOT_CONFIGURED
    HistoryWriter(db, targets("a"), T0 + minutes(1))
    assert persisted_states(db)["a"].state is State.NO_DATA


def test_per_target_rules_apply(db: sqlite_utils.Database) -> None:
    ts = [
        MonitoredTarget("strict", "s.example", OutageRules(down_after_failures=1)),
        MonitoredTarget("lenient", "l.example", OutageRules(down_after_failures=5)),
    ]
    w = HistoryWriter(db, ts, T0)
    feed(w, "strict", T0, ".x")
    feed(w, "lenient", T0, ".xxxx")
    states = persisted_states(db)
    assert states["strict"].state is State.DOWN
    assert states["lenient"].state is State.UP and states["lenient"].fail_streak == 4

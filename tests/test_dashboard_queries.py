"""Store queries behind the dashboard: headroom, trends, incidents, one target's detail, and
the incremental snapshot reader (it must always agree with a full re-read)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from store import control
from store.db import open_db
from store.detail import target_detail
from store.health import State
from store.history import HistoryWriter, MonitoredTarget
from store.incidents import recent_incidents
from store.reader import SnapshotReader
from store.rollups import rollup_all
from store.summary import summarize
from store.trends import trends
from tests.history_helpers import T0, minutes, record

NOW = T0 + timedelta(hours=2)


def _db(path: Path, names: tuple[str, ...] = ("a", "b")):  # type: ignore[no-untyped-def]
    db = open_db(path)
    control.publish_targets(
        db,
        [control.PublishedTarget(n, "openai-compatible", "m", "g", 60, True, False) for n in names],
    )
    history = HistoryWriter(db, [MonitoredTarget(n, f"{n}.example") for n in names], T0)
    return db, history


def test_ratelimit_headroom_comes_from_the_newest_probe(tmp_path: Path) -> None:
    db, history = _db(tmp_path / "rl.db", ("a",))
    old = replace(record("a", NOW - minutes(5)), ratelimit_remaining_requests=900)
    new = replace(
        record("a", NOW - minutes(1)),
        ratelimit_remaining_requests=12,
        ratelimit_remaining_tokens=4000,
        ratelimit_reset_requests_s=30.0,
    )
    history.store_probe(old)
    history.store_probe(new)
    for window in (3600.0, 86400.0):  # raw and rollup paths
        (s,) = summarize(db, window, NOW)
        assert s.ratelimit_remaining_requests == 12
        assert s.ratelimit_remaining_tokens == 4000
        assert s.ratelimit_reset_requests_s == 30.0


def test_trend_buckets_cover_the_window_and_agree_raw_vs_rollups(tmp_path: Path) -> None:
    db, history = _db(tmp_path / "tr.db", ("a",))
    start = NOW - timedelta(hours=24)
    for i in range(48):  # one probe every 30 min; every 4th fails
        when = start + timedelta(minutes=30 * i + 1)
        if i % 4 == 3:
            history.store_probe(record("a", when, "error", "server_error"))
        else:
            history.store_probe(record("a", when, ttft=100.0 + i))
    raw = trends(db, ["a"], start, NOW, 86400, 24)["a"]
    assert raw.step_s == 3600 and len(raw.ttft_ms) == 24
    assert sum(raw.ok) == 36 and sum(raw.failed) == 12
    assert raw.ttft_ms[0] == pytest.approx(100.5)  # probes 0 and 1 in the first hour
    assert raw.ttft_ms[1] == pytest.approx(102.0)  # probe 3 failed: a gap, not 0 ms
    rollup_all(db)
    rolled = trends(db, ["a"], start, NOW, 86400, 24)["a"]
    assert (rolled.ok, rolled.failed) == (raw.ok, raw.failed)
    assert rolled.ttft_ms == pytest.approx(raw.ttft_ms)
    (s,) = summarize(db, 86400, NOW)
    assert s.trend is not None and sum(s.trend.ok) == 36
    assert s.window_uptime is not None


def test_recent_incidents_open_and_recent_newest_first(tmp_path: Path) -> None:
    db, history = _db(tmp_path / "inc.db")
    # a: down at T0+10m, back up at T0+14m (closed incident).
    history.store_probe(record("a", T0 + minutes(1)))
    for m in (10, 11, 12):
        history.store_probe(record("a", T0 + minutes(m), "error", "server_error"))
    for m in (14, 15):
        history.store_probe(record("a", T0 + minutes(m)))
    # b: down from T0+100m and still down (open).
    history.store_probe(record("b", T0 + minutes(1)))
    for m in (100, 101, 102):
        history.store_probe(record("b", T0 + minutes(m), "error", "timeout"))
    got = recent_incidents(db, NOW, 3 * 3600)
    assert [(i.target, i.to_state, i.open) for i in got] == [
        ("b", State.DOWN, True),
        ("a", State.DOWN, False),
    ]
    assert got[1].duration_s == pytest.approx(240)  # down 10m → up 14m
    assert got[0].failures == 3
    # A 15-minute window still lists the open incident, not the old closed one.
    assert [i.target for i in recent_incidents(db, NOW, 900)] == ["b"]
    # Only up/no-data changes are never listed.
    assert all(i.to_state in (State.DOWN, State.DEGRADED) for i in got)


def test_target_detail_errors_recent_probes_and_history(tmp_path: Path) -> None:
    db, history = _db(tmp_path / "d.db", ("a",))
    history.store_probe(record("a", NOW - minutes(9)))
    history.store_probe(record("a", NOW - minutes(8), "error", "rate_limited", "HTTP 429: slow"))
    history.store_probe(record("a", NOW - minutes(7), "error", "server_error", "HTTP 500: x"))
    history.store_probe(record("a", NOW - minutes(6), "error", "server_error", "HTTP 502: y"))
    history.store_probe(record("a", NOW - minutes(5)))
    (s,) = summarize(db, 900, NOW)
    d = target_detail(db, "a", 900, NOW, s.errors_by_kind, buckets=15)
    assert [(e.kind, e.count, e.last_message) for e in d.errors] == [
        ("server_error", 2, "HTTP 502: y"),
        ("rate_limited", 1, "HTTP 429: slow"),
    ]
    assert [p.status for p in d.recent] == ["ok", "error", "error", "error", "ok"]
    assert d.recent[1].error_message == "HTTP 502: y"
    assert len(d.trend.ok) == 15 and sum(d.trend.failed) == 3
    assert d.incidents and d.incidents[0].open  # the current state is the newest row


def test_incremental_reader_matches_a_full_read(tmp_path: Path) -> None:
    path = tmp_path / "inc.db"
    db, history = _db(path, ("a", "b", "c"))
    for i in range(10):
        for n in ("a", "b", "c"):
            history.store_probe(record(n, NOW - minutes(30 - i), ttft=100.0 + i))
    reader = SnapshotReader(path, resummarize_s=3600)
    first = reader.read(3600, NOW)
    later = NOW + timedelta(seconds=20)
    history.store_probe(record("b", later - timedelta(seconds=1), ttft=900.0))
    for m in (1, 2, 3):  # c goes down: a new incident without... new probes of a
        history.store_probe(record("c", later - timedelta(seconds=10 - m), "error", "timeout"))
    second = reader.read(3600, later)
    full = {s.name: s for s in summarize(db, 3600, later)}
    for s in second.targets:
        f = full[s.name]
        assert (s.count, s.ttft_p50_ms, s.errors, s.last_age_s) == (
            f.count,
            f.ttft_p50_ms,
            f.errors,
            pytest.approx(f.last_age_s),
        )
        assert s.verdict == f.verdict
    assert second.version > first.version
    assert [i.target for i in second.incidents] == ["c"]
    # Nothing new: same version, ages moved on, earlier snapshot untouched.
    third = reader.read(3600, later + timedelta(seconds=5))
    assert third.version == second.version
    a2, a3 = (next(s for s in snap.targets if s.name == "a") for snap in (second, third))
    assert a3.last_age_s == pytest.approx((a2.last_age_s or 0) + 5)
    # A pause recorded by the prober shows at once, with no probe landing.
    control.set_target_paused(db, "a", True)
    history.set_paused("a", True, later + timedelta(seconds=6))
    fourth = reader.read(3600, later + timedelta(seconds=7), detail="a")
    a4 = next(s for s in fourth.targets if s.name == "a")
    assert a4.verdict is not None and a4.verdict.state is State.PAUSED
    assert fourth.detail is not None and fourth.detail.name == "a"
    reader.close()


def test_reader_sees_a_failure_streak_while_still_up(tmp_path: Path) -> None:
    """A failure below the down threshold changes no stored state, only the streak: the reader
    must still pick it up, and the display says degraded since that failure."""
    path = tmp_path / "streak.db"
    _, history = _db(path, ("a",))
    history.store_probe(record("a", NOW - minutes(2)))
    reader = SnapshotReader(path, resummarize_s=3600)
    (a,) = reader.read(3600, NOW).targets
    assert a.fail_streak == 0
    history.store_probe(record("a", NOW - minutes(1), "error", "server_error"))
    (a,) = reader.read(3600, NOW + timedelta(seconds=1)).targets
    assert a.verdict is not None and a.verdict.state is State.DEGRADED and a.fail_streak == 1
    assert a.verdict.cause_kind == "failing" and a.verdict.since == a.last_started_at
    assert "1 failure in a row, not down yet (server_error happened)" in a.verdict.reason
    reader.close()


def test_incremental_reader_matches_a_full_read_on_rollups(tmp_path: Path) -> None:
    """The 24 h view: rolled-up history, settled sums cached, one target re-summarised."""
    path = tmp_path / "roll.db"
    db, history = _db(path, ("a", "b"))
    for i in range(120):
        for n in ("a", "b"):
            history.store_probe(record(n, NOW - minutes(600 - 5 * i), ttft=100.0 + i % 7))
    rollup_all(db)
    reader = SnapshotReader(path, resummarize_s=3600)
    reader.read(86400, NOW)
    later = NOW + timedelta(seconds=30)
    history.store_probe(record("a", later - timedelta(seconds=2), ttft=950.0))
    snap = reader.read(86400, later)
    full = {s.name: s for s in summarize(db, 86400, later)}
    for s in snap.targets:
        f = full[s.name]
        assert (s.count, s.ttft_p50_ms, s.ttft_p99_ms, s.errors) == (
            f.count,
            f.ttft_p50_ms,
            f.ttft_p99_ms,
            f.errors,
        )
    assert {s.name: s.count for s in snap.targets} == {"a": 121, "b": 120}
    reader.close()

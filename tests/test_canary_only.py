"""The headline figures count canaries only (docs/questions.md, "Probe kinds").

A target probed by its canary and by long-prompt workloads and cache checks: every headline
path (raw window, rollup window, trend, cost measurements, detail errors) must give the
canaries' figures, computed here by hand; the other kinds stay stored (export, prefill) and
only a connect-level failure of theirs is outage evidence.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from probes.record import ProbeRecord
from probes.timestamps import iso
from store.control import PublishedTarget, publish_targets
from store.costs import measure, measure_window
from store.db import open_db, record_row
from store.detail import target_detail
from store.health import State
from store.outage import Coordinator, Observation, OutageRules, TargetMachine
from store.rollups import _UPSERT, LEVELS, ROW_SQL, aggregate, remove_non_canaries, rollup_all
from store.summary import summarize
from store.trends import trends

NOW = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC)
#: Canary TTFTs, ms (one canary fails with server_error). P50 = (200 + 300) / 2 = 250.
CANARY_TTFT = (100.0, 200.0, 300.0, 400.0)
#: Workload TTFTs (5,000-token prompts), ms, and a cache check's second request.
WORKLOAD_TTFT = (5000.0, 6000.0, 7000.0)
CACHE_TTFT = 50.0


def probe(
    at: datetime,
    ttft: float | None,
    kind: str = "canary",
    error_kind: str | None = None,
    input_tokens: int = 20,
) -> ProbeRecord:
    ok = error_kind is None
    return ProbeRecord(
        started_at=iso(at),
        target="a",
        provider="openai-compatible",
        model="m",
        status="ok" if ok else "error",
        error_kind=error_kind,
        error_message=None if ok else f"{error_kind} happened",
        ttft_ms=ttft if ok else None,
        total_ms=(ttft or 0) + 500.0 if ok else 9000.0,
        decode_tps=80.0 if ok else None,
        input_tokens=input_tokens if ok else None,
        output_tokens=40 if ok else None,
        cost_usd=0.001 if kind == "canary" and ok else (0.05 if ok else None),
        kind=kind,
        workload="5k" if kind == "workload" else None,
        ratelimit_remaining_requests=100 if kind == "canary" else 10,
        ratelimit_reset_requests_s=30.0,
    )


def records(base: datetime) -> list[ProbeRecord]:
    """Interleaved in time: canaries, workloads (one timing out), a cache check."""
    out = []
    for i, ttft in enumerate(CANARY_TTFT):
        out.append(probe(base + timedelta(seconds=60 * i), ttft))
    out.append(probe(base + timedelta(seconds=250), None, error_kind="server_error"))
    for i, ttft in enumerate(WORKLOAD_TTFT):
        out.append(probe(base + timedelta(seconds=60 * i + 30), ttft, "workload", None, 5000))
    out.append(probe(base + timedelta(seconds=280), None, "workload", "first_token_timeout"))
    out.append(probe(base + timedelta(seconds=290), None, "workload", "deadline"))
    out.append(probe(base + timedelta(seconds=200), CACHE_TTFT, "cache_check", None, 1200))
    return out


def new_db(path: Path) -> sqlite_utils.Database:
    db = open_db(path)
    publish_targets(db, [PublishedTarget("a", "p", "m", None, 60.0, configured=True, paused=False)])
    return db


def store(db: sqlite_utils.Database, recs: list[ProbeRecord]) -> None:
    with db.atomic():
        db.table("probes").insert_all([record_row(r) for r in recs])


def test_raw_window_headline_is_the_canaries(tmp_path: Path) -> None:
    db = new_db(tmp_path / "a.db")
    store(db, records(NOW - timedelta(minutes=10)))
    (s,) = summarize(db, 3600, NOW)
    # All kinds would give a median of 300 over 8 TTFTs and 3 failures of 11.
    assert s.count == 5 and s.errors == 1
    assert s.error_rate == 0.2
    assert s.ttft_p50_ms == 250.0
    # P99 of 100..400 by linear interpolation: 300 + 0.97 * 100 (a workload would be 6,9xx).
    assert abs((s.ttft_p99_ms or 0) - 397.0) < 1e-9
    assert s.cost_per_request_usd == 0.001
    assert s.errors_by_kind == {"server_error": 1}
    assert sorted(s.ttft_values_ms) == list(CANARY_TTFT)
    assert s.last_status == "error" and s.last_error_kind == "server_error"  # not the deadline
    assert s.trend is not None and sum(s.trend.ok) == 4 and sum(s.trend.failed) == 1


def test_rollup_window_and_trend_count_canaries_only(tmp_path: Path) -> None:
    db = new_db(tmp_path / "a.db")
    store(db, records(NOW - timedelta(hours=3)))
    rollup_all(db)
    (row,) = db.conn.execute("SELECT probes, ok, ttft_ms_sum, ttft_n FROM rollup_hour").fetchall()
    assert row == (5, 4, 1000.0, 4)
    # Probes not rolled up yet (the raw tail) are filtered too.
    store(db, [probe(NOW - timedelta(minutes=1), 9000.0, "workload", None, 5000)])
    (s,) = summarize(db, 86400, NOW)
    assert s.from_rollups and s.count == 5 and s.errors == 1
    # Histogram percentiles are within one bucket (9 %) of 250; with the workloads: ~300+.
    assert s.ttft_p50_ms is not None and abs(s.ttft_p50_ms - 250.0) / 250.0 < 0.09
    trend = trends(db, ["a"], NOW - timedelta(hours=24), NOW, 86400, 24)["a"]
    assert sum(trend.ok) == 4 and sum(trend.failed) == 1
    means = [v for v in trend.ttft_ms if v is not None]
    assert means == [250.0]  # (100 + 200 + 300 + 400) / 4


def test_migration_takes_non_canaries_out_of_old_rollups(tmp_path: Path) -> None:
    db = new_db(tmp_path / "a.db")
    store(db, records(NOW - timedelta(hours=3)))
    # Rollups as the first release wrote them: every kind counted.
    rows = db.conn.execute(ROW_SQL + " ORDER BY id").fetchall()
    for level, groups in zip(LEVELS, aggregate(rows, canaries_only=False), strict=True):
        db.conn.executemany(
            _UPSERT.format(table=level.table),
            [agg.values(bucket, target) for (bucket, target), agg in groups.items()],
        )
    db.execute("INSERT INTO maintenance (key, value) VALUES ('rollup_id', ?)", [str(rows[-1][9])])
    mixed = db.conn.execute("SELECT probes, ok FROM rollup_day").fetchone()
    assert mixed == (11, 8)
    # A database from before m011: the migration runs when the prober opens it.
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm012_canary_rollups'")
    db.execute("DELETE FROM maintenance WHERE key = 'canary_rollups'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "a.db")
    for table in ("rollup_minute", "rollup_hour", "rollup_day"):
        probes, ok, ttft_sum, ttft_n, cost, cost_n, errors = db.conn.execute(
            f"SELECT sum(probes), sum(ok), sum(ttft_ms_sum), sum(ttft_n), sum(cost_usd), "
            f"sum(cost_n), group_concat(errors) FROM {table}"
        ).fetchone()
        assert (probes, ok, ttft_sum, ttft_n, cost_n) == (5, 4, 1000.0, 4, 4), table
        assert abs(cost - 0.004) < 1e-12
        assert errors == '{"server_error":1}'
        hists = [
            json.loads(h)
            for (h,) in db.conn.execute(f"SELECT ttft_ms_hist FROM {table}")
            if h is not None
        ]
        assert sum(n for h in hists for n in h.values()) == 4
        assert all(n > 0 for h in hists for n in h.values())
    # The minutes that held only workloads or the cache check are gone.
    assert db.conn.execute("SELECT count(*) FROM rollup_minute").fetchone()[0] == 5
    assert remove_non_canaries(db) == 0  # once only: a second run would subtract them twice
    assert db.conn.execute("SELECT sum(probes) FROM rollup_day").fetchone()[0] == 5


def test_cost_measurements_use_canary_latency_and_every_kinds_headroom(tmp_path: Path) -> None:
    db = new_db(tmp_path / "a.db")
    store(db, records(NOW - timedelta(minutes=10)))
    m = measure_window(db, "a", iso(NOW - timedelta(hours=1)), iso(NOW))
    assert (m.ok_probes, m.ttft_samples, m.ttft_p50_ms) == (4, 4, 250.0)
    assert m.probe_input_tokens_p50 == 20
    # Headroom: 5 canaries at 100 and 6 other probes at 10: the median of 11 values is 10.
    assert m.ratelimit_samples == 11 and m.rpm_capacity == 10.0
    # A row without a kind (an older writer) is a canary.
    legacy = {"status": "ok", "ttft_ms": 900.0, "started_at": iso(NOW)}
    assert measure([legacy]).ttft_p50_ms == 900.0


def test_detail_errors_are_the_canaries(tmp_path: Path) -> None:
    db = new_db(tmp_path / "a.db")
    store(db, records(NOW - timedelta(minutes=10)))
    d = target_detail(db, "a", 3600, NOW)
    assert [(e.kind, e.count) for e in d.errors] == [("server_error", 1)]


def machines(*names: str) -> Coordinator:
    return Coordinator(
        {n: TargetMachine(n, OutageRules()) for n in names}, {n: n for n in names}, names
    )


def obs(i: int, status: str, error_kind: str | None, kind: str, target: str = "a") -> Observation:
    return Observation(
        target, iso(NOW + timedelta(seconds=30 * i)), status, error_kind, None, 100.0, kind
    )


def test_a_workload_timing_out_never_marks_the_provider_down() -> None:
    c = machines("a")
    c.observe(obs(0, "ok", None, "canary"))
    for i in range(1, 8):
        assert c.observe(obs(i, "error", "first_token_timeout", "workload")) == []
        assert c.observe(obs(i, "error", "server_error", "cache_check")) == []
    assert c.machines["a"].s.state is State.UP and c.machines["a"].s.fail_streak == 0


def test_a_workload_success_does_not_bring_a_down_target_up() -> None:
    c = machines("a")
    for i in range(3):
        c.observe(obs(i, "error", "server_error", "canary"))
    assert c.machines["a"].s.state is State.DOWN
    for i in range(3, 8):
        c.observe(obs(i, "ok", None, "workload"))
    assert c.machines["a"].s.state is State.DOWN


def test_a_connect_failure_on_any_probe_is_evidence() -> None:
    c = machines("a")
    c.observe(obs(0, "ok", None, "canary"))
    for i in range(1, 4):
        c.observe(obs(i, "error", "connect_refused", "workload"))
    assert c.machines["a"].s.state is State.DOWN
    # Pending connect failures (two hosts) keep their kind through a restart's JSON.
    c2 = machines("a", "b")
    c2.observe(obs(0, "ok", None, "canary", "b"))
    c2.observe(obs(1, "error", "connect_timeout", "cache_check"))
    assert c2.machines["a"].s.pending[0]["kind"] == "cache_check"
    assert Observation(**c2.machines["a"].s.pending[0]) == dataclasses.replace(
        obs(1, "error", "connect_timeout", "cache_check"), ttft_ms=100.0
    )

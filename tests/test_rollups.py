"""Rollups are exact for counts and sums, within one bucket for percentiles; retention is safe."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from probes.timestamps import iso
from store import histogram
from store.control import PublishedTarget, publish_targets
from store.db import insert_probe, open_db
from store.rollup_window import RollupCache, rollup_segments
from store.rollups import Retention, get_bookmark, incremental_vacuum, prune, rollup_all
from store.stats import percentile
from store.summary import summarize
from tests.history_helpers import T0, record


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "r.db")
    yield database
    database.close()


def fill(db: sqlite_utils.Database, hours: float, step_s: int = 20, seed: int = 7) -> list[float]:
    """Two targets probed every ``step_s`` for ``hours``; returns target a's ok TTFTs."""
    rng = random.Random(seed)
    ttfts = []
    rows = []
    n = int(hours * 3600 / step_s)
    for i in range(n):
        when = T0 + timedelta(seconds=i * step_s)
        for name in ("a", "b"):
            if rng.random() < 0.1:
                r = record(name, when, "error", rng.choice(["server_error", "rate_limited"]))
            else:
                ttft = rng.lognormvariate(5.5, 0.6)
                r = record(name, when, ttft=ttft, rng=rng)
                if name == "a":
                    ttfts.append(ttft)
            rows.append(_row(r))
    with db.atomic():
        db.table("probes").insert_all(rows, batch_size=500)
    return ttfts


def _row(r: object) -> dict[str, object]:
    from store.db import record_row

    return record_row(r)  # type: ignore[arg-type]


def test_histogram_percentiles_are_within_one_bucket() -> None:
    rng = random.Random(3)
    for _ in range(50):
        values = sorted(
            rng.lognormvariate(rng.uniform(2, 8), rng.uniform(0.1, 1.5))
            for _ in range(rng.randint(1, 400))
        )
        hist = histogram.from_values(values)
        for q in (50, 95, 99):
            exact = percentile(values, q)
            est = histogram.quantile(hist, q)
            assert exact is not None and est is not None
            assert abs(histogram.bucket_index(est) - histogram.bucket_index(exact)) <= 1


def test_rollups_match_raw_rows(db: sqlite_utils.Database) -> None:
    ttfts = fill(db, hours=30)
    assert rollup_all(db, batch=997) == db.execute("SELECT count(*) FROM probes").fetchone()[0]
    for table in ("rollup_minute", "rollup_hour", "rollup_day"):
        got = db.execute(
            f"SELECT sum(probes), sum(ok), sum(ttft_n), round(sum(cost_usd), 9), "
            f"sum(input_tokens) FROM {table}"
        ).fetchone()
        want = db.execute(
            "SELECT count(*), sum(status = 'ok'), count(ttft_ms), round(sum(cost_usd), 9), "
            "sum(input_tokens) FROM probes"
        ).fetchone()
        assert got == want, table
    errors = db.execute(
        "SELECT sum(j.value) FROM rollup_hour, json_each(errors) j WHERE j.key = 'rate_limited'"
    ).fetchone()[0]
    assert (
        errors
        == db.execute("SELECT count(*) FROM probes WHERE error_kind = 'rate_limited'").fetchone()[0]
    )
    # Percentiles over the hour rollups of target a vs the raw values.
    hist: dict[int, int] = {}
    for (h,) in db.execute("SELECT ttft_ms_hist FROM rollup_hour WHERE target = 'a'"):
        for k, v in histogram.loads(h).items():
            hist[k] = hist.get(k, 0) + v
    exact_sorted = sorted(ttfts)
    for q in (50, 95, 99):
        exact = percentile(exact_sorted, q)
        est = histogram.quantile(hist, q)
        assert exact is not None and est is not None
        assert abs(histogram.bucket_index(est) - histogram.bucket_index(exact)) <= 1, q


def test_rollup_is_incremental_and_counts_each_probe_once(db: sqlite_utils.Database) -> None:
    fill(db, hours=1)
    rollup_all(db)
    first = get_bookmark(db)
    # A late probe (started earlier, stored later) lands in an existing bucket.
    insert_probe(db, record("a", T0 + timedelta(seconds=5), ttft=123.0))
    assert rollup_all(db) == 1 and get_bookmark(db) == first + 1
    assert rollup_all(db) == 0
    total = db.execute("SELECT sum(probes) FROM rollup_minute").fetchone()[0]
    assert total == db.execute("SELECT count(*) FROM probes").fetchone()[0]


def test_summaries_from_rollups_agree_with_raw(db: sqlite_utils.Database) -> None:
    publish_targets(db, [PublishedTarget(n, "p", "m", None, 20.0, True, False) for n in "ab"])
    fill(db, hours=30)
    rollup_all(db)
    now = T0 + timedelta(hours=30)
    # Add a tail that is not rolled up yet: it must be counted too.
    insert_probe(db, record("a", now - timedelta(seconds=10), ttft=100.0))
    long = {s.name: s for s in summarize(db, 24 * 3600, now)}
    a = long["a"]
    assert a.from_rollups
    since = "2026-11-01T06:00:00.000Z"
    raw = db.execute(
        "SELECT count(*), sum(status != 'ok') FROM probes WHERE target = 'a' AND started_at >= ?",
        [since],
    ).fetchone()
    assert (a.count, a.errors) == raw
    values = sorted(
        v
        for (v,) in db.execute(
            "SELECT ttft_ms FROM probes WHERE target='a' AND status='ok' AND started_at >= ?",
            [since],
        )
    )
    for q, est in ((50, a.ttft_p50_ms), (95, a.ttft_p95_ms), (99, a.ttft_p99_ms)):
        exact = percentile(values, q)
        assert est is not None and exact is not None
        assert abs(histogram.bucket_index(est) - histogram.bucket_index(exact)) <= 1
    assert a.ttft_series_ms and len(a.ttft_values_ms) <= 100
    assert a.cost_per_request_usd == pytest.approx(0.0001)
    assert a.cache_hit_share == pytest.approx(0.25)
    short = {s.name: s for s in summarize(db, 3600, now)}["a"]
    assert not short.from_rollups and short.count == 181


def test_retention_deletes_only_rolled_up_rows_in_batches(db: sqlite_utils.Database) -> None:
    fill(db, hours=48, step_s=60)
    rolled = rollup_all(db, batch=1000)
    insert_probe(db, record("a", T0, ttft=99.0))  # old but not rolled up yet: must survive
    now = T0 + timedelta(days=2)
    insert_probe(db, record("a", now, ttft=1.0))  # the newest probe: ages count back from it
    retention = Retention(raw_days=1, rollup_days=1.5)
    calls = 0
    while prune(db, now, retention, batch=500):
        calls += 1
    assert calls > 4, "pruning works in small batches"
    cut = "2026-11-02T00:00:00.000Z"
    assert (
        db.execute(
            "SELECT count(*) FROM probes WHERE started_at < ? AND id <= ?", [cut, rolled]
        ).fetchone()[0]
        == 0
    )
    assert db.execute("SELECT count(*) FROM probes WHERE ttft_ms = 99.0").fetchone()[0] == 1
    assert (
        db.execute("SELECT min(bucket) FROM rollup_minute").fetchone()[0]
        >= "2026-11-01T12:00:00.000Z"
    )
    assert db.execute("SELECT count(*) FROM rollup_hour").fetchone()[0] == 36 * 2
    assert int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
    before = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = incremental_vacuum(db, pages=100000)
    assert free == 0 and int(db.execute("PRAGMA page_count").fetchone()[0]) < before


def test_probes_after_pruning_everything_are_still_rolled_up(db: sqlite_utils.Database) -> None:
    """Probe ids are rowids without AUTOINCREMENT: if pruning removed the newest row, SQLite
    would hand its id out again, at or below the rollup bookmark, and that probe would never be
    rolled up (and later be pruned unseen). A monitor stopped for longer than the raw
    retention then restarted is that case."""
    fill(db, hours=2, step_s=60)
    rolled = rollup_all(db)
    now = T0 + timedelta(days=40)
    while prune(db, now, Retention(raw_days=30)):
        pass
    insert_probe(db, record("a", now, ttft=321.0))
    assert rollup_all(db) == 1
    assert get_bookmark(db) > rolled
    minute = db.execute(
        "SELECT probes, ttft_ms_sum FROM rollup_minute WHERE bucket = ? AND target = 'a'",
        ["2026-12-11T00:00:00.000Z"],
    ).fetchone()
    assert minute == (1, 321.0)


@pytest.mark.parametrize("window_h", [24, 24 * 7])
def test_signed_rollup_terms_are_exact_at_every_alignment(
    db: sqlite_utils.Database, window_h: int
) -> None:
    """Windows reach their start from the nearer bucket edge, subtracting finer rows from a
    coarser one when that reads fewer rows: counts and histograms must equal the raw ones."""
    publish_targets(db, [PublishedTarget(n, "p", "m", None, 60.0, True, False) for n in "ab"])
    fill(db, hours=window_h + 50, step_s=120)
    rollup_all(db)
    signs: set[int] = set()
    for offset_min in (0, 1, 17, 29, 30, 31, 59, 60 + 44, 11 * 60 + 5, 12 * 60 + 59, 23 * 60 + 1):
        now = T0 + timedelta(hours=window_h + 30, minutes=offset_min, seconds=13)
        signs.update(sign for *_, sign in rollup_segments(now - timedelta(hours=window_h)))
        got = {s.name: s for s in summarize(db, window_h * 3600, now)}["a"]
        since = iso(now - timedelta(hours=window_h) + timedelta(seconds=47))  # next minute
        rows = db.execute(
            "SELECT status, error_kind, ttft_ms FROM probes WHERE target = 'a' AND started_at >= ?",
            [since],
        ).fetchall()
        assert got.from_rollups and got.count == len(rows), offset_min
        assert got.errors_by_kind == dict(Counter(k for st, k, _ in rows if st != "ok"))
        hist = histogram.from_values(t for st, _, t in rows if st == "ok")
        assert (got.ttft_p50_ms, got.ttft_p95_ms, got.ttft_p99_ms) == tuple(
            histogram.quantiles(hist, (50, 95, 99))
        )
    assert signs == {1, -1}, "both edge directions exercised"


def test_reader_cache_reuses_settled_sums_and_sees_late_probes(
    db: sqlite_utils.Database,
) -> None:
    publish_targets(db, [PublishedTarget(n, "p", "m", None, 60.0, True, False) for n in "ab"])
    fill(db, hours=50, step_s=120)
    rollup_all(db)
    now = T0 + timedelta(hours=49, minutes=20, seconds=5)
    cache = RollupCache()
    cold = {s.name: s.count for s in summarize(db, 86400, now, cache)}
    assert cache.sums and cache.key
    calls: list[str] = []
    db.conn.set_trace_callback(calls.append)
    warm = {s.name: s.count for s in summarize(db, 86400, now + timedelta(seconds=20), cache)}
    db.conn.set_trace_callback(None)
    assert warm == cold
    assert not any("rollup_hour" in c and "json_each" in c for c in calls), "settled reused"
    # A very long probe that started 20 h ago lands now: the settled sums must not hide it.
    insert_probe(db, record("a", now - timedelta(hours=20), ttft=111.0))
    rollup_all(db)
    late = {s.name: s.count for s in summarize(db, 86400, now + timedelta(seconds=40), cache)}
    assert late["a"] == cold["a"] + 1 and late["b"] == cold["b"]


def test_window_edge_near_rollup_retention_is_reached_forward(db: sqlite_utils.Database) -> None:
    """Subtracting finer rows needs the coarser row and those finer rows; retention may have
    deleted them (the hour row holding a window start just past the cut)."""
    publish_targets(db, [PublishedTarget(n, "p", "m", None, 60.0, True, False) for n in "ab"])
    fill(db, hours=72, step_s=120)
    rollup_all(db)
    now = T0 + timedelta(days=2, hours=12, minutes=10, seconds=30)
    retention = Retention(raw_days=30, rollup_days=1 + 5.5 / 1440)  # cut: 12:05 the day before
    while prune(db, now, retention):
        pass
    assert db.execute("SELECT min(bucket) FROM rollup_hour").fetchone()[0] > iso(
        now - timedelta(days=1, minutes=10)
    ), "the hour row holding the window start is gone"
    assert rollup_segments(now - timedelta(days=1))[0][3] == -1, "would subtract"
    got = {s.name: s for s in summarize(db, 86400, now)}["a"]
    since = iso(now - timedelta(days=1) + timedelta(seconds=30))
    raw = db.execute(
        "SELECT count(*) FROM probes WHERE target = 'a' AND started_at >= ?", [since]
    ).fetchone()[0]
    assert got.count == raw

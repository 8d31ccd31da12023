"""One reducer (store/tally.py): the same probes give the same summary through raw rows and
through rollups, on a real SQLite database.

The 1 h window reads raw rows (exact percentiles); the 24 h window reads rollup rows plus the
probes not rolled up yet. Counts, error kinds and means must be equal; percentiles within one
histogram bucket (a factor 2^(1/8)).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.record import ProbeRecord
from probes.timestamps import iso
from store import histogram
from store.control import PublishedTarget, publish_targets
from store.db import open_db, record_row
from store.rollups import rollup_all, rollup_pending
from store.summary import TargetSummary, summarize

NOW = datetime(2026, 11, 30, 12, 0, 7, 500_000, tzinfo=UTC)
ONE_BUCKET = 1 / 8  # log2 width of a histogram bucket (store/histogram.py)
KINDS = [None, "server_error", "rate_limited", "stall", "dns", "probe_config"]


def new_db(path: Path | str, names: tuple[str, ...] = ("a", "b")) -> sqlite_utils.Database:
    db = open_db(path)
    publish_targets(
        db, [PublishedTarget(n, "p", "m", None, 60.0, configured=True, paused=False) for n in names]
    )
    return db


def store(db: sqlite_utils.Database, records: list[ProbeRecord]) -> None:
    with db.atomic():
        db.table("probes").insert_all([record_row(r) for r in records])


def by_name(summaries: list[TargetSummary]) -> dict[str, TargetSummary]:
    return {s.name: s for s in summaries}


@st.composite
def probes(draw: st.DrawFn) -> list[ProbeRecord]:
    out = []
    for _ in range(draw(st.integers(1, 40))):
        ok = draw(st.booleans())
        at = NOW - timedelta(
            seconds=draw(st.integers(30, 3000)), milliseconds=draw(st.integers(0, 999))
        )
        ttft = draw(st.floats(1.0, 20_000.0))
        inp = draw(st.none() | st.integers(0, 5000))
        out.append(
            ProbeRecord(
                started_at=iso(at),
                target=draw(st.sampled_from(["a", "b"])),
                provider="p",
                model="m",
                status="ok" if ok else "error",
                error_kind=None if ok else draw(st.sampled_from(KINDS)),
                ttft_ms=draw(st.none() | st.just(ttft)),
                total_ms=ttft + draw(st.floats(0.0, 20_000.0)),
                decode_tps=draw(st.none() | st.floats(1.0, 2000.0)),
                cost_usd=draw(st.none() | st.floats(0.0, 0.05)),
                input_tokens=inp,
                cache_read_tokens=None if inp is None else draw(st.none() | st.integers(0, inp)),
            )
        )
    return out


def within_one_bucket(exact: float | None, estimate: float | None) -> bool:
    if exact is None or estimate is None:
        return exact is None and estimate is None
    return abs(math.log2(estimate) - math.log2(exact)) <= ONE_BUCKET + 1e-9


@settings(max_examples=40, deadline=None)
@given(records=probes(), rolled_share=st.floats(0.0, 1.0))
def test_raw_and_rollup_windows_give_the_same_summary(
    records: list[ProbeRecord], rolled_share: float
) -> None:
    db = new_db(":memory:")
    store(db, records)
    # Part of the probes rolled up, the rest read as the rollup window's raw tail.
    rollup_pending(db, batch=max(1, round(len(records) * rolled_share)))
    raw = by_name(summarize(db, 3600, NOW, with_verdicts=False))
    rolled = by_name(summarize(db, 86400, NOW, with_verdicts=False))
    for name in ("a", "b"):
        r, o = raw[name], rolled[name]
        assert not r.from_rollups and (o.from_rollups or o.count == 0)
        assert (o.count, o.errors, o.error_rate) == (r.count, r.errors, r.error_rate)
        assert dict(o.errors_by_kind) == dict(r.errors_by_kind)
        assert list(o.errors_by_kind) == list(r.errors_by_kind)  # the same ranking
        assert o.top_error_kind == r.top_error_kind
        assert o.cost_per_request_usd == pytest.approx(r.cost_per_request_usd, rel=1e-9)
        assert o.cache_hit_share == pytest.approx(r.cache_hit_share, rel=1e-9)
        for field in (
            "ttft_p50_ms",
            "ttft_p95_ms",
            "ttft_p99_ms",
            "total_p50_ms",
            "total_p95_ms",
            "total_p99_ms",
            "decode_tps_p50",
        ):
            assert within_one_bucket(getattr(r, field), getattr(o, field)), field
    db.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = new_db(tmp_path / "t.db", ("a",))
    yield database
    database.close()


def test_failures_without_a_kind_are_unknown_in_every_window(db: sqlite_utils.Database) -> None:
    # The case: four failures with no error kind showed as {'None': 4} in the 1 h
    # window and {'error': 4} in the 24 h one.
    failed = [
        ProbeRecord(iso(NOW - timedelta(minutes=10 + i)), "a", "p", "m", "error") for i in range(4)
    ]
    store(db, failed)
    rollup_all(db)
    for window_s in (3600, 86400):
        (s,) = summarize(db, window_s, NOW, with_verdicts=False)
        assert dict(s.errors_by_kind) == {"unknown": 4}, window_s
        assert s.top_error_kind == "unknown" and s.errors == 4 and s.error_rate == 1.0


def test_ties_between_kinds_rank_the_providers_fault_first(db: sqlite_utils.Database) -> None:
    kinds = ["rate_limited", "probe_config", "server_error", "connect_refused"] * 2
    store(
        db,
        [
            ProbeRecord(iso(NOW - timedelta(minutes=20 - i)), "a", "p", "m", "error", error_kind=k)
            for i, k in enumerate(kinds)
        ],
    )
    (s,) = summarize(db, 3600, NOW, with_verdicts=False)
    # Two of each: a provider-side failure, then a connect failure, then 429, then our own.
    assert list(s.errors_by_kind) == [
        "server_error",
        "connect_refused",
        "rate_limited",
        "probe_config",
    ]


def test_migration_renames_the_old_error_label_in_rollups(tmp_path: Path) -> None:
    db = new_db(tmp_path / "old.db", ("a",))
    db.execute(
        "INSERT INTO rollup_minute (bucket, target, probes, ok, errors) VALUES "
        "('2026-11-30T11:00:00.000Z', 'a', 5, 0, '{\"error\":4,\"stall\":1}')"
    )
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_unknown_error_kind'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "old.db")
    (errors,) = db.conn.execute("SELECT errors FROM rollup_minute").fetchone()
    assert errors == '{"stall":1,"unknown":4}'
    db.close()


def test_histogram_buckets_are_eighths_of_a_doubling() -> None:
    # Bucket i holds [2**(i/8), 2**((i+1)/8)); 2**(1/8) = 1.0905077...
    assert histogram.bucket_index(1.0) == 0 and histogram.bucket_index(1.09) == 0
    assert histogram.bucket_index(1.0906) == 1 and histogram.bucket_index(2.0) == 8
    assert histogram.bucket_index(300.0) == 65  # 8 × log2(300) = 65.83
    assert histogram.bucket_index(0.0005) == histogram.bucket_index(0.001) == -80
    assert histogram.bucket_index(2.0**41) == 328  # beyond the precomputed edges
    assert histogram.bucket_key(300.0) == "65" and histogram.bucket_key(2.0**41) == "328"

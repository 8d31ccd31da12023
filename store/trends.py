"""A target's figures over its window in equal time buckets (the trend columns and charts).

Raw windows group probe rows in SQLite; longer windows group the coarsest rollup rows that fit
a bucket (day, hour or minute rows), plus the probes not rolled up yet, so the cost stays
bounded whatever the history size.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from probes.timestamps import iso
from store.rollups import get_bookmark
from store.tally import CANARY_SQL
from store.windows import TREND_BUCKETS, reads_rollups, target_filter


@dataclass(frozen=True, slots=True, kw_only=True)
class Trend:
    """A target's figures over the window in equal time buckets, oldest first.

    Attributes:
        start: UTC ISO 8601 start of the first bucket (the window start).
        step_s: bucket length in seconds.
        ttft_ms: mean TTFT of the bucket's successful probes; None when it had none.
        tps: mean decode tokens/s of those probes; None when unknown.
        ok: successful probes per bucket.
        failed: failed probes per bucket (a bucket with failures and no success is drawn
            as a failure, never as 0 ms).
    """

    start: str
    step_s: float
    ttft_ms: tuple[float | None, ...]
    tps: tuple[float | None, ...]
    ok: tuple[int, ...]
    failed: tuple[int, ...]


def bucket_sql(column: str) -> str:
    """SQL of the trend bucket index of a timestamp column (params: :meth:`TrendSpec.params`)."""
    # Rounded to the millisecond first: julianday() arithmetic puts a bucket that starts
    # exactly one step later at 0.99999... steps.
    return f"CAST(round((julianday({column}) - julianday(?)) * 86400.0, 3) / ? AS INTEGER)"


@dataclass(frozen=True, slots=True)
class TrendSpec:
    """A window cut into equal time buckets.

    Attributes:
        start: the window start (stored format), the first bucket's start.
        step_s: bucket length, seconds.
        buckets: how many buckets.
    """

    start: str
    step_s: float
    buckets: int

    @classmethod
    def of(cls, start: datetime, window_s: float, buckets: int = TREND_BUCKETS) -> TrendSpec:
        """``buckets`` buckets over ``window_s`` seconds from ``start``."""
        return cls(iso(start), window_s / buckets, buckets)

    def params(self) -> list[Any]:
        """The parameters of :func:`bucket_sql`."""
        return [self.start, self.step_s]


def raw_trend(spec: TrendSpec, rows: Iterable[Sequence[Any]], bucket_at: int) -> Trend:
    """One target's trend from its raw rows, as :func:`trends` groups them in SQLite.

    Args:
        spec: the buckets.
        rows: rows that start with the tally's columns (``store.tally.TALLY_FIELDS``: status,
            error kind, TTFT, total, decode rate, ...) and hold their :func:`bucket_sql`
            index at ``bucket_at`` (rows whose index is NULL are left out).
        bucket_at: where.
    """
    c = _Columns(spec.buckets)
    ok, failed = c.ok, c.failed
    t_sum, t_n = [0.0] * spec.buckets, [0] * spec.buckets
    p_sum, p_n = [0.0] * spec.buckets, [0] * spec.buckets
    top = spec.buckets - 1
    for r in rows:
        b = r[bucket_at]
        if b is None:
            continue
        b = 0 if b < 0 else top if b > top else b
        if r[0] != "ok":
            failed[b] += 1
            continue
        ok[b] += 1
        if (v := r[2]) is not None:
            t_sum[b] += v
            t_n[b] += 1
        if (v := r[4]) is not None:
            p_sum[b] += v
            p_n[b] += 1
    c.ttft_ms = [t_sum[b] / n if n else None for b, n in enumerate(t_n)]
    c.tps = [p_sum[b] / n if n else None for b, n in enumerate(p_n)]
    return c.trend(spec)


def empty_trend(spec: TrendSpec) -> Trend:
    """The trend of a target without probes in the window."""
    return _Columns(spec.buckets).trend(spec)


def trends(
    db: sqlite_utils.Database,
    names: Collection[str],
    start: datetime,
    now: datetime,
    window_s: float,
    buckets: int = TREND_BUCKETS,
) -> dict[str, Trend]:
    """Per-target figures over ``[start, now]`` in ``buckets`` equal time buckets.

    Raw windows group probe rows in SQLite; longer windows group the coarsest rollup rows that
    fit a bucket (day, hour or minute rows), plus the probes not rolled up yet, so the cost
    stays bounded. Buckets of a long window should be whole hours or days
    (:func:`store.windows.trend_buckets`), or minute rows are read.

    Args:
        db: an open database.
        names: the targets wanted.
        start: the window start (UTC).
        now: the window end (UTC).
        window_s: the window length in seconds (``now - start``).
        buckets: how many buckets.

    Returns:
        Target name -> :class:`Trend` (every requested name, empty when it has no probes).
    """
    from_rollups = reads_rollups(window_s)
    if not names:
        return {}
    step = window_s / buckets
    lo = iso(start)
    where, extra = target_filter("target", names)
    sources: list[tuple[str, list[Any]]] = []
    ok_ttft = "CASE WHEN status = 'ok' THEN ttft_ms END"
    ok_tps = "CASE WHEN status = 'ok' THEN decode_tps END"
    raw_select = (
        f"SELECT target, {bucket_sql('started_at')} AS b, sum(status = 'ok'), "
        f"sum(status != 'ok'), sum({ok_ttft}), count({ok_ttft}), sum({ok_tps}), count({ok_tps}) "
        f"FROM probes WHERE {CANARY_SQL} AND "
    )
    if not from_rollups:
        sources.append(
            (raw_select + "started_at >= ?" + where + " GROUP BY target, b", [lo, step, lo])
        )
    else:
        # The coarsest rollup level that still fits a bucket: a 24 h overview trend of 100
        # targets then reads 2,400 hour rows, not 144,000 minute rows.
        table = (
            "rollup_day" if step >= 86400 else "rollup_hour" if step >= 3600 else "rollup_minute"
        )
        sources.append(
            (
                f"SELECT target, {bucket_sql('bucket')} AS b, sum(ok), sum(probes - ok), "
                "sum(ttft_ms_sum), sum(ttft_n), sum(decode_tps_sum), sum(decode_tps_n) "
                f"FROM {table} WHERE bucket >= ?" + where + " GROUP BY target, b",
                [lo, step, lo],
            )
        )
        # The probes not rolled up yet: a rowid range. The unary + (in the filter and the
        # GROUP BY) keeps the planner off the (target, started_at) index, which would walk
        # every probe of every target (97 ms at 1 M rows instead of 0.1 ms).
        tail_where = where.replace(" AND target IN", " AND +target IN")
        sources.append(
            (
                raw_select + "id > ? AND +started_at >= ?" + tail_where + " GROUP BY +target, b",
                [lo, step, get_bookmark(db), lo],
            )
        )
    sums: dict[tuple[str, int], list[float]] = {}
    for sql, params in sources:
        for name, b, ok, failed, t_sum, t_n, p_sum, p_n in db.conn.execute(sql, params + extra):
            if b is None:
                continue
            acc = sums.setdefault((name, min(max(int(b), 0), buckets - 1)), [0, 0, 0, 0, 0, 0])
            for i, v in enumerate((ok, failed, t_sum, t_n, p_sum, p_n)):
                acc[i] += v or 0
    cols = {n: _Columns(buckets) for n in names}
    for (name, b), (ok, failed, t_sum, t_n, p_sum, p_n) in sums.items():
        c = cols.get(name)
        if c is None:
            continue
        c.ok[b], c.failed[b] = int(ok), int(failed)
        c.ttft_ms[b] = t_sum / t_n if t_n else None
        c.tps[b] = p_sum / p_n if p_n else None
    spec = TrendSpec(lo, step, buckets)
    return {name: c.trend(spec) for name, c in cols.items()}


class _Columns:
    """A trend's columns while they are being filled."""

    __slots__ = ("failed", "ok", "tps", "ttft_ms")

    def __init__(self, buckets: int) -> None:
        self.ttft_ms: list[float | None] = [None] * buckets
        self.tps: list[float | None] = [None] * buckets
        self.ok = [0] * buckets
        self.failed = [0] * buckets

    def trend(self, spec: TrendSpec) -> Trend:
        """The finished trend."""
        return Trend(
            start=spec.start,
            step_s=spec.step_s,
            ttft_ms=tuple(self.ttft_ms),
            tps=tuple(self.tps),
            ok=tuple(self.ok),
            failed=tuple(self.failed),
        )

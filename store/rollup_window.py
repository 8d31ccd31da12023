"""A long window's figures from the rollups: signed segments, the settled-sum cache, the raw tail.

Windows longer than :data:`store.windows.RAW_WINDOW_MAX_S` (24 h, 7 d, 30 d) read the per-minute,
per-hour and per-day rollup rows (:mod:`store.rollups`) that cover the window with the fewest
rows (:func:`rollup_segments`), plus the raw probes not rolled up yet; the cost does not grow
with the number of probes. The window starts at the minute boundary after ``now - window``.
Percentiles come from the merged histograms and are within one bucket (9 %) of the exact ones.
:class:`RollupCache` keeps the sums of rollup rows that can no longer change between refreshes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from probes.timestamps import ceil_time, floor_time, iso
from store.raw_window import WindowPart
from store.rollups import BUCKET_S, get_bookmark
from store.tally import CANARY_SQL, NO_FIGURES, TALLY_COLUMNS, Tally
from store.windows import SERIES_POINTS

#: A term of a rollup window: (table, first bucket, end bucket or None, +1 or -1).
Term = tuple[str, str, str | None, int]


def rollup_segments(start: datetime, oldest: dict[str, str | None] | None = None) -> list[Term]:
    """Signed bucket ranges whose sum covers ``[start, ∞)`` (``start`` rounded up to the
    minute) with few rollup rows.

    At each level the edge is reached from the nearer side: minutes forward to the next hour
    (added), or back to the hour before (subtracted from that hour's row); the same with hours
    to a midnight; then whole days. A 24 h window so reads at most 30 minute rows, 12 hour
    rows and 2 day rows per target instead of 59, 23 and 1: merging their JSON histograms is
    the dashboard's main cost. Counts stay exact: a coarser row is the sum of its finer rows
    (one rollup transaction writes all levels).

    Args:
        start: the window start.
        oldest: the oldest bucket kept in each rollup table. Subtracting needs the coarser row
            and the finer rows before ``start``: near the retention edge (or while retention
            is pruning) they may be gone, and the edge is then reached forward only.
    """
    terms: list[Term] = []
    edge = ceil_time(start, 60)
    levels = (("rollup_minute", "rollup_hour", 3600), ("rollup_hour", "rollup_day", 86400))
    for table, coarser, seconds in levels:
        up, down = ceil_time(edge, seconds), floor_time(edge, seconds)
        kept = oldest is None or all(
            (o := oldest.get(t)) is not None and o <= iso(down) for t in (table, coarser)
        )
        if up - edge <= edge - down or not kept:
            if up > edge:
                terms.append((table, iso(edge), iso(up), 1))
            edge = up
        else:
            terms.append((table, iso(down), iso(edge), -1))
            edge = down
    terms.append(("rollup_day", iso(edge), None, 1))
    return terms


def _union(columns: str, terms: list[Term]) -> tuple[str, list[str]]:
    """A UNION ALL of the terms' rows with ``columns`` and a ``sign`` column."""
    parts, params = [], []
    for table, lo, hi, sign in terms:
        sql = f"SELECT {columns}, {sign} AS sign FROM {table} WHERE bucket >= ?"
        params.append(lo)
        if hi is not None:
            sql += " AND bucket < ?"
            params.append(hi)
        parts.append(sql)
    return " UNION ALL ".join(parts), params


#: Rollup buckets that ended at least this long ago are "settled": a refresh may reuse their
#: sums (see :class:`RollupCache`). Later buckets are read on every refresh.
SETTLE_S = 600.0


@dataclass(slots=True)
class RollupCache:
    """The sums of the settled rollup terms of the last long-window summary, for reuse.

    A dashboard refresh re-summarises whenever a probe landed (about every second with 100
    targets), but the rollup rows of a 24 h / 7 d / 30 d window that ended more than
    :data:`SETTLE_S` ago do not change: only today's day row and the newest hour rows do.
    The key is the settled terms, which move with the window start every minute, so an entry
    lives a minute at most; probes rolled up since that started before the settled edge (a
    very long probe landing late) invalidate it at once.
    """

    key: tuple[Term, ...] = ()
    bookmark: int = -1
    edge: str = ""
    sums: dict[str, Tally] = field(default_factory=dict)


def _split(terms: list[Term], cut: datetime) -> tuple[list[Term], list[Term]]:
    """Terms cut into the buckets that ended by ``cut`` (settled) and the later ones."""
    settled: list[Term] = []
    live: list[Term] = []
    for table, lo, hi, sign in terms:
        edge = iso(floor_time(cut, BUCKET_S[table]))
        if lo < edge:
            settled.append((table, lo, hi if hi is not None and hi <= edge else edge, sign))
        if hi is None or hi > edge:
            live.append((table, max(lo, edge), hi, sign))
    return settled, live


def _read_terms(db: sqlite_utils.Database, terms: list[Term]) -> dict[str, Tally]:
    """Per-target tallies of the rollup rows of ``terms`` (signed).

    SQLite sums the counters and concatenates each target's JSON histograms into one array,
    so Python parses one text per target and column and adds the objects up. That is ~2.5x
    faster here than ``json_each`` with ``GROUP BY target, key`` in SQLite, whose sort of
    every histogram key (~500 ns each) was most of a long window's cost.
    """
    acc: dict[str, Tally] = {}
    if not terms:
        return acc
    union, params = _union(
        "target, probes, ok, cost_usd, cost_n, cache_read_tokens, cache_input_tokens, "
        "errors, ttft_ms_hist, total_ms_hist, decode_tps_hist",
        terms,
    )
    arrays = ", ".join(
        f"'[' || group_concat({c}) || ']'"
        for c in ("errors", "ttft_ms_hist", "total_ms_hist", "decode_tps_hist")
    )
    for row in db.conn.execute(
        "SELECT target, sign, sum(probes), sum(ok), sum(cost_usd), sum(cost_n), "
        f"sum(cache_read_tokens), sum(cache_input_tokens), {arrays} FROM ({union}) "
        "GROUP BY target, sign",
        params,
    ):
        name, sign, probes, ok, cost, cost_n, cache, cache_in, errors, ttft, total, tps = row
        t = acc.get(name)
        if t is None:
            t = acc[name] = Tally()
        t.probes += sign * probes
        t.ok += sign * ok
        t.cost_usd += sign * (cost or 0.0)
        t.cost_n += sign * (cost_n or 0)
        t.cache_read_tokens += sign * (cache or 0)
        t.cache_input_tokens += sign * (cache_in or 0)
        t.add_json(t.errors, errors, sign)
        t.add_json(t.ttft, ttft, sign)
        t.add_json(t.total, total, sign)
        t.add_json(t.tps, tps, sign)
    return acc


def rollup_window(
    db: sqlite_utils.Database,
    start: datetime,
    now: datetime,
    window_s: float,
    cache: RollupCache | None = None,
) -> dict[str, WindowPart]:
    """Every target's figures over ``[start, now]`` from rollups and the raw tail.

    Args:
        db: an open database.
        start: the window start (rounded up to the minute).
        now: the current UTC time.
        window_s: the window length (picks the series' step: hours up to 2 days, then days).
        cache: the settled sums of the previous call, reused when still valid (one per reader).

    Returns:
        Target name -> its part (``last`` is None: the caller reads the newest probe).
    """
    first = iso(ceil_time(start, 60))
    bookmark = get_bookmark(db)
    oldest = {t: db.conn.execute(f"SELECT min(bucket) FROM {t}").fetchone()[0] for t in BUCKET_S}
    terms = rollup_segments(start, oldest)
    settled, live = _split(terms, now - timedelta(seconds=SETTLE_S))
    edge = iso(now - timedelta(seconds=SETTLE_S))
    if (
        cache is not None
        and cache.key == tuple(settled)
        and cache.bookmark <= bookmark
        and not db.conn.execute(
            "SELECT 1 FROM probes WHERE id > ? AND id <= ? AND +started_at < ? LIMIT 1",
            [cache.bookmark, bookmark, cache.edge],
        ).fetchone()
    ):
        settled_sums = cache.sums
    else:
        settled_sums = _read_terms(db, settled)
        if cache is not None:
            cache.key, cache.bookmark, cache.edge = tuple(settled), bookmark, edge
            cache.sums = settled_sums
    acc = _read_terms(db, live)  # fresh: added into; the settled sums may be cached
    for name, sums in settled_sums.items():
        t = acc.get(name)
        if t is None:
            t = acc[name] = Tally()
        t.add(sums)
    # Probes not rolled up yet (normally the last few seconds): a rowid range, not the
    # started_at index (the unary + keeps the planner off it).
    tail: dict[str, list[tuple[Any, ...]]] = {}
    for row in db.conn.execute(
        f"SELECT {TALLY_COLUMNS}, target FROM probes NOT INDEXED WHERE id > ? AND +started_at >= ? "
        f"AND {CANARY_SQL}",
        [bookmark, first],
    ):
        tail.setdefault(row[-1], []).append(row)
    for name, rows in tail.items():
        t = acc.get(name)
        if t is None:
            t = acc[name] = Tally()
        t.add_rows(rows)
    figures = {name: t.figures() for name, t in acc.items() if t.probes > 0}
    series = _series(db, start, window_s)
    return {
        name: WindowPart(figures.get(name, NO_FIGURES), series.get(name, ()))
        for name in figures.keys() | series.keys()
    }


def _series(
    db: sqlite_utils.Database, start: datetime, window_s: float
) -> dict[str, tuple[float | None, ...]]:
    """Mean TTFT per hour (per day beyond 2 days: the trend column is ~17 cells wide)."""
    table, step = ("rollup_hour", 3600) if window_s <= 2 * 86400 else ("rollup_day", 86400)
    out: dict[str, list[float | None]] = {}
    for name, mean in db.conn.execute(
        f"SELECT target, CASE WHEN ttft_n > 0 THEN ttft_ms_sum / ttft_n END FROM {table} "
        "WHERE bucket >= ? ORDER BY bucket",
        [iso(ceil_time(start, step))],
    ):
        out.setdefault(name, []).append(mean)
    return {name: tuple(values[-SERIES_POINTS:]) for name, values in out.items()}

"""Dashboard queries: per-target figures over a time window, fast at any history size.

* Windows up to :data:`RAW_WINDOW_MAX_S` (the 15 min and 1 h views) read raw probe rows with
  one range scan on ``probes(started_at)``; percentiles are exact.
* Longer windows (24 h, 7 d, 30 d) read the rollups (:mod:`store.rollups`): signed minute,
  hour and day terms (:func:`rollup_segments`), plus the raw probes not rolled up yet. The
  cost does not grow with the number of probes; percentiles come from the merged histograms
  and are within one bucket (9 %) of the exact ones. The window starts at the minute
  boundary after ``now - window``. :class:`SnapshotReader` reuses the sums of settled rollup
  rows between refreshes (:class:`RollupCache`).

The state shown per target is the persisted outage state (:mod:`store.history`), made stale
when the monitor is blind; uptime for the window and for 24 h / 7 d / 30 d follows
docs/uptime.md. Every figure of one summary covers the same window: percentiles, error rate,
cost, uptime and the time-bucketed trend (:class:`Trend`).

Besides the per-target summaries the dashboard reads the incidents across targets
(:func:`recent_incidents`) and, for its detail screen, one target's recent probes, error
messages and state history (:func:`target_detail`). :class:`SnapshotReader` re-reads only what
changed since its previous read (see its docstring): that is most of the dashboard's idle CPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from probes.timestamps import iso, parse_iso
from store.control import ProberStatus, prober_status, published_targets
from store.db import open_db
from store.health import State, Verdict, verdict
from store.history import (
    BlindStatus,
    PersistedState,
    Uptime,
    blind_status,
    monitor_gaps,
    persisted_states,
    uptime,
)
from store.rollups import BUCKET_S, get_bookmark
from store.tally import TALLY_COLUMNS, Tally, WindowFigures, tally_rows

__all__ = [
    "Incident",
    "RecentProbe",
    "RollupCache",
    "Snapshot",
    "SnapshotReader",
    "TargetDetail",
    "TargetSummary",
    "Trend",
    "recent_incidents",
    "snapshot",
    "summarize",
    "target_detail",
    "trend_buckets",
    "trends",
]

#: Windows up to this length read raw rows; longer ones read rollups.
RAW_WINDOW_MAX_S = 6 * 3600.0
#: Uptime windows shown per target.
UPTIME_WINDOWS_S: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
#: Points in the TTFT series (per probe / per rollup bucket).
SERIES_POINTS = 120
#: Time buckets of the per-target trend in the overview (the detail screen asks for more).
TREND_BUCKETS = 48
#: States that make an incident worth listing in the incidents panel.
PROBLEM_STATES: tuple[State, ...] = (State.DEGRADED, State.DOWN)


@dataclass(slots=True)
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
    ttft_ms: list[float | None]
    tps: list[float | None]
    ok: list[int]
    failed: list[int]

    @classmethod
    def empty(cls, start: datetime, window_s: float, buckets: int) -> Trend:
        """A trend with ``buckets`` empty buckets covering ``window_s`` from ``start``."""
        return cls(
            iso(start),
            window_s / buckets,
            [None] * buckets,
            [None] * buckets,
            [0] * buckets,
            [0] * buckets,
        )


@dataclass(slots=True)
class TargetSummary:
    """Everything the overview shows for one target over the window.

    Durations in ms, rates in tokens/s, costs in USD, ages in seconds; None when no sample
    could give the figure. Percentiles and TPS use successful probes only (metrics.md §6).
    ``ttft_series_ms`` is per probe for raw windows and the mean per hour (per day beyond
    2 days) for rollup windows; ``trend`` is the same window in equal time buckets
    (:func:`trend_buckets`). ``ttft_values_ms`` / ``total_values_ms`` are the raw values, or
    for rollup windows up to :data:`store.tally.SAMPLE_POINTS` values spread over the merged
    histogram's quantiles (the same shape); ``tps_values`` only for raw windows. ``uptime`` maps
    ``24h``/``7d``/``30d`` to :class:`store.history.Uptime`; ``window_uptime`` is the uptime
    over the window itself.
    ``computed_at`` is when the window figures were computed: copies that only move ages
    forward keep it, so a view can tell "same figures, older" from "new figures".
    The ``ratelimit_*`` fields are the provider's rate-limit headroom as reported by the
    newest probe (None when that probe carried no such header). ``fail_streak`` counts the
    consecutive failures the outage machine holds (below the down threshold while up).
    """

    name: str
    provider: str
    model: str
    group_name: str | None
    interval_s: float
    configured: bool
    paused: bool
    count: int = 0
    errors: int = 0
    error_rate: float | None = None
    top_error_kind: str | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    total_p50_ms: float | None = None
    total_p95_ms: float | None = None
    total_p99_ms: float | None = None
    decode_tps_p50: float | None = None
    cost_per_request_usd: float | None = None
    cache_hit_share: float | None = None
    last_status: str | None = None
    last_error_kind: str | None = None
    last_error_message: str | None = None
    last_ttft_ms: float | None = None
    last_started_at: str | None = None
    last_age_s: float | None = None
    ratelimit_remaining_requests: int | None = None
    ratelimit_remaining_tokens: int | None = None
    ratelimit_reset_requests_s: float | None = None
    ratelimit_reset_tokens_s: float | None = None
    ttft_series_ms: list[float | None] = field(default_factory=list)
    ttft_values_ms: list[float] = field(default_factory=list)
    total_values_ms: list[float] = field(default_factory=list)
    tps_values: list[float] = field(default_factory=list)
    trend: Trend | None = None
    verdict: Verdict | None = None
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    uptime: dict[str, Uptime] = field(default_factory=dict)
    window_uptime: Uptime | None = None
    fail_streak: int = 0
    from_rollups: bool = False
    computed_at: datetime | None = None
    effective_interval_s: float | None = None
    """Interval after probing budgets (None: as configured); staleness is judged on it."""
    budget_note: str = ""
    """Why a budget stretched the interval or cannot be enforced ("" when not), for display."""

    def aged(self, elapsed_s: float) -> TargetSummary:
        """A copy whose ages moved ``elapsed_s`` forward (the window figures are shared).

        Cheaper than :func:`dataclasses.replace` (no ``__init__``): the reader makes one per
        target per second.
        """
        copy = object.__new__(TargetSummary)
        for name in _SUMMARY_SLOTS:
            object.__setattr__(copy, name, getattr(self, name))
        if self.last_age_s is not None:
            copy.last_age_s = self.last_age_s + elapsed_s
        return copy


_SUMMARY_SLOTS = tuple(f.name for f in fields(TargetSummary))


_LAST_COLUMNS = (
    "started_at, status, error_kind, error_message, ttft_ms, ratelimit_remaining_requests, "
    "ratelimit_remaining_tokens, ratelimit_reset_requests_s, ratelimit_reset_tokens_s"
)

#: A window's raw rows: the tally's columns, then the target and the newest probe's fields.
_RAW_SQL = f"SELECT {TALLY_COLUMNS}, target, {_LAST_COLUMNS} FROM probes WHERE started_at >= ?"
_RAW_TARGET = 9


def _in(column: str, names: Collection[str] | None) -> tuple[str, list[Any]]:
    """``AND column IN (?, ...)`` for a target filter ('' when unfiltered)."""
    if names is None:
        return "", []
    return f" AND {column} IN ({','.join('?' * len(names))})", list(names)


def summarize(
    db: sqlite_utils.Database,
    window_s: float,
    now: datetime | None = None,
    cache: RollupCache | None = None,
    *,
    names: Collection[str] | None = None,
    with_verdicts: bool = True,
) -> list[TargetSummary]:
    """Summaries of every published target over the last ``window_s`` seconds.

    Args:
        db: an open database.
        window_s: window length in seconds.
        now: the current UTC time (injectable for tests).
        cache: keeps the settled rollup sums of a long window between calls (one per reader).
        names: only these targets (default: every published target).
        with_verdicts: attach each target's displayed state (:func:`attach_verdicts`).
    """
    now = now or datetime.now(UTC)
    start = now - timedelta(seconds=window_s)
    targets = published_targets(db)
    out = {
        t.name: TargetSummary(
            name=t.name,
            provider=t.provider,
            model=t.model,
            group_name=t.group_name,
            interval_s=t.interval_s,
            configured=t.configured,
            paused=t.paused,
            effective_interval_s=t.effective_interval_s,
            budget_note=t.budget_note,
        )
        for t in targets
        if names is None or t.name in names
    }
    if not out:
        return []
    wanted = list(out)
    if window_s <= RAW_WINDOW_MAX_S:
        _from_raw(db, out, iso(start), now, wanted)
    else:
        _from_rollups(db, out, start, now, window_s, cache)
    for s in out.values():
        if s.last_started_at is None:
            _last_probe(db, s, now)
    for name, tr in trends(db, wanted, start, now, window_s, trend_buckets(window_s)).items():
        out[name].trend = tr
    if "target_state" in db.table_names():
        windows = dict(UPTIME_WINDOWS_S)
        windows["window"] = window_s
        for label, w in windows.items():
            gaps = monitor_gaps(db, now - timedelta(seconds=w), now)
            for name, up in uptime(db, w, now, wanted, gaps).items():
                if label == "window":
                    out[name].window_uptime = up
                else:
                    out[name].uptime[label] = up
    summaries = list(out.values())
    for summary in summaries:
        summary.computed_at = now
    if with_verdicts:
        attach_verdicts(db, summaries, now)
    return summaries


def attach_verdicts(
    db: sqlite_utils.Database,
    summaries: Sequence[TargetSummary],
    now: datetime,
    states: dict[str, PersistedState] | None = None,
    blind: BlindStatus | bool | None = True,
) -> None:
    """Set each summary's displayed state from the persisted outage state.

    Args:
        db: an open database.
        summaries: the summaries to update in place.
        now: the current UTC time.
        states: :func:`store.history.persisted_states` when already read.
        blind: :func:`store.history.blind_status` when already read (``True``: read it).
    """
    has_history = "target_state" in db.table_names()
    if states is None:
        states = persisted_states(db) if has_history else {}
    if blind is True:
        blind = blind_status(db, now) if has_history else None
    seen = blind if isinstance(blind, BlindStatus) else None
    for s in summaries:
        st = states.get(s.name)
        s.fail_streak = st.fail_streak if st else 0
        s.verdict = verdict(
            st.state if st else None,
            st.since if st else None,
            st.cause_kind if st else None,
            st.cause_message if st else "",
            configured=s.configured,
            paused=s.paused,
            blind_since=seen.since if seen else None,
            blind_reason=seen.reason if seen else "",
            last_age_s=s.last_age_s,
            # A target whose budget stretched its interval is not stale.
            interval_s=max(s.interval_s, s.effective_interval_s or 0.0),
            fail_streak=st.fail_streak if st else 0,
            fail_start=st.fail_start if st else None,
            fail_message=st.fail_message if st else "",
        )


def _from_raw(
    db: sqlite_utils.Database,
    out: dict[str, TargetSummary],
    since: str,
    now: datetime,
    names: Collection[str] | None = None,
) -> None:
    rows_by: dict[str, list[tuple[Any, ...]]] = {}
    where, params = _in("target", names)
    for row in db.conn.execute(_RAW_SQL + where + " ORDER BY started_at", [since, *params]):
        rows_by.setdefault(row[_RAW_TARGET], []).append(row)
    for name, rows in rows_by.items():
        s = out.get(name)
        if s is None:
            continue
        _set_figures(s, tally_rows(rows, exact=True).figures())
        _set_last(s, rows[-1][_RAW_TARGET + 1 :], now)
        s.ttft_series_ms = [
            float(r[2]) if r[0] == "ok" and r[2] is not None else None
            for r in rows[-SERIES_POINTS:]
        ]


def _set_figures(s: TargetSummary, f: WindowFigures) -> None:
    """Copy a window's figures into the summary."""
    s.count, s.errors, s.error_rate = f.count, f.errors, f.error_rate
    s.errors_by_kind, s.top_error_kind = dict(f.errors_by_kind), f.top_error_kind
    s.ttft_p50_ms, s.ttft_p95_ms, s.ttft_p99_ms = f.ttft_p50_ms, f.ttft_p95_ms, f.ttft_p99_ms
    s.total_p50_ms, s.total_p95_ms, s.total_p99_ms = f.total_p50_ms, f.total_p95_ms, f.total_p99_ms
    s.decode_tps_p50 = f.decode_tps_p50
    s.cost_per_request_usd, s.cache_hit_share = f.cost_per_request_usd, f.cache_hit_share
    s.ttft_values_ms = list(f.ttft_values_ms)
    s.total_values_ms = list(f.total_values_ms)
    s.tps_values = list(f.tps_values)
    s.from_rollups = f.from_rollups


def _set_last(s: TargetSummary, row: Sequence[Any], now: datetime) -> None:
    """Set the newest probe's fields from a row of :data:`_LAST_COLUMNS`."""
    (
        s.last_started_at,
        s.last_status,
        s.last_error_kind,
        s.last_error_message,
        s.last_ttft_ms,
        s.ratelimit_remaining_requests,
        s.ratelimit_remaining_tokens,
        s.ratelimit_reset_requests_s,
        s.ratelimit_reset_tokens_s,
    ) = row
    s.last_age_s = (now - parse_iso(str(s.last_started_at))).total_seconds()


def _last_probe(db: sqlite_utils.Database, s: TargetSummary, now: datetime) -> None:
    row = db.conn.execute(
        f"SELECT {_LAST_COLUMNS} FROM probes WHERE target = ? ORDER BY started_at DESC LIMIT 1",
        [s.name],
    ).fetchone()
    if row:
        _set_last(s, row, now)


def _ceil(when: datetime, seconds: int) -> datetime:
    epoch = when.timestamp()
    up = -(-epoch // seconds) * seconds
    return datetime.fromtimestamp(up, UTC)


def _floor(when: datetime, seconds: int) -> datetime:
    epoch = when.timestamp()
    return datetime.fromtimestamp(epoch // seconds * seconds, UTC)


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
    edge = _ceil(start, 60)
    levels = (("rollup_minute", "rollup_hour", 3600), ("rollup_hour", "rollup_day", 86400))
    for table, coarser, seconds in levels:
        up, down = _ceil(edge, seconds), _floor(edge, seconds)
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
        edge = iso(_floor(cut, BUCKET_S[table]))
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


def _from_rollups(
    db: sqlite_utils.Database,
    out: dict[str, TargetSummary],
    start: datetime,
    now: datetime,
    window_s: float,
    cache: RollupCache | None = None,
) -> None:
    if "rollup_minute" not in db.table_names():
        _from_raw(db, out, iso(start), now)
        return
    first = iso(_ceil(start, 60))
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
        f"SELECT {TALLY_COLUMNS}, target FROM probes NOT INDEXED WHERE id > ? AND +started_at >= ?",
        [bookmark, first],
    ):
        tail.setdefault(row[-1], []).append(row)
    for name, rows in tail.items():
        t = acc.get(name)
        if t is None:
            t = acc[name] = Tally()
        t.add_rows(rows)
    for name, t in acc.items():
        s = out.get(name)
        if s is None or t.probes <= 0:
            continue
        _set_figures(s, t.figures())
    _series_from_rollups(db, out, start, window_s)


def _series_from_rollups(
    db: sqlite_utils.Database, out: dict[str, TargetSummary], start: datetime, window_s: float
) -> None:
    # The trend column is ~17 cells wide: hourly means up to 2 days, daily means beyond.
    table, step = ("rollup_hour", 3600) if window_s <= 2 * 86400 else ("rollup_day", 86400)
    lo = iso(_ceil(start, step))
    for name, mean in db.conn.execute(
        f"SELECT target, CASE WHEN ttft_n > 0 THEN ttft_ms_sum / ttft_n END FROM {table} "
        "WHERE bucket >= ? ORDER BY bucket",
        [lo],
    ):
        s = out.get(name)
        if s is not None:
            s.ttft_series_ms.append(mean)
    for s in out.values():
        s.ttft_series_ms = s.ttft_series_ms[-SERIES_POINTS:]


def trend_buckets(window_s: float) -> int:
    """How many trend buckets the overview uses for a window: :data:`TREND_BUCKETS` for raw
    windows, whole hours (at most :data:`TREND_BUCKETS`) or, from 20 days, whole days for
    rollup windows, so the trend reads hour or day rollups."""
    if window_s <= RAW_WINDOW_MAX_S:
        return TREND_BUCKETS
    if window_s >= 20 * 86400:
        return max(1, int(window_s // 86400))
    return max(1, min(TREND_BUCKETS, int(window_s // 3600)))


def _bucket_sql(column: str) -> str:
    """SQL of the trend bucket index of a timestamp column (params: start, step seconds)."""
    # Rounded to the millisecond first: julianday() arithmetic puts a bucket that starts
    # exactly one step later at 0.99999... steps.
    return f"CAST(round((julianday({column}) - julianday(?)) * 86400.0, 3) / ? AS INTEGER)"


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
    (:func:`trend_buckets`), or minute rows are read.

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
    tables = db.table_names()
    from_rollups = window_s > RAW_WINDOW_MAX_S and "rollup_minute" in tables
    out = {n: Trend.empty(start, window_s, buckets) for n in names}
    if not out or "probes" not in tables:
        return out
    step = window_s / buckets
    lo = iso(start)
    where, extra = _in("target", names)
    sources: list[tuple[str, list[Any]]] = []
    ok_ttft = "CASE WHEN status = 'ok' THEN ttft_ms END"
    ok_tps = "CASE WHEN status = 'ok' THEN decode_tps END"
    raw_select = (
        f"SELECT target, {_bucket_sql('started_at')} AS b, sum(status = 'ok'), "
        f"sum(status != 'ok'), sum({ok_ttft}), count({ok_ttft}), sum({ok_tps}), count({ok_tps}) "
        "FROM probes WHERE "
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
                f"SELECT target, {_bucket_sql('bucket')} AS b, sum(ok), sum(probes - ok), "
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
    for (name, b), (ok, failed, t_sum, t_n, p_sum, p_n) in sums.items():
        tr = out.get(name)
        if tr is None:
            continue
        tr.ok[b], tr.failed[b] = int(ok), int(failed)
        tr.ttft_ms[b] = t_sum / t_n if t_n else None
        tr.tps[b] = p_sum / p_n if p_n else None
    return out


# ---- incidents and one target's detail ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incident:
    """One state change of a target (a row of ``incidents``).

    Attributes:
        id: row id.
        target: target name.
        from_state: state before.
        to_state: state entered (the incident's state).
        started_at: UTC ISO 8601 time it began.
        ended_at: when the target left that state; None while it is the current state.
        duration_s: seconds in that state once ended.
        cause_kind: machine-readable cause (error kind, ``rate_limited``, ``recovered``...).
        cause_message: human text.
        probes: probes accounted to that state.
        failures: failed probes among them.
    """

    id: int
    target: str
    from_state: State
    to_state: State
    started_at: str
    ended_at: str | None
    duration_s: float | None
    cause_kind: str | None
    cause_message: str
    probes: int
    failures: int

    @property
    def open(self) -> bool:
        """True while the target is still in this state."""
        return self.ended_at is None


_INCIDENT_COLUMNS = (
    "id, target, from_state, to_state, started_at, ended_at, duration_s, cause_kind, "
    "cause_message, probes, failures"
)


def _incident(row: Sequence[Any]) -> Incident:
    return Incident(
        int(row[0]),
        str(row[1]),
        State(row[2]),
        State(row[3]),
        str(row[4]),
        row[5],
        row[6],
        row[7],
        row[8] or "",
        int(row[9] or 0),
        int(row[10] or 0),
    )


def recent_incidents(
    db: sqlite_utils.Database,
    now: datetime,
    window_s: float,
    limit: int = 50,
    states: Collection[State] = PROBLEM_STATES,
) -> list[Incident]:
    """Open and recent incidents across targets, newest first.

    An incident is a period in one of ``states`` (degraded or down by default). Listed:
    every open one (the target is still in it), and every one that began or ended within
    the window ``[now - window_s, now]``.

    Args:
        db: an open database.
        now: the current UTC time.
        window_s: how far back "recent" reaches, seconds.
        limit: at most this many rows.
        states: the states that count as incidents.

    Returns:
        Incidents ordered by start time, newest first.
    """
    if "incidents" not in db.table_names() or not states:
        return []
    lo = iso(now - timedelta(seconds=window_s))
    marks = ",".join("?" * len(states))
    # Three indexed parts, not one OR (which made SQLite walk the whole table in time order):
    # open ones via target_state, those that began in the window (started_at index), and those
    # that began up to 30 days earlier and ended in the window.
    lookback = iso(now - timedelta(seconds=window_s) - timedelta(days=30))
    states_in = f"to_state IN ({marks})"
    values = [State(s).value for s in states]
    rows = db.conn.execute(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {states_in} AND id IN "
        "(SELECT incident_id FROM target_state WHERE incident_id IS NOT NULL) "
        f"UNION SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {states_in} AND started_at >= ? "
        f"UNION SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {states_in} "
        "AND started_at >= ? AND started_at < ? AND ended_at >= ? "
        "ORDER BY started_at DESC, id DESC LIMIT ?",
        [*values, *values, lo, *values, lookback, lo, lo, limit],
    ).fetchall()
    return [_incident(r) for r in rows]


@dataclass(frozen=True, slots=True)
class RecentProbe:
    """One stored probe as the detail screen lists it (durations ms, cost USD)."""

    started_at: str
    status: str
    error_kind: str | None
    error_message: str | None
    http_status: int | None
    ttft_ms: float | None
    total_ms: float | None
    decode_tps: float | None
    output_tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class ErrorKindSummary:
    """Failures of one kind in the window, with the newest message.

    Attributes:
        kind: the error kind.
        count: failures of that kind in the window.
        last_at: UTC ISO time of the newest one (None when only rollups remember it).
        last_message: its message (redacted by the prober), "" when unknown.
        http_status: its HTTP status, if any.
    """

    kind: str
    count: int
    last_at: str | None
    last_message: str
    http_status: int | None


@dataclass(slots=True)
class TargetDetail:
    """What the detail screen shows beyond the target's :class:`TargetSummary`.

    Attributes:
        name: the target.
        window_s: the window.
        trend: TTFT / TPS / failures over the window in finer buckets than the overview.
        errors: failures by kind, most frequent first, each with its newest message.
        recent: the newest probes (any age), newest first.
        incidents: the target's state history, newest first (all states).
    """

    name: str
    window_s: float
    trend: Trend
    errors: list[ErrorKindSummary]
    recent: list[RecentProbe]
    incidents: list[Incident]


def target_detail(
    db: sqlite_utils.Database,
    name: str,
    window_s: float,
    now: datetime,
    errors_by_kind: dict[str, int] | None = None,
    *,
    buckets: int = 120,
    recent: int = 30,
    incidents: int = 20,
) -> TargetDetail:
    """Read one target's detail for the detail screen.

    Args:
        db: an open database.
        name: the target.
        window_s: the window in seconds.
        now: the current UTC time.
        errors_by_kind: the window's failure counts from the summary (so the counts match
            the overview exactly, rollups included); read from raw probes when None.
        buckets: time buckets of the trend.
        recent: how many recent probes to list.
        incidents: how many state changes to list.
    """
    start = now - timedelta(seconds=window_s)
    trend = trends(db, [name], start, now, window_s, buckets)[name]
    messages: dict[str, tuple[str, str, int | None]] = {}
    counts: Counter[str] = Counter()
    if "probes" in db.table_names():
        for kind, at, message, status in db.conn.execute(
            "SELECT error_kind, started_at, error_message, http_status FROM probes "
            "WHERE target = ? AND started_at >= ? AND status != 'ok' ORDER BY started_at DESC",
            [name, iso(start)],
        ):
            key = str(kind)
            counts[key] += 1
            messages.setdefault(key, (at, message or "", status))
    by_kind = Counter(errors_by_kind) if errors_by_kind is not None else counts
    errors = [
        ErrorKindSummary(
            kind,
            n,
            messages[kind][0] if kind in messages else None,
            messages[kind][1] if kind in messages else "",
            messages[kind][2] if kind in messages else None,
        )
        for kind, n in by_kind.most_common()
    ]
    rows = (
        db.conn.execute(
            "SELECT started_at, status, error_kind, error_message, http_status, ttft_ms, "
            "total_ms, decode_tps, output_tokens, cost_usd FROM probes WHERE target = ? "
            "ORDER BY started_at DESC LIMIT ?",
            [name, recent],
        ).fetchall()
        if "probes" in db.table_names()
        else []
    )
    history = (
        db.conn.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE target = ? "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            [name, incidents],
        ).fetchall()
        if "incidents" in db.table_names()
        else []
    )
    return TargetDetail(
        name,
        window_s,
        trend,
        errors,
        [RecentProbe(*r) for r in rows],
        [_incident(r) for r in history],
    )


# ---- snapshots ------------------------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """What one dashboard refresh reads, in one go.

    Attributes:
        taken_at: UTC time of the read.
        window_s: the window the figures cover.
        targets: one summary per published target.
        prober: the prober's last heartbeat, or None.
        prober_age_s: seconds since that heartbeat.
        db_bytes: database file size (main file plus WAL).
        probes_last_minute: probes stored in the last 60 s, all targets.
        probes_per_minute: probes per minute over the last 5 minutes (or since the prober
            started, if later): steadier than the last minute's count, for the status line.
        blind_since: UTC ISO 8601 time since which the monitor is blind (prober not
            running, or no network on the monitor's side), None while it can see.
        blind_reason: why it is blind, "" otherwise.
        incidents: open and recent incidents across targets (:func:`recent_incidents`).
        detail: the detail of the target asked for, if any (:func:`target_detail`).
        version: changes whenever anything the snapshot shows may have changed apart from
            ages (lets a view skip redrawing).
    """

    taken_at: datetime
    window_s: float
    targets: list[TargetSummary]
    prober: ProberStatus | None
    prober_age_s: float | None
    db_bytes: int
    probes_last_minute: int
    blind_since: str | None = None
    blind_reason: str = ""
    incidents: list[Incident] = field(default_factory=list)
    detail: TargetDetail | None = None
    version: int = 0
    probes_per_minute: float = 0.0


@dataclass(frozen=True, slots=True)
class _Token:
    """Cheap fingerprint of what changed since the previous read."""

    probe_id: int
    targets: str
    states: str
    incident_id: int


_TOKEN_SQL = (
    "SELECT (SELECT max(id) FROM probes), "
    "(SELECT group_concat(name || ':' || paused || ':' || configured) FROM targets), "
    "{states}, {incidents}"
)


class SnapshotReader:
    """Reads :class:`Snapshot` values for the dashboard through one long-lived connection.

    Re-summarising every target each second is most of the dashboard's idle CPU, and nearly
    always redundant: between probes only ages and the heartbeat change. Each read first
    takes a fingerprint (newest probe id, published targets, outage states, newest incident)
    and then re-reads only what it says changed:

    * a new probe: only the targets that received probes are summarised again;
    * a new state or incident: the states (and the incidents list) are read again;
    * the window changed, the published targets changed, or ``resummarize_s`` passed (the
      window slides): everything.

    Otherwise it reuses the previous summaries with their ages moved forward. Summaries are
    copied, never mutated after being handed out, so the UI thread may keep reading them.

    Not thread-safe: use it from one thread at a time (calls never overlap).
    """

    def __init__(self, db_path: Path | str, resummarize_s: float = 15.0) -> None:
        self.db_path = Path(db_path)
        self.resummarize_s = resummarize_s
        self._db: sqlite_utils.Database | None = None
        self._last: Snapshot | None = None
        self._last_full: datetime | None = None
        self._token: _Token | None = None
        self._states: dict[str, PersistedState] = {}
        self._version = 0
        self._last_5min = 0
        self._rollup_cache = RollupCache()
        self._detail_key: tuple[str, float, int, int, str] | None = None

    def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _read_token(self, db: sqlite_utils.Database) -> _Token:
        tables = set(db.table_names())
        sql = _TOKEN_SQL.format(
            states="(SELECT group_concat(target || state || coalesce(since, '')) FROM target_state)"
            if "target_state" in tables
            else "''",
            incidents="(SELECT max(id) FROM incidents)" if "incidents" in tables else "0",
        )
        probe_id, targets, states, incident_id = db.conn.execute(sql).fetchone()
        return _Token(probe_id or 0, targets or "", states or "", incident_id or 0)

    def read(
        self, window_s: float, now: datetime | None = None, detail: str | None = None
    ) -> Snapshot:
        """Everything the dashboard shows now, for a window of ``window_s`` seconds.

        Args:
            window_s: the window in seconds.
            now: the current UTC time (inject for tests and deterministic screenshots).
            detail: also read this target's :class:`TargetDetail`.
        """
        now = now or datetime.now(UTC)
        if self._db is None:
            if not self.db_path.exists():
                return Snapshot(now, window_s, [], None, None, 0, 0)
            self._db = open_db(self.db_path, migrate=False, any_thread=True)
        db = self._db
        if "probes" not in db.table_names():
            return Snapshot(now, window_s, [], None, None, 0, 0)
        token = self._read_token(db)
        last, old = self._last, self._token
        full = (
            last is None
            or old is None
            or last.window_s != window_s
            or old.targets != token.targets
            or self._last_full is None
            or (now - self._last_full).total_seconds() >= self.resummarize_s
        )
        changed = full or old != token
        if full or last is None or old is None:
            summaries = summarize(db, window_s, now, self._rollup_cache, with_verdicts=False)
            self._last_full = now
            recent = self._recent_count(db, now)
            self._last_5min = self._recent_count(db, now, 300)
        else:
            elapsed = (now - last.taken_at).total_seconds()
            by_name = {s.name: s.aged(elapsed) for s in last.targets}
            recent = last.probes_last_minute
            if token.probe_id != old.probe_id:
                fresh_names = [
                    r[0]
                    for r in db.conn.execute(
                        # +target: a rowid range, not a walk of the (target, started_at)
                        # index (94 ms at 1 M rows instead of under 1 ms).
                        "SELECT DISTINCT +target FROM probes WHERE id > ?",
                        [old.probe_id],
                    )
                ]
                fresh = summarize(
                    db, window_s, now, self._rollup_cache, names=fresh_names, with_verdicts=False
                )
                for s in fresh:
                    by_name[s.name] = s
                recent = self._recent_count(db, now)
                self._last_5min = self._recent_count(db, now, 300)
            summaries = [by_name[s.name] for s in last.targets if s.name in by_name]
        if full or old is None or old.states != token.states or old.probe_id != token.probe_id:
            # A probe can change a target's failure streak without changing its state.
            self._states = persisted_states(db)
        blind = blind_status(db, now) if "monitor_gaps" in db.table_names() else None
        attach_verdicts(db, summaries, now, self._states, blind)
        if changed:
            self._version += 1
        incidents = (
            last.incidents
            if not full and last is not None and old is not None and old == token
            else recent_incidents(db, now, window_s)
        )
        detail_snapshot = self._detail(db, detail, window_s, now, summaries, token, full)
        status = prober_status(db)
        age_s = (now - parse_iso(status.heartbeat_at)).total_seconds() if status else None
        span_s = 300.0
        if status is not None:
            span_s = min(span_s, max((now - parse_iso(status.started_at)).total_seconds(), 60))
        size = sum(
            p.stat().st_size for p in (self.db_path, Path(f"{self.db_path}-wal")) if p.exists()
        )
        self._token = token
        self._last = Snapshot(
            now,
            window_s,
            summaries,
            status,
            age_s,
            size,
            int(recent),
            blind.since if blind else None,
            blind.reason if blind else "",
            incidents,
            detail_snapshot,
            self._version,
            round(self._last_5min * 60 / span_s, 1),
        )
        return self._last

    def _detail(
        self,
        db: sqlite_utils.Database,
        name: str | None,
        window_s: float,
        now: datetime,
        summaries: list[TargetSummary],
        token: _Token,
        full: bool,
    ) -> TargetDetail | None:
        if name is None:
            self._detail_key = None
            return None
        key = (name, window_s, token.probe_id, token.incident_id, token.states)
        last = self._last.detail if self._last is not None else None
        if not full and key == self._detail_key and last is not None and last.name == name:
            return last
        summary = next((s for s in summaries if s.name == name), None)
        self._detail_key = key
        return target_detail(db, name, window_s, now, summary.errors_by_kind if summary else None)

    @staticmethod
    def _recent_count(db: sqlite_utils.Database, now: datetime, seconds: float = 60) -> int:
        return int(
            db.conn.execute(
                "SELECT count(*) FROM probes WHERE started_at >= ?",
                [iso(now - timedelta(seconds=seconds))],
            ).fetchone()[0]
        )


def snapshot(
    db_path: Path | str, window_s: float, now: datetime | None = None, detail: str | None = None
) -> Snapshot:
    """Open ``db_path``, read everything the dashboard shows, and close it (any thread)."""
    reader = SnapshotReader(db_path)
    try:
        return reader.read(window_s, now, detail)
    finally:
        reader.close()

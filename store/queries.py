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
when the monitor is blind; uptime for 24 h / 7 d / 30 d follows docs/uptime.md.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from store import histogram
from store.control import ProberStatus, prober_status, published_targets
from store.db import open_db
from store.health import Verdict, verdict
from store.history import (
    Uptime,
    blind_status,
    iso,
    monitor_gaps,
    parse_iso,
    persisted_states,
    uptime,
)
from store.rollups import get_bookmark
from store.stats import median, percentile

__all__ = ["Snapshot", "TargetSummary", "iso", "parse_iso", "snapshot", "summarize"]

#: Windows up to this length read raw rows; longer ones read rollups.
RAW_WINDOW_MAX_S = 6 * 3600.0
#: Uptime windows shown per target.
UPTIME_WINDOWS_S: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
#: Points in the TTFT trend.
SERIES_POINTS = 120


@dataclass(slots=True)
class TargetSummary:
    """Everything the overview shows for one target over the window.

    Durations in ms, rates in tokens/s, costs in USD, ages in seconds; None when no sample
    could give the figure. Percentiles and TPS use successful probes only (metrics.md §6).
    ``ttft_series_ms`` is per probe for raw windows and the mean per hour (per day beyond
    2 days) for rollup windows; ``ttft_values_ms`` is the raw values, or for rollup windows
    up to 100 values spread over the merged histogram's quantiles (the same shape).
    ``uptime`` maps ``24h``/``7d``/``30d`` to :class:`store.history.Uptime`.
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
    ttft_series_ms: list[float | None] = field(default_factory=list)
    ttft_values_ms: list[float] = field(default_factory=list)
    verdict: Verdict | None = None
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    uptime: dict[str, Uptime] = field(default_factory=dict)
    from_rollups: bool = False
    effective_interval_s: float | None = None
    """Interval after probing budgets (None: as configured); staleness is judged on it."""
    budget_note: str = ""
    """Why a budget stretched the interval or cannot be enforced ("" when not), for display."""


_RAW_SQL = (
    "SELECT target, started_at, status, error_kind, error_message, ttft_ms, total_ms, "
    "decode_tps, cost_usd, input_tokens, cache_read_tokens FROM probes WHERE started_at >= ? "
    "ORDER BY started_at"
)


def summarize(
    db: sqlite_utils.Database,
    window_s: float,
    now: datetime | None = None,
    cache: RollupCache | None = None,
) -> list[TargetSummary]:
    """Summaries of every published target over the last ``window_s`` seconds.

    Args:
        db: an open database.
        window_s: window length in seconds.
        now: the current UTC time (injectable for tests).
        cache: keeps the settled rollup sums of a long window between calls (one per reader).
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
    }
    if window_s <= RAW_WINDOW_MAX_S:
        _from_raw(db, out, iso(start), now)
    else:
        _from_rollups(db, out, start, now, window_s, cache)
    for s in out.values():
        if s.last_started_at is None:
            _last_probe(db, s, now)
    has_history = "target_state" in db.table_names()
    states = persisted_states(db) if has_history else {}
    blind = blind_status(db, now) if has_history else None
    if has_history:
        for label, w in UPTIME_WINDOWS_S.items():
            gaps = monitor_gaps(db, now - timedelta(seconds=w), now)
            for name, up in uptime(db, w, now, out, gaps).items():
                out[name].uptime[label] = up
    for s in out.values():
        st = states.get(s.name)
        s.verdict = verdict(
            st.state if st else None,
            st.since if st else None,
            st.cause_kind if st else None,
            st.cause_message if st else "",
            configured=s.configured,
            paused=s.paused,
            blind_since=blind.since if blind else None,
            blind_reason=blind.reason if blind else "",
            last_age_s=s.last_age_s,
            # A target whose budget stretched its interval is not stale.
            interval_s=max(s.interval_s, s.effective_interval_s or 0.0),
            fail_streak=st.fail_streak if st else 0,
        )
    return list(out.values())


def _from_raw(
    db: sqlite_utils.Database, out: dict[str, TargetSummary], since: str, now: datetime
) -> None:
    rows_by: dict[str, list[tuple[Any, ...]]] = {}
    for row in db.conn.execute(_RAW_SQL, [since]):
        rows_by.setdefault(row[0], []).append(row)
    for name, rows in rows_by.items():
        s = out.get(name)
        if s is None:
            continue
        s.count = len(rows)
        failed = Counter(str(r[3]) for r in rows if r[2] != "ok")
        s.errors = sum(failed.values())
        s.errors_by_kind = dict(failed)
        s.error_rate = s.errors / s.count
        if failed:
            s.top_error_kind = failed.most_common(1)[0][0]
        ok = [r for r in rows if r[2] == "ok"]
        ttft = sorted(float(r[5]) for r in ok if r[5] is not None)
        total = sorted(float(r[6]) for r in ok if r[6] is not None)
        s.ttft_values_ms = ttft
        s.ttft_p50_ms, s.ttft_p95_ms, s.ttft_p99_ms = (percentile(ttft, q) for q in (50, 95, 99))
        s.total_p50_ms, s.total_p95_ms, s.total_p99_ms = (
            percentile(total, q) for q in (50, 95, 99)
        )
        s.decode_tps_p50 = median([float(r[7]) for r in ok if r[7] is not None])
        costs = [float(r[8]) for r in ok if r[8] is not None]
        s.cost_per_request_usd = sum(costs) / len(costs) if costs else None
        cached = [r for r in ok if r[9] and r[10] is not None]
        if cached:
            s.cache_hit_share = sum(int(r[10]) for r in cached) / sum(int(r[9]) for r in cached)
        last = rows[-1]
        _set_last(s, last[1], last[2], last[3], last[4], last[5], now)
        s.ttft_series_ms = [
            float(r[5]) if r[2] == "ok" and r[5] is not None else None
            for r in rows[-SERIES_POINTS:]
        ]


def _set_last(
    s: TargetSummary,
    started_at: str,
    status: str,
    kind: str | None,
    message: str | None,
    ttft: float | None,
    now: datetime,
) -> None:
    s.last_started_at, s.last_status = started_at, status
    s.last_error_kind, s.last_error_message, s.last_ttft_ms = kind, message, ttft
    s.last_age_s = (now - parse_iso(started_at)).total_seconds()


def _last_probe(db: sqlite_utils.Database, s: TargetSummary, now: datetime) -> None:
    row = db.conn.execute(
        "SELECT started_at, status, error_kind, error_message, ttft_ms FROM probes "
        "WHERE target = ? ORDER BY started_at DESC LIMIT 1",
        [s.name],
    ).fetchone()
    if row:
        _set_last(s, row[0], row[1], row[2], row[3], row[4], now)


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
class _Sums:
    """Counts, sums and histograms of one target over some rollup rows and raw probes."""

    probes: int = 0
    ok: int = 0
    cost: float = 0.0
    cost_n: int = 0
    cache: int = 0
    cache_in: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ttft: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    tps: dict[str, int] = field(default_factory=dict)

    def add(self, other: _Sums) -> None:
        """Add ``other`` into this one (``other`` is left as it is). Histogram keys are
        bucket indices as text (as in the stored JSON)."""
        self.probes += other.probes
        self.ok += other.ok
        self.cost += other.cost
        self.cost_n += other.cost_n
        self.cache += other.cache
        self.cache_in += other.cache_in
        for mine, theirs in (
            (self.errors, other.errors),
            (self.ttft, other.ttft),
            (self.total, other.total),
            (self.tps, other.tps),
        ):
            get = mine.get
            for k, n in theirs.items():
                mine[k] = get(k, 0) + n


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
    sums: dict[str, _Sums] = field(default_factory=dict)


def _split(terms: list[Term], cut: datetime) -> tuple[list[Term], list[Term]]:
    """Terms cut into the buckets that ended by ``cut`` (settled) and the later ones."""
    settled: list[Term] = []
    live: list[Term] = []
    for table, lo, hi, sign in terms:
        edge = iso(_floor(cut, _BUCKET_S[table]))
        if lo < edge:
            settled.append((table, lo, hi if hi is not None and hi <= edge else edge, sign))
        if hi is None or hi > edge:
            live.append((table, max(lo, edge), hi, sign))
    return settled, live


_BUCKET_S = {"rollup_minute": 60, "rollup_hour": 3600, "rollup_day": 86400}


def _read_terms(db: sqlite_utils.Database, terms: list[Term]) -> dict[str, _Sums]:
    """Per-target sums of the rollup rows of ``terms`` (signed; keys of the histograms and
    error counts stay JSON text keys).

    SQLite sums the counters and concatenates each target's JSON histograms into one array,
    so Python parses one text per target and column and adds the objects up. That is ~2.5x
    faster here than ``json_each`` with ``GROUP BY target, key`` in SQLite, whose sort of
    every histogram key (~500 ns each) was most of a long window's cost.
    """
    acc: dict[str, _Sums] = {}
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
        a = acc.get(name)
        if a is None:
            a = acc[name] = _Sums()
        a.probes += sign * probes
        a.ok += sign * ok
        a.cost += sign * (cost or 0.0)
        a.cost_n += sign * (cost_n or 0)
        a.cache += sign * (cache or 0)
        a.cache_in += sign * (cache_in or 0)
        for text, into in ((errors, a.errors), (ttft, a.ttft), (total, a.total), (tps, a.tps)):
            if not text:  # every row NULL: group_concat gives NULL
                continue
            for counts in json.loads(text):
                if not into and sign > 0:
                    into.update(counts)  # the first object: a copy, no per-key adds
                    continue
                get = into.get
                for k, n in counts.items():
                    into[k] = get(k, 0) + sign * n
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
    oldest = {t: db.conn.execute(f"SELECT min(bucket) FROM {t}").fetchone()[0] for t in _BUCKET_S}
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
        a = acc.get(name)
        if a is None:
            a = acc[name] = _Sums()
        a.add(sums)
    # Probes not rolled up yet (normally the last few seconds): a rowid range, not the
    # started_at index (the unary + keeps the planner off it).
    tail = db.conn.execute(
        "SELECT target, status, error_kind, ttft_ms, total_ms, decode_tps, cost_usd, "
        "input_tokens, cache_read_tokens FROM probes WHERE id > ? AND +started_at >= ?",
        [bookmark, first],
    ).fetchall()
    for name, status, kind, ttft, total, tps, cost, inp, cache_read in tail:
        a = acc.get(name)
        if a is None:
            a = acc[name] = _Sums()
        a.probes += 1
        if status != "ok":
            key = kind or "error"
            a.errors[key] = a.errors.get(key, 0) + 1
            continue
        a.ok += 1
        for into, value in ((a.ttft, ttft), (a.total, total), (a.tps, tps)):
            if value is not None and value == value:
                k = str(histogram.bucket_index(value))
                into[k] = into.get(k, 0) + 1
        if cost is not None:
            a.cost += cost
            a.cost_n += 1
        if inp and cache_read is not None:
            a.cache += cache_read
            a.cache_in += inp
    for name, a in acc.items():
        s = out.get(name)
        if s is None or a.probes <= 0:
            continue
        s.from_rollups = True
        s.count = a.probes
        s.errors = s.count - a.ok
        s.errors_by_kind = {k: n for k, n in a.errors.items() if n > 0}
        s.error_rate = s.errors / s.count
        if s.errors_by_kind:
            s.top_error_kind = Counter(s.errors_by_kind).most_common(1)[0][0]
        # Bucket keys back to integers; a subtracted edge may have emptied some buckets.
        ttft = {int(k): n for k, n in a.ttft.items() if n > 0}
        total = {int(k): n for k, n in a.total.items() if n > 0}
        tps = {int(k): n for k, n in a.tps.items() if n > 0}
        s.ttft_p50_ms, s.ttft_p95_ms, s.ttft_p99_ms = histogram.quantiles(ttft, (50, 95, 99))
        s.total_p50_ms, s.total_p95_ms, s.total_p99_ms = histogram.quantiles(total, (50, 95, 99))
        s.decode_tps_p50 = histogram.quantile(tps, 50)
        s.cost_per_request_usd = a.cost / a.cost_n if a.cost_n else None
        s.cache_hit_share = a.cache / a.cache_in if a.cache_in else None
        s.ttft_values_ms = histogram.sample(ttft, 100)
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
        blind_since: UTC ISO 8601 time since which the monitor is blind (prober not
            running, or no network on the monitor's side), None while it can see.
        blind_reason: why it is blind, "" otherwise.
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


class SnapshotReader:
    """Reads :class:`Snapshot` values for the dashboard through one long-lived connection.

    Re-summarising every target each second is most of the dashboard's idle CPU, and nearly
    always redundant: between probes only ages and the heartbeat change. The reader re-runs
    the window queries only when a new probe row was committed, the window changed, or
    ``resummarize_s`` passed (the window slides); otherwise it reuses the summaries and moves
    their ages forward.

    Not thread-safe: use it from one thread at a time (calls never overlap).
    """

    def __init__(self, db_path: Path | str, resummarize_s: float = 15.0) -> None:
        self.db_path = Path(db_path)
        self.resummarize_s = resummarize_s
        self._db: sqlite_utils.Database | None = None
        self._last: Snapshot | None = None
        self._last_full: datetime | None = None
        self._last_probe_id: int | None = None
        self._rollup_cache = RollupCache()

    def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def read(self, window_s: float, now: datetime | None = None) -> Snapshot:
        """Everything the dashboard shows now, for a window of ``window_s`` seconds."""
        now = now or datetime.now(UTC)
        if self._db is None:
            if not self.db_path.exists():
                return Snapshot(now, window_s, [], None, None, 0, 0)
            self._db = open_db(self.db_path, migrate=False, any_thread=True)
        db = self._db
        if "probes" not in db.table_names():
            return Snapshot(now, window_s, [], None, None, 0, 0)
        probe_id = db.conn.execute("SELECT max(id) FROM probes").fetchone()[0]
        last = self._last
        fresh = (
            last is not None
            and last.window_s == window_s
            and probe_id == self._last_probe_id
            and self._last_full is not None
            and (now - self._last_full).total_seconds() < self.resummarize_s
        )
        if fresh and last is not None:
            elapsed = (now - last.taken_at).total_seconds()
            summaries = last.targets
            for s in summaries:
                if s.last_age_s is not None:
                    s.last_age_s += elapsed
            recent = last.probes_last_minute
        else:
            summaries = summarize(db, window_s, now, self._rollup_cache)
            self._last_full, self._last_probe_id = now, probe_id
            recent = db.conn.execute(
                "SELECT count(*) FROM probes WHERE started_at >= ?",
                [iso(now - timedelta(seconds=60))],
            ).fetchone()[0]
        status = prober_status(db)
        age_s = (now - parse_iso(status.heartbeat_at)).total_seconds() if status else None
        blind = blind_status(db, now) if "monitor_gaps" in db.table_names() else None
        size = sum(
            p.stat().st_size for p in (self.db_path, Path(f"{self.db_path}-wal")) if p.exists()
        )
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
        )
        return self._last


def snapshot(db_path: Path | str, window_s: float, now: datetime | None = None) -> Snapshot:
    """Open ``db_path``, read everything the dashboard shows, and close it (any thread)."""
    reader = SnapshotReader(db_path)
    try:
        return reader.read(window_s, now)
    finally:
        reader.close()

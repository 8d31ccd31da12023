"""One target's detail screen: its finer trend, failures by kind with their newest message,
its recent probes, its state history, its newest prompt-caching verdict and its cold starts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlite_utils

from probes.timestamps import iso
from store.coldstart import ColdStartStats, cold_start_stats
from store.incidents import Incident, target_incidents
from store.tally import CANARY_SQL, error_label, rank_errors
from store.trends import Trend, trends

if TYPE_CHECKING:
    # The check's module loads httpx: imported with the first detail read, not with the
    # dashboard's snapshot types.
    from probes.cache_check import CacheCheckResult


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
    kind: str = "canary"
    """The probe's kind (``canary``, ``cache_check``, ``workload``, ``cold_start``)."""
    workload: str | None = None
    """The workload's name, for kind ``workload``."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetDetail:
    """What the detail screen shows beyond the target's :class:`TargetSummary`.

    Attributes:
        name: the target.
        window_s: the window.
        trend: TTFT / TPS / failures over the window in finer buckets than the overview.
        errors: failures by kind, most frequent first, each with its newest message.
        recent: the newest probes (any age), newest first.
        incidents: the target's state history, newest first (all states).
        cache: the newest prompt-caching check (any age; :mod:`store.cache_checks`), None
            when the target has never been checked.
        cold: warm and cold TTFT, cold-start rate and penalty over the window from its
            canary and cold-schedule probes (:mod:`store.coldstart`), None when none of them
            knows whether it was cold (no ``scaledown_window_s``).
    """

    name: str
    window_s: float
    trend: Trend
    errors: tuple[ErrorKindSummary, ...]
    recent: tuple[RecentProbe, ...]
    incidents: tuple[Incident, ...]
    cache: CacheCheckResult | None = None
    cold: ColdStartStats | None = None


def target_detail(
    db: sqlite_utils.Database,
    name: str,
    window_s: float,
    now: datetime,
    errors_by_kind: Mapping[str, int] | None = None,
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
        errors_by_kind: the window's failure counts from the summary, most frequent first (so
            the counts match the overview exactly, rollups included); read from raw probes
            when None.
        buckets: time buckets of the trend.
        recent: how many recent probes to list.
        incidents: how many state changes to list.
    """
    from store.cache_checks import latest_cache_checks

    start = now - timedelta(seconds=window_s)
    trend = trends(db, [name], start, now, window_s, buckets)[name]
    messages: dict[str, tuple[str, str, int | None]] = {}
    counts: Counter[str] = Counter()
    for kind, at, message, status in db.conn.execute(
        "SELECT error_kind, started_at, error_message, http_status FROM probes "
        f"WHERE target = ? AND started_at >= ? AND status != 'ok' AND {CANARY_SQL} "
        "ORDER BY started_at DESC",
        [name, iso(start)],
    ):
        key = error_label(kind)
        counts[key] += 1
        messages.setdefault(key, (at, message or "", status))
    by_kind = errors_by_kind if errors_by_kind is not None else rank_errors(counts)
    errors = [
        ErrorKindSummary(
            kind=kind,
            count=n,
            last_at=messages[kind][0] if kind in messages else None,
            last_message=messages[kind][1] if kind in messages else "",
            http_status=messages[kind][2] if kind in messages else None,
        )
        for kind, n in by_kind.items()
    ]
    rows = db.conn.execute(
        "SELECT started_at, status, error_kind, error_message, http_status, ttft_ms, "
        "total_ms, decode_tps, output_tokens, cost_usd, kind, workload FROM probes "
        "WHERE target = ? ORDER BY started_at DESC LIMIT ?",
        [name, recent],
    ).fetchall()
    # Cold starts: the canary and the deliberately cold schedule (a workload's or a cache
    # check's TTFT is another prompt's and would skew the warm figures).
    cold = cold_start_stats(
        {"status": status, "ttft_ms": ttft, "cold": flag}
        for status, ttft, flag in db.conn.execute(
            "SELECT status, ttft_ms, cold FROM probes WHERE target = ? AND started_at >= ? "
            "AND kind IN ('canary', 'cold_start') AND cold IS NOT NULL",
            [name, iso(start)],
        )
    )
    return TargetDetail(
        name=name,
        window_s=window_s,
        trend=trend,
        errors=tuple(errors),
        recent=tuple(RecentProbe(*r) for r in rows),
        incidents=tuple(target_incidents(db, name, incidents)),
        cache=latest_cache_checks(db, name).get(name),
        cold=cold if cold.probes else None,
    )

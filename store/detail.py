"""One target's detail screen: its finer trend, failures by kind with their newest message,
its recent probes and its state history."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from probes.timestamps import iso
from store.incidents import Incident, target_incidents
from store.tally import CANARY_SQL, error_label, rank_errors
from store.trends import Trend, trends


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
    """

    name: str
    window_s: float
    trend: Trend
    errors: tuple[ErrorKindSummary, ...]
    recent: tuple[RecentProbe, ...]
    incidents: tuple[Incident, ...]


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
        "total_ms, decode_tps, output_tokens, cost_usd FROM probes WHERE target = ? "
        "ORDER BY started_at DESC LIMIT ?",
        [name, recent],
    ).fetchall()
    return TargetDetail(
        name=name,
        window_s=window_s,
        trend=trend,
        errors=tuple(errors),
        recent=tuple(RecentProbe(*r) for r in rows),
        incidents=tuple(target_incidents(db, name, incidents)),
    )

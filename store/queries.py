"""Dashboard queries: per-target figures over a time window.

One indexed range scan per target (``probes(target, started_at)``); percentiles are computed
in Python over the window's values, which at probe rates (a few hundred rows per target per
day) is cheaper than any SQL emulation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from store.control import ProberStatus, prober_status, published_targets
from store.db import open_db
from store.health import Verdict, decide
from store.stats import median, percentile

_RECENT_FOR_STATE = 10


def iso(when: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: the stored ``started_at`` format."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse a stored UTC timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(slots=True)
class TargetSummary:
    """Everything the overview shows for one target over the window.

    Durations in ms, rates in tokens/s, costs in USD, ages in seconds; None when no sample
    could give the figure. Percentiles and TPS use successful probes only (metrics.md §6).
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
    effective_interval_s: float | None = None
    """Interval after probing budgets (None: as configured); staleness is judged on it."""
    budget_note: str = ""
    """Why a budget stretched the interval or cannot be enforced ("" when not), for display."""


def summarize(
    db: sqlite_utils.Database, window_s: float, now: datetime | None = None
) -> list[TargetSummary]:
    """Summaries of every published target over the last ``window_s`` seconds.

    Args:
        db: an open database.
        window_s: window length in seconds.
        now: the current UTC time (injectable for tests).
    """
    now = now or datetime.now(UTC)
    since = iso(now - timedelta(seconds=window_s))
    out: list[TargetSummary] = []
    for t in published_targets(db):
        s = TargetSummary(
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
        rows = list(
            db.query(
                "SELECT started_at, status, error_kind, error_message, ttft_ms, total_ms, "
                "decode_tps, cost_usd, input_tokens, cache_read_tokens FROM probes "
                "WHERE target = ? AND started_at >= ? ORDER BY started_at",
                [t.name, since],
            )
        )
        _fill(s, rows, now)
        if not rows:
            last = list(
                db.query(
                    "SELECT started_at, status, error_kind FROM probes WHERE target = ? "
                    "ORDER BY started_at DESC LIMIT 1",
                    [t.name],
                )
            )
            if last:
                s.last_started_at = last[0]["started_at"]
                s.last_status, s.last_error_kind = last[0]["status"], last[0]["error_kind"]
                s.last_age_s = (now - parse_iso(s.last_started_at)).total_seconds()
        recent = [(r["status"], r["error_kind"]) for r in reversed(rows[-_RECENT_FOR_STATE:])]
        s.verdict = decide(
            recent,
            s.error_rate,
            s.last_age_s,
            max(t.interval_s, t.effective_interval_s or 0.0),  # a stretched target is not stale
            configured=t.configured,
            paused=t.paused,
        )
        out.append(s)
    return out


def _fill(s: TargetSummary, rows: list[dict[str, object]], now: datetime) -> None:
    if not rows:
        return
    s.count = len(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    s.errors = len(failed)
    s.error_rate = s.errors / s.count
    if failed:
        s.top_error_kind = Counter(str(r["error_kind"]) for r in failed).most_common(1)[0][0]
    ok = [r for r in rows if r["status"] == "ok"]
    ttft = sorted(float(r["ttft_ms"]) for r in ok if r["ttft_ms"] is not None)  # type: ignore[arg-type]
    total = sorted(float(r["total_ms"]) for r in ok if r["total_ms"] is not None)  # type: ignore[arg-type]
    s.ttft_values_ms = ttft
    s.ttft_p50_ms, s.ttft_p95_ms, s.ttft_p99_ms = (percentile(ttft, q) for q in (50, 95, 99))
    s.total_p50_ms, s.total_p95_ms, s.total_p99_ms = (percentile(total, q) for q in (50, 95, 99))
    s.decode_tps_p50 = median([float(r["decode_tps"]) for r in ok if r["decode_tps"] is not None])  # type: ignore[arg-type]
    costs = [float(r["cost_usd"]) for r in ok if r["cost_usd"] is not None]  # type: ignore[arg-type]
    s.cost_per_request_usd = sum(costs) / len(costs) if costs else None
    inputs = [r for r in ok if r["input_tokens"] and r["cache_read_tokens"] is not None]
    if inputs:
        s.cache_hit_share = sum(int(r["cache_read_tokens"]) for r in inputs) / sum(  # type: ignore[call-overload]
            int(r["input_tokens"])
            for r in inputs  # type: ignore[call-overload]
        )
    last = rows[-1]
    s.last_status = str(last["status"])
    s.last_error_kind = last["error_kind"]  # type: ignore[assignment]
    s.last_error_message = last["error_message"]  # type: ignore[assignment]
    s.last_ttft_ms = last["ttft_ms"]  # type: ignore[assignment]
    s.last_started_at = str(last["started_at"])
    s.last_age_s = (now - parse_iso(s.last_started_at)).total_seconds()
    s.ttft_series_ms = [
        float(r["ttft_ms"]) if r["status"] == "ok" and r["ttft_ms"] is not None else None  # type: ignore[arg-type]
        for r in rows[-120:]
    ]


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
    """

    taken_at: datetime
    window_s: float
    targets: list[TargetSummary]
    prober: ProberStatus | None
    prober_age_s: float | None
    db_bytes: int
    probes_last_minute: int


def snapshot(db_path: Path, window_s: float, now: datetime | None = None) -> Snapshot:
    """Open ``db_path`` read-mostly, read everything the dashboard shows, and close it.

    Safe to call from any thread (it opens its own connection).
    """
    now = now or datetime.now(UTC)
    db = open_db(db_path, migrate=False)
    try:
        if "probes" not in db.table_names():
            return Snapshot(now, window_s, [], None, None, 0, 0)
        summaries = summarize(db, window_s, now)
        status = prober_status(db)
        age_s = (now - parse_iso(status.heartbeat_at)).total_seconds() if status else None
        recent = next(
            iter(
                db.query(
                    "SELECT count(*) AS n FROM probes WHERE started_at >= ?",
                    [iso(now - timedelta(seconds=60))],
                )
            )
        )["n"]
    finally:
        db.close()
    size = sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists())
    return Snapshot(now, window_s, summaries, status, age_s, size, int(recent))

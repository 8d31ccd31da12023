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
from typing import Any

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
            t.interval_s,
            configured=t.configured,
            paused=t.paused,
        )
        out.append(s)
    return out


def _fill(s: TargetSummary, rows: list[dict[str, Any]], now: datetime) -> None:
    if not rows:
        return
    s.count = len(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    s.errors = len(failed)
    s.error_rate = s.errors / s.count
    if failed:
        s.top_error_kind = Counter(str(r["error_kind"]) for r in failed).most_common(1)[0][0]
    ok = [r for r in rows if r["status"] == "ok"]
    ttft = sorted(float(r["ttft_ms"]) for r in ok if r["ttft_ms"] is not None)
    total = sorted(float(r["total_ms"]) for r in ok if r["total_ms"] is not None)
    s.ttft_values_ms = ttft
    s.ttft_p50_ms, s.ttft_p95_ms, s.ttft_p99_ms = (percentile(ttft, q) for q in (50, 95, 99))
    s.total_p50_ms, s.total_p95_ms, s.total_p99_ms = (percentile(total, q) for q in (50, 95, 99))
    s.decode_tps_p50 = median([float(r["decode_tps"]) for r in ok if r["decode_tps"] is not None])
    costs = [float(r["cost_usd"]) for r in ok if r["cost_usd"] is not None]
    s.cost_per_request_usd = sum(costs) / len(costs) if costs else None
    inputs = [r for r in ok if r["input_tokens"] and r["cache_read_tokens"] is not None]
    if inputs:
        s.cache_hit_share = sum(int(r["cache_read_tokens"]) for r in inputs) / sum(
            int(r["input_tokens"]) for r in inputs
        )
    last = rows[-1]
    s.last_status = str(last["status"])
    s.last_error_kind = last["error_kind"]
    s.last_error_message = last["error_message"]
    s.last_ttft_ms = last["ttft_ms"]
    s.last_started_at = str(last["started_at"])
    s.last_age_s = (now - parse_iso(s.last_started_at)).total_seconds()
    s.ttft_series_ms = [
        float(r["ttft_ms"]) if r["status"] == "ok" and r["ttft_ms"] is not None else None
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


class SnapshotReader:
    """Reads :class:`Snapshot` values for the dashboard through one long-lived connection.

    Re-summarising every target each second is most of the dashboard's idle CPU, and nearly
    always redundant: between probes only ages and the heartbeat change. The reader re-runs
    the window queries only when a new probe row was committed, the window changed, or
    ``resummarize_s`` passed (the window slides); otherwise it reuses the summaries and moves
    their ages forward.

    Not thread-safe: use it from one thread at a time (calls never overlap).
    """

    def __init__(self, db_path: Path, resummarize_s: float = 15.0) -> None:
        self.db_path = db_path
        self.resummarize_s = resummarize_s
        self._db: sqlite_utils.Database | None = None
        self._last: Snapshot | None = None
        self._last_full: datetime | None = None
        self._last_probe_id: int | None = None

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
        probe_id = next(iter(db.query("SELECT max(id) AS m FROM probes")))["m"]
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
            summaries = summarize(db, window_s, now)
            self._last_full, self._last_probe_id = now, probe_id
            recent = next(
                iter(
                    db.query(
                        "SELECT count(*) AS n FROM probes WHERE started_at >= ?",
                        [iso(now - timedelta(seconds=60))],
                    )
                )
            )["n"]
        status = prober_status(db)
        age_s = (now - parse_iso(status.heartbeat_at)).total_seconds() if status else None
        size = sum(
            p.stat().st_size for p in (self.db_path, Path(f"{self.db_path}-wal")) if p.exists()
        )
        self._last = Snapshot(now, window_s, summaries, status, age_s, size, int(recent))
        return self._last


def snapshot(db_path: Path, window_s: float, now: datetime | None = None) -> Snapshot:
    """Open ``db_path``, read everything the dashboard shows, and close it (any thread)."""
    reader = SnapshotReader(db_path)
    try:
        return reader.read(window_s, now)
    finally:
        reader.close()

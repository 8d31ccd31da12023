"""Builders shared by the history tests: probe records at chosen times, a fixed clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlite_utils

from probes.record import ProbeRecord
from probes.timestamps import iso

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


def record(
    target: str,
    when: datetime,
    status: str = "ok",
    kind: str | None = None,
    message: str | None = None,
    ttft: float | None = 150.0,
    provider: str = "openai-compatible",
    rng: random.Random | None = None,
) -> ProbeRecord:
    """A finished probe of ``target`` started at ``when``."""
    ok = status == "ok"
    total = (ttft or 100.0) * 3
    return ProbeRecord(
        started_at=iso(when),
        target=target,
        provider=provider,
        model="m",
        status="ok" if ok else "error",
        error_kind=None if ok else kind,
        error_message=None if ok else (message or f"{kind} happened"),
        ttft_ms=ttft if ok else None,
        total_ms=total if ok else 50.0,
        decode_tps=(rng.uniform(20, 200) if rng else 80.0) if ok else None,
        input_tokens=20 if ok else None,
        cache_read_tokens=5 if ok else None,
        output_tokens=40 if ok else None,
        cost_usd=0.0001 if ok else None,
        token_events=40 if ok else 0,
        usage_source="reported" if ok else "none",
    )


def set_heartbeat(db: sqlite_utils.Database, when: datetime) -> None:
    """Pretend the prober's last heartbeat was at ``when``."""
    db.execute(
        "INSERT INTO prober (id, pid, started_at, heartbeat_at, paused, config_path) "
        "VALUES (1, 1, ?, ?, 0, '') ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        [iso(when), iso(when)],
    )


def minutes(n: float) -> timedelta:
    """``n`` minutes."""
    return timedelta(minutes=n)

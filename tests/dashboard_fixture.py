"""A deterministic dashboard database: fixed timestamps relative to :data:`NOW`, no randomness.

Seven targets over the last hour, one probe every 30 s, stored through the prober's own
``HistoryWriter`` so states and incidents are the real ones:

* group ``chat``: ``chat-primary`` (recovered from an outage 40 min ago, down again since
  NOW - 5 min with HTTP 503) and ``chat-fallback`` (healthy, rate-limit headers);
* ``fast-llama`` (fast), ``reasoner`` (slow first token, fast decode), ``flaky-mix`` (one in
  five probes fails: 429 or 500, degraded by the last 429), ``local-llm`` (free);
* ``no-key`` (not configured, never probed).

The prober's heartbeat is one second old, so the monitor is not blind.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probes.config import Config, parse_config
from probes.record import ProbeRecord
from probes.timestamps import iso
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget

#: The injected "now" of every dashboard test that uses this fixture.
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)

#: name, group, model, base TTFT ms, decode tok/s, USD per request.
PROFILES: tuple[tuple[str, str | None, str, float, float, float | None], ...] = (
    ("chat-primary", "chat", "demo-gpt-large", 820.0, 40.0, 0.000525),
    ("chat-fallback", "chat", "demo-gpt-mini", 450.0, 75.0, 0.000031),
    ("fast-llama", None, "demo-llama-70b", 120.0, 420.0, 0.000049),
    ("reasoner", None, "demo-r1", 300.0, 110.0, 0.000115),
    ("flaky-mix", None, "demo-mixtral", 600.0, 55.0, 0.000040),
    ("local-llm", None, "demo-local-8b", 60.0, 30.0, 0.0),
)

PROBES_PER_TARGET = 120
STEP = timedelta(seconds=30)


def _wobble(i: int, k: int) -> float:
    """A deterministic spread around 1.0 (0.75 .. 1.45), different per target."""
    return 1.0 + 0.25 * math.sin(i * 0.7 + k) + 0.2 * ((i * 7 + k * 3) % 5) / 4


def _failure(name: str, i: int, at: datetime) -> tuple[str, int, str] | None:
    """(error kind, HTTP status, message) when probe ``i`` of ``name`` fails."""
    if name == "chat-primary":
        outage_old = NOW - timedelta(minutes=42) <= at < NOW - timedelta(minutes=38)
        outage_now = at >= NOW - timedelta(minutes=5)
        if outage_old or outage_now:
            return ("server_error", 503, "HTTP 503: upstream unavailable")
    if name == "flaky-mix" and i % 5 == 4:
        if i % 10 == 9:
            return ("rate_limited", 429, "HTTP 429: Rate limit reached")
        return ("server_error", 500, "HTTP 500: internal error")
    return None


def build(path: Path) -> Path:
    """Create the fixture database at ``path`` and return ``path``."""
    db = open_db(path)
    names = [p[0] for p in PROFILES]
    control.publish_targets(
        db,
        [
            control.PublishedTarget(n, "openai-compatible", m, g, 30.0, True, False)
            for n, g, m, *_ in PROFILES
        ]
        + [
            control.PublishedTarget(
                "no-key",
                "anthropic",
                "claude-x",
                None,
                30.0,
                False,
                False,
                api_key_env="ANTHROPIC_API_KEY",
            )
        ],
    )
    start = NOW - STEP * PROBES_PER_TARGET
    history = HistoryWriter(
        db,
        [MonitoredTarget(n, f"{n}.example") for n in names]
        + [MonitoredTarget("no-key", "anthropic.example", configured=False)],
        start - timedelta(seconds=5),
    )
    for i in range(PROBES_PER_TARGET):
        for k, (name, _, model, ttft, tps, cost) in enumerate(PROFILES):
            at = start + STEP * i + timedelta(seconds=k * 2 + 1)
            fail = _failure(name, i, at)
            base = ProbeRecord(
                started_at=iso(at),
                target=name,
                provider="openai-compatible",
                model=model,
                status="ok",
            )
            if fail is not None:
                kind, status, message = fail
                record = replace(
                    base,
                    status="error",
                    error_kind=kind,
                    http_status=status,
                    error_message=message,
                    total_ms=40.0 + k,
                    retry_after_s=2.0 if status == 429 else None,
                )
            else:
                t = ttft * _wobble(i, k)
                rate = tps / _wobble(i + 3, k)
                record = replace(
                    base,
                    status="ok",
                    ttft_ms=round(t, 1),
                    total_ms=round(t + 47 / rate * 1000, 1),
                    decode_tps=round(rate, 1),
                    input_tokens=20,
                    output_tokens=48,
                    cost_usd=cost,
                    token_events=48,
                    usage_source="reported",
                )
                if name == "chat-fallback":
                    record = replace(
                        record,
                        ratelimit_remaining_requests=1000 - i,
                        ratelimit_remaining_tokens=200_000 - 60 * i,
                        ratelimit_reset_requests_s=60.0,
                    )
            history.store_probe(record)
    db.execute(
        "INSERT INTO prober (id, pid, started_at, heartbeat_at, paused, config_path) "
        "VALUES (1, 4242, ?, ?, 0, 'fixture') ON CONFLICT(id) DO UPDATE SET "
        "heartbeat_at = excluded.heartbeat_at, started_at = excluded.started_at",
        [iso(start - timedelta(seconds=5)), iso(NOW - timedelta(seconds=1))],
    )
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def config() -> Config:
    """The fixture's targets as a config with their prices and two ``[[features]]``, for the
    cost screen (the base URLs are never contacted)."""
    lines: list[str] = []
    for name, group, model, _, _, cost in PROFILES:
        per_mtok = (cost or 0.0) / 68 * 1e6  # the fixture's 20 + 48 tokens per probe
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            'provider = "openai-compatible"',
            f'base_url = "http://127.0.0.1:9/{name}/v1"',
            f'model = "{model}"',
            f"input_usd_per_mtok = {per_mtok:.4f}",
            f"output_usd_per_mtok = {per_mtok:.4f}",
        ]
        if group:
            lines.append(f'group = "{group}"')
    lines += [
        "[[features]]",
        'name = "support-chat"',
        "input_tokens = 1200",
        "output_tokens = 300",
        "requests_per_day = 20000",
        "[[features]]",
        'name = "summaries"',
        "input_tokens = 6000",
        "output_tokens = 600",
        "requests_per_day = 500",
    ]
    return parse_config("\n".join(lines), "<fixture>")

"""The dashboard fixture (``dashboard_fixture.py``) plus issue 13's answers, deterministic.

On top of the seven targets' canaries:

* ``chat-fallback`` also runs two long-prompt workloads every 5 minutes: ``1k`` (1,000 input
  tokens, TTFT 600 ms) and ``10k`` (10,000 tokens, TTFT 2,400 ms, the last one timing out),
  and it scales to zero: one canary in ten (``i % 10 == 0``, 12 of 120) is marked cold and
  took 4,000 ms longer;
* its newest prompt-caching check read 92 % of 1,180 tokens from the cache (TTFT −38 %, cost
  −71 %); ``fast-llama``'s found no cache (0 of 1,180);
* official status: ``chat-primary``'s page says operational while it is measured down;
  ``chat-fallback``'s page could not be read (unknown).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

from probes.cache_check import CacheCheckResult
from probes.record import ProbeRecord
from probes.timestamps import iso
from store.db import open_db, record_row
from tests import dashboard_fixture
from tests.dashboard_fixture import NOW

#: (workload name, reported input tokens, TTFT ms) of chat-fallback's workloads.
WORKLOADS = (("1k", 1000, 600.0), ("10k", 10_000, 2400.0))
COLD_PENALTY_MS = 4000.0


def build(path: Path) -> Path:
    """Create the fixture database at ``path`` and return ``path``."""
    dashboard_fixture.build(path)
    db = open_db(path)
    rows = []
    for i in range(12):
        at = NOW - timedelta(minutes=60 - 5 * i, seconds=-17)
        for name, size, ttft in WORKLOADS:
            timed_out = name == "10k" and i == 11
            rows.append(
                ProbeRecord(
                    started_at=iso(at),
                    target="chat-fallback",
                    provider="openai-compatible",
                    model="demo-gpt-mini",
                    status="error" if timed_out else "ok",
                    error_kind="first_token_timeout" if timed_out else None,
                    error_message="no first token in 30 s" if timed_out else None,
                    ttft_ms=None if timed_out else ttft + i,
                    total_ms=30000.0 if timed_out else ttft + i + 640.0,
                    decode_tps=None if timed_out else 75.0,
                    input_tokens=None if timed_out else size,
                    output_tokens=None if timed_out else 48,
                    kind="workload",
                    workload=name,
                )
            )
    with db.atomic():
        db.table("probes").insert_all([record_row(r) for r in rows])
        # One canary in ten of chat-fallback started cold (the rest warm).
        ids = [
            r[0]
            for r in db.conn.execute(
                "SELECT id FROM probes WHERE target = 'chat-fallback' AND kind = 'canary' "
                "ORDER BY started_at"
            )
        ]
        for i, rowid in enumerate(ids):
            cold = i % 10 == 0
            db.execute(
                "UPDATE probes SET cold = ?, idle_s = ?, ttft_ms = ttft_ms + ? WHERE id = ?",
                [int(cold), 900.0 if cold else 30.0, COLD_PENALTY_MS if cold else 0.0, rowid],
            )
        checks = [
            CacheCheckResult(
                target="chat-fallback",
                started_at=iso(NOW - timedelta(minutes=12)),
                verdict="caching",
                mode="implicit",
                prefix_tokens=1024,
                input_tokens=1180,
                cached_tokens=1086,
                cached_share=1086 / 1180,
                first_ttft_ms=500.0,
                second_ttft_ms=310.0,
                ttft_saved=0.38,
                cost_usd=0.000029,
                uncached_cost_usd=0.0001,
                cost_saved=0.71,
            ),
            CacheCheckResult(
                target="fast-llama",
                started_at=iso(NOW - timedelta(minutes=30)),
                verdict="not_caching",
                mode="implicit",
                prefix_tokens=1024,
                input_tokens=1180,
                cached_tokens=0,
                cached_share=0.0,
            ),
        ]
        db.table("cache_checks").insert_all([dataclasses.asdict(c) for c in checks])
        checked = iso(NOW - timedelta(minutes=1))
        for key, targets, state, description in (
            ("primary-page", ["chat-primary"], "operational", "All Systems Operational"),
            ("fallback-page", ["chat-fallback"], "unknown", "HTTP 503 from the status page"),
        ):
            db.execute(
                "INSERT INTO official_status (key, url, format, component, targets, state, "
                "description, incidents, checked_at, changed_at) "
                "VALUES (?, ?, 'statuspage', NULL, ?, ?, ?, '[]', ?, ?)",
                [
                    key,
                    f"https://{key}.example/api/v2/summary.json",
                    json.dumps(targets),
                    state,
                    description,
                    checked,
                    checked,
                ],
            )
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path

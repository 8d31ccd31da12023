"""Scrape cost of the prober's /metrics at 100 and 1,000 targets.

Builds the prober's real metrics (tui.metrics.ProberMetrics) for N targets, feeds each 50
probes (ok with usage and cost, and three failure kinds, as a flaky fleet produces), serves
them with the same prometheus-client HTTP server and times real GETs of /metrics from this
process (median of 20), plus the exposition size and series count.

    .venv/bin/python bench/metrics_scrape.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.config import parse_config
from probes.record import ProbeRecord
from tui.metrics import ProberMetrics

KINDS = ("server_error", "overloaded", "rate_limited")


def measure(n: int) -> None:
    lines = []
    for i in range(n):
        lines += [
            "[[targets]]",
            f'name = "target-{i:04d}"',
            f'provider = "{("openai", "groq", "anthropic", "openai-compatible")[i % 4]}"',
            'base_url = "http://127.0.0.1:9/v1"',
            f'model = "model-{i % 7}"',
        ]
    metrics = ProberMetrics(parse_config("\n".join(lines)))
    rng = random.Random(1)
    for i in range(n):
        for j in range(50):
            ok = rng.random() > 0.1
            metrics.on_record(
                ProbeRecord(
                    started_at="2026-11-02T00:00:00.000Z",
                    target=f"target-{i:04d}",
                    provider=("openai", "groq", "anthropic", "openai-compatible")[i % 4],
                    model=f"model-{i % 7}",
                    status="ok" if ok else "error",
                    error_kind=None if ok else KINDS[j % 3],
                    ttft_ms=rng.lognormvariate(6, 0.5) if ok else None,
                    total_ms=rng.lognormvariate(7, 0.5),
                    input_tokens=20 if ok else None,
                    output_tokens=48 if ok else None,
                    cost_usd=0.00004 if ok else None,
                    ratelimit_remaining_requests=1000 - j,
                )
            )
    server = metrics.serve("127.0.0.1:0")
    port = server.server_port
    try:
        with httpx.Client(timeout=120) as client:
            client.get(f"http://127.0.0.1:{port}/metrics")
            times, size, series = [], 0, 0
            for _ in range(20):
                t0 = time.perf_counter()
                body = client.get(f"http://127.0.0.1:{port}/metrics").content
                times.append(time.perf_counter() - t0)
                size = len(body)
                series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    finally:
        server.shutdown()
        server.server_close()
    print(
        f"{n:>5} targets: {series:>7} series, {size / 1e6:6.2f} MB, "
        f"scrape median {statistics.median(times) * 1000:7.1f} ms, max {max(times) * 1000:7.1f} ms"
    )


if __name__ == "__main__":
    for n in (100, 1000):
        measure(n)

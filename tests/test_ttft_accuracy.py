"""TTFT of a demo provider with a known first-token delay is measured within 5 ms of it.

The simulator runs in its own process (as in ``inferwatch demo``) and delays the first token
by exactly 50 ms after the request arrives; the probe's clock starts just before sending.
The probes run in a fresh interpreter too: in the test process, threads left by other tests
(servers on 127.0.0.1) hold the GIL for up to its 5 ms switch interval after each wake-up,
which is the test harness's latency, not the prober's (the prober is its own process).
The delay is short on purpose: on this VM a machine that idles longer wakes up later when the
token arrives (bench/loopback_wakeup.py: ~1 ms after 50 ms idle, ~5 ms after 1 s), a real
latency of the platform that a longer delay would add to what this test calls our error.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap

import pytest

# Real servers and real time on a shared machine: see pyproject.toml (pytest-rerunfailures).
pytestmark = pytest.mark.flaky(reruns=2)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    from probes.runner import make_client, run_probe
    from probes.simulator import SimProfile, SimulatorProcess
    from tests.conftest import make_target

    async def main():
        profile = SimProfile("exact", ttft_ms=50, tps=100, ttft_sigma=0, tps_sigma=0,
                             output_tokens=20)
        with SimulatorProcess([profile]) as sim:
            target = make_target(sim.base_url("exact"), max_tokens=20)
            async with make_client() as client:
                await run_probe(target, client)  # warm-up: imports, first connection
                for _ in range(7):
                    r = await run_probe(target, client)
                    print(json.dumps(r.to_dict()))

    asyncio.run(main())
    """
)


def test_ttft_within_5ms_of_known_delay() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 7 and all(r["status"] == "ok" for r in records)
    errors = [abs(r["ttft_ms"] - 50.0) for r in records]
    assert statistics.median(errors) <= 5.0, errors
    # 20 tokens at exactly 100 tok/s: decode TPS measured from usage over the token window.
    tps = statistics.median(r["decode_tps"] for r in records)
    assert 90 <= tps <= 110
    assert all(
        r["output_tokens"] == 20 and r["input_tokens"] and r["usage_source"] == "reported"
        for r in records
    )

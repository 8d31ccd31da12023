"""TTFT of a provider with a known first-token delay, from the first probe of a fresh process on.

The simulator runs in its own process (as in ``inferwatch demo``) and delays the first token
by exactly D ms after the request arrives; the probe's clock starts just before sending. The
probes run in a fresh interpreter, like ``inferwatch probe --once``: its first probe is the one
that used to pay the HTTP client's start-up (20-45 ms of imports and first-use work inside
``ttft_ms``), so it must now be as accurate as the warm probes after it (issue 9).

The 50 ms delay checks the absolute error; on this VM a machine that idles longer wakes up
later when the token arrives (bench/loopback_wakeup.py: ~1 ms after 50 ms idle, ~5 ms after
1 s), a latency of the platform, so the 300 ms run compares the first probe with the warm ones
of the same run instead of with an absolute bound.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
from typing import Any

import pytest

# Real servers and real time on a shared machine; each try runs a fresh interpreter again.
pytestmark = pytest.mark.flaky(reruns=2)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from probes.runner import run_probe
    from probes.simulator import SimProfile, SimulatorProcess
    from probes.transport import make_client
    from tests.conftest import make_target

    DELAY, WARM = float(sys.argv[1]), int(sys.argv[2])

    async def main():
        profile = SimProfile("exact", ttft_ms=DELAY, tps=100, ttft_sigma=0, tps_sigma=0,
                             output_tokens=20)
        with SimulatorProcess([profile]) as sim:
            target = make_target(sim.base_url("exact"), max_tokens=20)
            async with make_client() as client:
                for _ in range(1 + WARM):  # the first is the fresh process's first probe
                    r = await run_probe(target, client)
                    print(json.dumps(r.to_dict()), flush=True)

    asyncio.run(main())
    """
)


def run_fresh(delay_ms: float, warm: int) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(delay_ms), str(warm)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 1 + warm and all(r["status"] == "ok" for r in records), records
    return records


def test_ttft_within_5ms_of_known_delay() -> None:
    records = run_fresh(50.0, 7)
    errors = [abs(r["ttft_ms"] - 50.0) for r in records]
    assert statistics.median(errors) <= 5.0, errors
    # 20 tokens at exactly 100 tok/s: decode TPS measured from usage over the token window.
    tps = statistics.median(r["decode_tps"] for r in records)
    assert 90 <= tps <= 110
    assert all(
        r["output_tokens"] == 20 and r["input_tokens"] and r["usage_source"] == "reported"
        for r in records
    )


def test_first_probe_of_a_fresh_process_is_as_accurate_as_a_warm_one() -> None:
    first, *warm = run_fresh(300.0, 10)
    first_error = first["ttft_ms"] - 300.0
    warm_errors = sorted(r["ttft_ms"] - 300.0 for r in warm)
    # Within the warm probes' p99 (the largest of ten), or their median plus the 5 ms a loaded
    # machine adds at random: the client start-up it used to pay was 20-45 ms.
    bound = max(warm_errors[-1], statistics.median(warm_errors) + 5.0)
    assert first_error <= bound, (first_error, warm_errors)
    assert first["conn_reused"] is False and all(r["conn_reused"] for r in warm[1:])

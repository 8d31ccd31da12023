"""CPU per probe: what one probe costs the prober's process, end to end.

Run from the repo root: .venv/bin/python bench/probe_cpu.py [--probes 200] [--tokens 50] [--profile]

A simulator in its own process (so its CPU is not counted) streams ``--tokens`` tokens, one
OpenAI chat chunk each, 2 ms apart; this process probes it ``--probes`` times, one at a time,
on one warm client, and prints the process CPU time (user + system) per probe. ``--profile``
prints the top functions by cumulative time (cProfile) over the same probes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.config import parse_config
from probes.simulator import SimProfile, SimulatorProcess

try:  # the client factory moved to probes.transport (issue 9); older trees have it in runner
    from probes.transport import make_client
except ImportError:  # pragma: no cover - for before/after comparisons only
    from probes.runner import make_client  # type: ignore[attr-defined,no-redef]
from probes.runner import run_probe


#: Path fragment -> layer name, for the profile's breakdown.
LAYERS = {
    "/probes/": "inferwatch (probes/)",
    "/httpx_sse/": "httpx-sse",
    "/httpx/": "httpx",
    "/httpcore/": "httpcore",
    "/h11/": "h11",
    "/anyio/": "anyio",
    "/sniffio/": "sniffio",
    "/genai_prices/": "genai-prices",
    "asyncio": "asyncio (event loop)",
    "json": "json",
    "importlib": "importlib (imports)",
}


async def measure(probes: int, tokens: int, profile: bool) -> None:
    sim_profile = SimProfile(
        "cpu", ttft_ms=5, tps=500, ttft_sigma=0, tps_sigma=0, output_tokens=tokens
    )
    with SimulatorProcess([sim_profile]) as sim:
        toml = (
            f'[[targets]]\nname = "cpu"\nprovider = "openai-compatible"\n'
            f'base_url = "{sim.base_url("cpu")}"\nmodel = "m"\nmax_tokens = {tokens}\n'
        )
        target = parse_config(toml).resolved()[0]
        async with make_client() as client:
            for _ in range(5):  # warm-up: imports, first connection, interpreter caches
                await run_probe(target, client)
            profiler = cProfile.Profile() if profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for _ in range(probes):
                record = await run_probe(target, client)
                assert record.status == "ok", record.error_message
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{probes} probes x {tokens} tokens: CPU {cpu / probes * 1000:.2f} ms per probe "
        f"({cpu / probes / tokens * 1e6:.0f} us per token), wall {wall:.1f} s"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        # Own time by package: which layer a probe's CPU goes to (profiler overhead included).
        by_layer: dict[str, list[float]] = {}
        total_calls = 0
        for (path, _, func), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            total_calls += ncalls
            if func == "<method 'poll' of 'select.epoll' objects>":
                continue  # waiting, not working
            layer = next((k for k in LAYERS if k in path), "other")
            by_layer.setdefault(layer, [0.0, 0])
            by_layer[layer][0] += tottime
            by_layer[layer][1] += ncalls
        work = sum(v[0] for v in by_layer.values())
        print(f"function calls per probe: {total_calls / (probes + 5):.0f}")
        for layer, (seconds, calls) in sorted(by_layer.items(), key=lambda kv: -kv[1][0]):
            print(
                f"  {LAYERS.get(layer, layer):<28} {seconds / work:6.1%} of the work, "
                f"{calls / (probes + 5):7.0f} calls per probe"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.probes, args.tokens, args.profile))

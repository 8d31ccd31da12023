"""CPU per probe: what one probe costs the prober's process, and how much of it is inferwatch's.

Run from the repo root: .venv/bin/python bench/probe_cpu.py [--rounds 8] [--tokens 50] [--profile]

A simulator in its own process (so its CPU is not counted) streams ``--tokens`` tokens, one
OpenAI chat chunk each, 10 ms apart (one transport read each, so runs are comparable). In this
process two clients take turns probe by probe (10 each per round), on warm connections:

* ``httpx bare``: the same request through a plain ``httpx.AsyncClient``, reading the body with
  ``aiter_raw()`` and doing nothing with it: the floor for any probe built on httpx.
* ``inferwatch``: ``run_probe`` (decoding, parsing, timing, classification, the record, cost).

It prints the process CPU time (user + system) per probe of each, and the difference: the CPU
that inferwatch's own measurement costs. On a 2-core VM shared with other work, CPU time of one
run drifts by +-20 %; alternating probe by probe keeps the difference meaningful. ``--profile``
adds a cProfile of the inferwatch probes, by layer.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.config import parse_config
from probes.simulator import SimProfile, SimulatorProcess

try:  # the client factory moved to probes.transport (issue 9); older trees have it in runner
    from probes.transport import make_client
except ImportError:  # pragma: no cover - for before/after comparisons only
    from probes.runner import make_client  # type: ignore[attr-defined,no-redef]
from probes.runner import run_probe

PER_ROUND = 10
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


def print_layers(profiler: cProfile.Profile, probes: int) -> None:
    """Own time by package: which layer a probe's CPU goes to (profiler overhead included)."""
    stats = pstats.Stats(profiler)
    by_layer: dict[str, list[float]] = {}
    total_calls = 0
    for (path, _, func), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total_calls += ncalls
        if func == "<method 'poll' of 'select.epoll' objects>":
            continue  # waiting, not working
        layer = next((k for k in LAYERS if k in path), "other")
        entry = by_layer.setdefault(layer, [0.0, 0])
        entry[0] += tottime
        entry[1] += ncalls
    work = sum(v[0] for v in by_layer.values())
    print(f"profile: {total_calls / probes:.0f} function calls per probe; own time by layer:")
    for layer, (seconds, calls) in sorted(by_layer.items(), key=lambda kv: -kv[1][0]):
        name = LAYERS.get(layer, "other (built-ins, stdlib)")
        print(f"  {name:<28} {seconds / work:6.1%}  {calls / probes:7.0f} calls per probe")


async def measure(rounds: int, tokens: int, profile: bool) -> None:
    sim_profile = SimProfile(
        "cpu", ttft_ms=5, tps=100, ttft_sigma=0, tps_sigma=0, output_tokens=tokens
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    cpu: dict[str, list[float]] = {"httpx bare": [], "inferwatch": []}
    profiler = cProfile.Profile() if profile else None
    with SimulatorProcess([sim_profile]) as sim:
        base = sim.base_url("cpu")
        toml = (
            f'[[targets]]\nname = "cpu"\nprovider = "openai-compatible"\n'
            f'base_url = "{base}"\nmodel = "m"\nmax_tokens = {tokens}\n'
        )
        target = parse_config(toml).resolved()[0]
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "Say OK"}],
            "max_tokens": tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with make_client() as client, httpx.AsyncClient() as bare_client:

            async def bare() -> None:
                async with bare_client.stream("POST", f"{base}/chat/completions", json=body) as r:
                    async for _ in r.aiter_raw():
                        pass

            async def inferwatch() -> None:
                record = await run_probe(target, client)
                assert record.status == "ok", record.error_message

            for _ in range(5):  # warm-up: imports, first connection, interpreter caches
                await bare()
                await inferwatch()
            for _ in range(rounds):
                spent = dict.fromkeys(cpu, 0.0)
                for _ in range(PER_ROUND):  # alternate probe by probe: both see the same drift
                    for name, fn in (("httpx bare", bare), ("inferwatch", inferwatch)):
                        if profiler and name == "inferwatch":
                            profiler.enable()
                        c0 = time.process_time()
                        await fn()
                        spent[name] += time.process_time() - c0
                        if profiler and name == "inferwatch":
                            profiler.disable()
                for name, seconds in spent.items():
                    cpu[name].append(seconds / PER_ROUND * 1000.0)
    probes = rounds * PER_ROUND
    print(f"{probes} probes per client, {tokens} tokens each, load {os.getloadavg()[0]:.2f}")
    for name, values in cpu.items():
        print(
            f"  {name:<11} CPU per probe: median {statistics.median(values):6.2f} ms "
            f"(rounds {min(values):.2f}-{max(values):.2f})"
        )
    diffs = [a - b for a, b in zip(cpu["inferwatch"], cpu["httpx bare"], strict=True)]
    print(f"  inferwatch's own measurement: {statistics.median(diffs):+.2f} ms per probe (median)")
    if profiler:
        print_layers(profiler, probes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.rounds, args.tokens, args.profile))

"""TTFT accuracy: probe a simulator whose first-token delay is known exactly, print the error.

Run: .venv/bin/python bench/ttft_accuracy.py [--probes 30]

The simulator runs in its own process (as in ``inferwatch demo``) and sends the first token
exactly D ms after the request arrives; the probe's clock starts just before sending, so the
measured TTFT should exceed D by the request's transit time on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics

from probes.config import parse_config
from probes.runner import make_client, run_probe
from probes.simulator import SimProfile, SimulatorProcess

DELAYS_MS = (50, 100, 250, 1000)


async def main(probes: int) -> None:
    profiles = [
        SimProfile(f"d{d}", ttft_ms=d, tps=200, ttft_sigma=0, tps_sigma=0, output_tokens=8)
        for d in DELAYS_MS
    ]
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {__import__('os').cpu_count()} cores"
    )
    with SimulatorProcess(profiles) as sim:
        async with make_client() as client:
            for d in DELAYS_MS:
                toml = (
                    f'[[targets]]\nname = "d{d}"\nprovider = "openai-compatible"\n'
                    f'base_url = "{sim.base_url(f"d{d}")}"\nmodel = "m"\nmax_tokens = 8\n'
                )
                target = parse_config(toml).resolved()[0]
                await run_probe(target, client)  # warm-up
                errors = []
                for _ in range(probes):
                    r = await run_probe(target, client)
                    errors.append((r.ttft_ms or 0) - d)
                errors.sort()
                print(
                    f"delay {d:>5} ms: error median {statistics.median(errors):+.2f} ms, "
                    f"p95 {errors[int(0.95 * (len(errors) - 1))]:+.2f} ms, "
                    f"max {errors[-1]:+.2f} ms over {probes} probes (warm connection)"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=30)
    asyncio.run(main(parser.parse_args().probes))

"""CPU per probe: what one probe costs the prober's process, and how much of it is inferwatch's.

Run from the repo root: .venv/bin/python bench/probe_cpu.py [--rounds 8] [--tokens 50] [--profile]

A simulator in its own process (so its CPU is not counted) streams ``--tokens`` tokens, one
OpenAI chat chunk each, 10 ms apart (one transport read each, so runs are comparable). In this
process the clients below take turns probe by probe (10 each per round), on warm connections:

* ``blocking recv``: a plain blocking socket sends the same request bytes and ``recv()``s until
  the chunked body ends, parsing nothing: what the machine charges a process for being woken
  once per token, with no event loop at all.
* ``asyncio raw``: the same through ``asyncio.open_connection`` (``StreamReader.read``): the
  floor of any client on the standard event loop that sees every token when it arrives.
* ``aiohttp bare`` (if aiohttp is installed, ``pip install -e '.[bench]'``): ``iter_any()``
  on an aiohttp session, whose HTTP parser is C (llhttp).
* ``httpx bare``: the same request through a plain ``httpx.AsyncClient``, reading the body with
  ``aiter_raw()`` and doing nothing with it: the floor for any probe built on httpx.
* ``inferwatch``: ``run_probe`` (decoding, parsing, timing, classification, the record, cost).

It prints the process CPU time (user + system) per probe of each, and inferwatch's minus the
httpx floor's: the CPU that inferwatch's own measurement costs. On a 2-core VM shared with
other work, CPU time of one run drifts by +-20 %; alternating probe by probe keeps the
differences meaningful. ``--profile`` adds a cProfile of the inferwatch probes, by layer.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import pstats
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        payload = json.dumps(body).encode()
        url = urlsplit(f"{base}/chat/completions")
        host, port = url.hostname or "127.0.0.1", url.port or 80
        request = (
            f"POST {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        # The simulator answers with a chunked body: its last chunk is empty.
        end = b"0\r\n\r\n"
        blocking_sock = socket.create_connection((host, port))
        raw_reader, raw_writer = await asyncio.open_connection(host, port)
        async with make_client() as client, httpx.AsyncClient() as bare_client:

            async def blocking_recv() -> None:
                blocking_sock.sendall(request)
                tail = b""
                while not tail.endswith(end):
                    data = blocking_sock.recv(65536)
                    if not data:
                        raise ConnectionError("simulator closed the connection")
                    tail = (tail + data)[-len(end) :]

            async def asyncio_raw() -> None:
                raw_writer.write(request)
                tail = b""
                while not tail.endswith(end):
                    data = await raw_reader.read(65536)
                    if not data:
                        raise ConnectionError("simulator closed the connection")
                    tail = (tail + data)[-len(end) :]

            async def bare() -> None:
                async with bare_client.stream("POST", f"{base}/chat/completions", json=body) as r:
                    async for _ in r.aiter_raw():
                        pass

            async def inferwatch() -> None:
                record = await run_probe(target, client)
                assert record.status == "ok", record.error_message

            clients: dict[str, Callable[[], Awaitable[None]]] = {
                "blocking recv": blocking_recv,
                "asyncio raw": asyncio_raw,
            }
            aiohttp_session = await _aiohttp_session()
            if aiohttp_session is not None:

                async def aiohttp_bare() -> None:
                    headers = {"content-type": "application/json"}
                    async with aiohttp_session.post(
                        url.geturl(), data=payload, headers=headers
                    ) as r:
                        async for _ in r.content.iter_any():
                            pass

                clients["aiohttp bare"] = aiohttp_bare
            clients["httpx bare"] = bare
            clients["inferwatch"] = inferwatch
            cpu: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(5):  # warm-up: imports, first connection, interpreter caches
                for fn in clients.values():
                    await fn()
            for _ in range(rounds):
                spent = dict.fromkeys(cpu, 0.0)
                for _ in range(PER_ROUND):  # alternate probe by probe: all see the same drift
                    for name, fn in clients.items():
                        if profiler and name == "inferwatch":
                            profiler.enable()
                        c0 = time.process_time()
                        await fn()
                        spent[name] += time.process_time() - c0
                        if profiler and name == "inferwatch":
                            profiler.disable()
                for name, seconds in spent.items():
                    cpu[name].append(seconds / PER_ROUND * 1000.0)
            if aiohttp_session is not None:
                await aiohttp_session.close()
        blocking_sock.close()
        raw_writer.close()
    probes = rounds * PER_ROUND
    print(f"{probes} probes per client, {tokens} tokens each, load {os.getloadavg()[0]:.2f}")
    for name, values in cpu.items():
        print(
            f"  {name:<13} CPU per probe: median {statistics.median(values):6.2f} ms "
            f"(rounds {min(values):.2f}-{max(values):.2f})"
        )
    diffs = [a - b for a, b in zip(cpu["inferwatch"], cpu["httpx bare"], strict=True)]
    print(f"  inferwatch's own measurement: {statistics.median(diffs):+.2f} ms per probe (median)")
    if profiler:
        print_layers(profiler, probes)


async def _aiohttp_session() -> Any:
    """An aiohttp session if aiohttp is installed (the bench extra), else None."""
    try:
        import aiohttp
    except ImportError:
        print("  (aiohttp not installed: pip install -e '.[bench]' to compare with it)")
        return None
    return aiohttp.ClientSession()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.rounds, args.tokens, args.profile))

"""TTFT accuracy: inferwatch against peers and a raw-socket floor, on one exact server.

Run from the repo root (the openai SDK comes with the bench extra: pip install -e '.[bench]'):

    .venv/bin/python bench/ttft_accuracy.py [--probes 40] [--delays 50,300,1000]

One simulator process (``probes.simulator``, as in ``inferwatch demo``) sends the first token
exactly D ms after each request arrives. Against it, in one run, each client measures TTFT and
the error is ``measured − D`` (ms):

* ``floor``: a blocking raw socket on a kept-alive connection; the request is prebuilt bytes,
  the stamp is the ``recv`` that returned the first content token. No HTTP library, no event
  loop: what this machine's kernel and scheduler allow.
* ``aiohttp``: vLLM's benchmark client style (``vllm/benchmarks/lib/endpoint_request_func.py``:
  an aiohttp session, ``async for line in response.content``, ``json.loads`` per line), the
  clock stopped at the first non-empty ``delta.content`` (vLLM itself stops it on any chunk
  with ``choices``, the role prelude included; that bug is not what is compared here).
* ``openai``: the openai SDK (``AsyncOpenAI().chat.completions.create(stream=True)``), the
  first chunk with ``delta.content``.
* ``inferwatch warm``: ``run_probe`` on one client, after the same warm-up as the others.
* ``inferwatch cold``: ``run_probe`` as the first probe of a fresh interpreter (one process per
  sample), like ``inferwatch probe --once``; the figure is that probe's ``ttft_ms``, which
  includes opening a new TCP connection (real network cost, reported as ``connect_ms``).

Warm clients take turns probe by probe (rotating who goes first), so they share the machine's
conditions; cold samples run after them for each delay. Each client gets ``--probes`` samples
per delay. The table gives p50 / p99 / max of the error, and p50 / p99 over the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402

from probes.config import ResolvedTarget, parse_config  # noqa: E402
from probes.runner import run_probe  # noqa: E402
from probes.simulator import SimProfile, SimulatorProcess  # noqa: E402
from probes.transport import make_client  # noqa: E402

try:
    import openai
except ImportError:  # pragma: no cover - the bench extra is not installed
    openai = None  # type: ignore[assignment]

MAX_TOKENS = 5
_TOKEN = re.compile(rb'"content":"[^"]')

COLD = textwrap.dedent(
    """
    import asyncio, json, sys
    from probes.config import parse_config
    from probes.runner import run_probe
    from probes.transport import make_client

    async def main():
        target = parse_config(sys.argv[1]).resolved()[0]
        async with make_client() as client:
            r = await run_probe(target, client)
        print(json.dumps([r.status, r.ttft_ms, (r.dns_ms or 0) + (r.connect_ms or 0)]))

    asyncio.run(main())
    """
)


def target_toml(base_url: str, name: str) -> str:
    return (
        f'[[targets]]\nname = "{name}"\nprovider = "openai-compatible"\n'
        f'base_url = "{base_url}"\nmodel = "m"\nmax_tokens = {MAX_TOKENS}\n'
    )


def request_body(model: str) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Say OK"}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


class RawSocketFloor:
    """Blocking socket, prebuilt request, kept-alive connection (HTTP/1.1 chunked)."""

    def __init__(self, port: int, path: str) -> None:
        body = json.dumps(request_body("m")).encode()
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def probe(self) -> float:
        """TTFT in ms: from just before ``send`` to the ``recv`` with the first token."""
        t0 = time.perf_counter()
        self.sock.sendall(self.request)
        buffer, ttft = b"", None
        while True:
            data = self.sock.recv(65536)
            now = time.perf_counter()
            if not data:
                raise ConnectionError("server closed the connection")
            buffer += data
            if ttft is None and _TOKEN.search(buffer):
                ttft = (now - t0) * 1000.0
            if buffer.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end: response complete
                assert ttft is not None
                return ttft

    def close(self) -> None:
        self.sock.close()


async def aiohttp_probe(session: aiohttp.ClientSession, url: str) -> float:
    """vLLM benchmark-client style: iterate ``response.content`` lines, ``json.loads`` each."""
    t0 = time.perf_counter()
    ttft = None
    async with session.post(url, json=request_body("m")) as response:
        async for chunk_bytes in response.content:
            chunk_bytes = chunk_bytes.strip()
            if not chunk_bytes:
                continue
            chunk = chunk_bytes.decode("utf-8").removeprefix("data: ")
            if chunk == "[DONE]":
                continue
            timestamp = time.perf_counter()
            data = json.loads(chunk)
            choices = data.get("choices")
            if ttft is None and choices and choices[0]["delta"].get("content"):
                ttft = (timestamp - t0) * 1000.0
    assert ttft is not None
    return ttft


async def openai_probe(client: object, model: str) -> float:
    t0 = time.perf_counter()
    ttft = None
    stream = await client.chat.completions.create(  # type: ignore[attr-defined]
        model=model,
        messages=[{"role": "user", "content": "Say OK"}],
        max_tokens=MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if ttft is None and chunk.choices and chunk.choices[0].delta.content:
            ttft = (time.perf_counter() - t0) * 1000.0
    assert ttft is not None
    return ttft


def cold_probe(toml: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", COLD, toml],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    status, ttft, setup = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == "ok" and ttft is not None, out.stdout
    return float(ttft), float(setup)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


async def measure(probes: int, delays: list[int]) -> None:
    profiles = [
        SimProfile(f"d{d}", ttft_ms=d, tps=200, ttft_sigma=0, tps_sigma=0, output_tokens=MAX_TOKENS)
        for d in delays
    ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    errors: dict[tuple[int, str], list[float]] = {}
    setups: list[float] = []  # dns_ms + connect_ms of the cold probes' new connections
    with SimulatorProcess(profiles) as sim:
        for d in delays:
            base = sim.base_url(f"d{d}")
            toml = target_toml(base, f"d{d}")
            target: ResolvedTarget = parse_config(toml).resolved()[0]
            floor = RawSocketFloor(sim.port, f"/d{d}/v1/chat/completions")
            warm: dict[str, Callable[[], Awaitable[float]]] = {}
            async with (
                aiohttp.ClientSession() as session,
                make_client() as iw_client,
            ):
                oai = (
                    openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=0)
                    if openai is not None
                    else None
                )

                async def floor_probe(floor: RawSocketFloor = floor) -> float:
                    return floor.probe()

                async def iw_probe(
                    target: ResolvedTarget = target, iw_client: httpx.AsyncClient = iw_client
                ) -> float:
                    r = await run_probe(target, iw_client)
                    assert r.status == "ok", r.error_message
                    return float(r.ttft_ms or 0.0)

                async def aio_probe(
                    session: aiohttp.ClientSession = session, url: str = f"{base}/chat/completions"
                ) -> float:
                    return await aiohttp_probe(session, url)

                async def sdk_probe(oai: object = oai) -> float:
                    return await openai_probe(oai, "m")

                warm["floor"] = floor_probe
                warm["aiohttp"] = aio_probe
                if oai is not None:
                    warm["openai"] = sdk_probe
                warm["inferwatch warm"] = iw_probe
                names = list(warm)
                for _ in range(3):  # every client's warm-up: imports, connection, caches
                    for name in names:
                        await warm[name]()
                for i in range(probes):
                    order = names[i % len(names) :] + names[: i % len(names)]
                    for name in order:
                        ttft = await warm[name]()
                        errors.setdefault((d, name), []).append(ttft - d)
                if oai is not None:
                    await oai.close()
            floor.close()
            for _ in range(probes):
                ttft, setup = cold_probe(toml)
                errors.setdefault((d, "inferwatch cold"), []).append(ttft - d)
                setups.append(setup)
    print(f"load average at end {os.getloadavg()[0]:.2f}; {probes} probes per client and delay")
    if setups:
        print(
            f"inferwatch cold opens a new connection per sample (the warm clients reuse one): "
            f"dns_ms + connect_ms p50 {statistics.median(setups):.2f} ms, inside its error"
        )
    print()
    print("| delay | client | p50 | p99 | max | p50 over floor | p99 over floor |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for d in delays:
        floor_errors = errors[(d, "floor")]
        for name in ("floor", "aiohttp", "openai", "inferwatch warm", "inferwatch cold"):
            values = errors.get((d, name))
            if not values:
                continue
            over = (
                f"{statistics.median(values) - statistics.median(floor_errors):+.2f} | "
                f"{pct(values, 99) - pct(floor_errors, 99):+.2f}"
            )
            print(
                f"| {d} ms | {name} | {statistics.median(values):+.2f} | "
                f"{pct(values, 99):+.2f} | {max(values):+.2f} | {over} |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=40, help="samples per client and delay (40)")
    parser.add_argument("--delays", default="50,300,1000", help="first-token delays, ms")
    args = parser.parse_args()
    asyncio.run(measure(args.probes, [int(d) for d in args.delays.split(",")]))

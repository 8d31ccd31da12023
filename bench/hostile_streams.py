"""Issue #10: CPU and wall time of ONE probe of a hostile stream, server in its own process.

Run from the repository root:

    .venv/bin/python bench/hostile_streams.py

Streams (an aiohttp server in a child process, OpenAI Chat Completions SSE):

* ``one-token-per-write``: 30,000 one-token events, each its own write, 0.2 ms apart (the
  stream that froze the prober for 42 s: the old ``derive`` was O(tokens x reads));
* ``50 MB``: 50 MB of 1 kB token events written as fast as the socket takes them.

Each stream is probed with the target's default caps and, where the config knows them, with
the caps raised (``max_stream_events = 200000``, ``max_response_bytes = 1 GiB``) so the whole
stream is measured. The figure is the probing process's CPU time (``time.process_time``, the
server runs elsewhere) and the wall time of the one ``run_probe`` call. The script imports the
``probes`` package of the tree it sits in, so copying it into an older checkout measures that
checkout ("before" in bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the tree this script is in, not an installed copy

TOKENS = 30_000
WRITE_SPACING_S = 0.0002
BIG_BYTES = 50 * 1024 * 1024


def _event(content: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _tail(tokens: int) -> bytes:
    usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": tokens}}
    return b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"


def serve() -> None:
    """The child process: serve the two streams on 127.0.0.1, print the port."""
    from aiohttp import web

    async def one_token_per_write(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        start = loop.time()
        token = _event("x")
        try:
            for i in range(TOKENS):
                delay = start + i * WRITE_SPACING_S - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await response.write(token)
            await response.write(_tail(TOKENS))
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        token = _event("y" * 1000)
        block = token * (65536 // len(token))
        per_block = 65536 // len(token)
        blocks = BIG_BYTES // len(block)
        try:
            for _ in range(blocks):
                await response.write(block)
            await response.write(_tail(blocks * per_block))
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    app = web.Application()
    app.router.add_post("/tokens/v1/chat/completions", one_token_per_write)
    app.router.add_post("/big/v1/chat/completions", big)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def target(port: int, case: str, raised: bool) -> object | None:
    from probes.config import ConfigError, parse_config

    toml = (
        f'[[targets]]\nname = "{case}"\nprovider = "openai-compatible"\n'
        f'base_url = "http://127.0.0.1:{port}/{case}/v1"\nmodel = "m"\ntimeout_s = 600\n'
        "stall_timeout_s = 600\n"
    )
    if raised:
        toml += "max_stream_events = 200000\nmax_response_bytes = 1073741824\n"
    try:
        return parse_config(toml).resolved()[0]
    except ConfigError:
        return None  # a tree from before the caps existed: it has no caps to raise


async def measure(port: int) -> None:
    from probes.runner import make_client, run_probe

    for case, label in (("tokens", "one-token-per-write 30,000"), ("big", "50 MB")):
        for raised in (False, True):
            t = target(port, case, raised)
            if t is None:
                continue
            async with make_client() as client:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                record = await run_probe(t, client)  # type: ignore[arg-type]
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            caps = "caps raised" if raised else "default caps"
            outcome = record.status if record.status == "ok" else record.error_kind
            print(
                f"{label:<27} {caps:<13} {outcome:<10} {record.token_events:>7} token events"
                f"  CPU {cpu:7.2f} s  wall {wall:7.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().serve:
        serve()
        return
    import probes

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"tree {ROOT} at {commit or '?'} (probes from {Path(probes.__file__).parent}); "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        asyncio.run(measure(port))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

"""Built-in demo providers: real HTTP servers on 127.0.0.1 speaking the OpenAI streaming format.

``inferwatch demo`` and the tests probe these exactly as they probe a real provider: over TCP,
HTTP/1.1 chunked transfer, ``text/event-stream``, a role-only first chunk, one chunk per
token, a ``choices: []`` usage chunk when ``stream_options.include_usage`` is set, and
``data: [DONE]``. Each profile has its own TTFT and TPS distributions and failure behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

_TEXT = (
    "the sea is calm tonight and the tide is full while waves roll slowly over pale sand "
    "under a quiet moon as gulls drift above the harbour lights"
)
_WORDS = tuple(_TEXT.split())
#: The simulator's tokenizer: 1.3 tokens per whitespace-separated word, plus a template.
_TOKENS_PER_WORD = 1.3
_TEMPLATE_TOKENS = 7


@dataclass(frozen=True, slots=True)
class SimProfile:
    """How one simulated provider behaves.

    Attributes:
        name: path prefix; the base URL is ``http://127.0.0.1:PORT/<name>/v1``.
        ttft_ms: median delay from request to first token.
        ttft_sigma: log-normal spread of TTFT (0 gives exactly ``ttft_ms``).
        tps: median decode rate, tokens per second.
        tps_sigma: log-normal spread of the decode rate.
        output_tokens: tokens generated when ``max_tokens`` allows.
        reasoning_tokens: tokens sent as ``delta.reasoning_content`` before the answer.
        cached_share: share of prompt tokens reported as cache reads.
        error_rate: probability that a request fails with 429 (half) or 500/502 (half).
        outage_every_s: period of a repeating outage; 0 for none.
        outage_for_s: length of each outage (the provider answers 503 throughout).
        outage_offset_s: when, after start, the first outage begins.
        seed: seed of this profile's random stream (deterministic demo runs).
        prefill_ms_per_token: extra time to first token per uncached prompt token (prefill),
            so long prompts take longer and a prefix-cache hit is faster.
        cache_min_tokens: a repeated prompt prefix of at least this many tokens is reported
            as cached (``prompt_tokens_details.cached_tokens``), like OpenAI's automatic
            prompt caching (1024 tokens).
        cache_ttl_s: how long a prompt stays in the simulated prefix cache.
    """

    name: str
    ttft_ms: float
    tps: float
    ttft_sigma: float = 0.25
    tps_sigma: float = 0.1
    output_tokens: int = 48
    reasoning_tokens: int = 0
    cached_share: float = 0.0
    error_rate: float = 0.0
    outage_every_s: float = 0.0
    outage_for_s: float = 0.0
    outage_offset_s: float = 0.0
    seed: int = 0
    prefill_ms_per_token: float = 0.0
    cache_min_tokens: int = 1024
    cache_ttl_s: float = 300.0


#: The demo's providers: fast, steady, reasoning, flaky and one with a recurring outage.
DEMO_PROFILES: tuple[SimProfile, ...] = (
    SimProfile("fastlane", ttft_ms=120, tps=420, ttft_sigma=0.2, seed=1),
    SimProfile("steady", ttft_ms=450, tps=75, ttft_sigma=0.25, cached_share=0.6, seed=2),
    SimProfile("thinker", ttft_ms=300, tps=110, reasoning_tokens=40, ttft_sigma=0.3, seed=3),
    SimProfile("flaky", ttft_ms=600, tps=55, ttft_sigma=0.5, error_rate=0.1, seed=4),
    SimProfile(
        "primary",
        ttft_ms=800,
        tps=40,
        ttft_sigma=0.3,
        outage_every_s=600,
        outage_for_s=60,
        outage_offset_s=45,
        seed=5,
    ),
    SimProfile("local", ttft_ms=60, tps=30, ttft_sigma=0.15, tps_sigma=0.05, seed=6),
)


@dataclass(slots=True)
class _State:
    profile: SimProfile
    rng: random.Random
    started: float
    requests: int = 0
    forced: list[str] = field(default_factory=list)
    prefixes: list[tuple[float, list[str]]] = field(default_factory=list)

    def prefix_hit_tokens(self, words: list[str], now: float) -> int:
        """Tokens of the longest cached prefix shared with a recent prompt (0 below
        ``cache_min_tokens``), then remember this prompt."""
        p = self.profile
        self.prefixes = [(t, w) for t, w in self.prefixes if now - t <= p.cache_ttl_s][-32:]
        common = 0
        for _, seen in self.prefixes:
            n = 0
            for a, b in zip(words, seen, strict=False):
                if a != b:
                    break
                n += 1
            common = max(common, n)
        self.prefixes.append((now, words))
        hit = math.floor(common * _TOKENS_PER_WORD)
        return hit if hit >= p.cache_min_tokens else 0


async def _sleep_until(loop: asyncio.AbstractEventLoop, due: float) -> None:
    """Sleep until ``due`` on the loop clock within about 0.1 ms.

    ``asyncio.sleep`` wakes late by up to a few ms: epoll rounds to milliseconds and Linux adds
    timer slack of 0.1 % or more of the timeout (``select_estimate_accuracy``), which would blur
    the demo's "known" delays; the last 2 ms plus 0.2 % are spent yielding instead.
    """
    remaining = due - loop.time()
    margin = 0.002 + 0.002 * remaining
    if remaining > margin:
        await asyncio.sleep(remaining - margin)
    while loop.time() < due:  # noqa: ASYNC110 - a deliberate short yield loop, not a wait
        await asyncio.sleep(0)


def _chunk(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class Simulator:
    """An aiohttp application serving every profile under its own path prefix."""

    def __init__(self, profiles: Sequence[SimProfile] = DEMO_PROFILES) -> None:
        now = time.monotonic()
        self.states = {p.name: _State(p, random.Random(p.seed), now) for p in profiles}
        self.app = web.Application()
        self.app.router.add_post("/{name}/v1/chat/completions", self._chat)
        self._runner: web.AppRunner | None = None
        self.port: int = 0

    def base_url(self, name: str) -> str:
        """The OpenAI-style base URL of profile ``name``."""
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1:``port`` (0 picks a free port, then stored in :attr:`port`)."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _in_outage(self, state: _State) -> bool:
        p = state.profile
        if p.outage_every_s <= 0:
            return False
        elapsed = time.monotonic() - state.started - p.outage_offset_s
        return elapsed >= 0 and (elapsed % p.outage_every_s) < p.outage_for_s

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        state = self.states.get(request.match_info["name"])
        if state is None:
            return web.json_response(
                {"error": {"message": "unknown model", "type": "invalid_request_error"}},
                status=404,
            )
        t_request = asyncio.get_running_loop().time()
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response(
                {"error": {"message": "body is not JSON", "type": "invalid_request_error"}},
                status=400,
            )
        p, rng = state.profile, state.rng
        state.requests += 1
        if self._in_outage(state):
            await asyncio.sleep(0.05)
            return web.json_response(
                {"error": {"message": "upstream unavailable", "type": "server_error"}},
                status=503,
            )
        if p.error_rate and rng.random() < p.error_rate:
            await asyncio.sleep(0.03)
            if rng.random() < 0.5:
                return web.json_response(
                    {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                    status=429,
                    headers={"retry-after": "2"},
                )
            status = rng.choice((500, 502))
            return web.json_response(
                {"error": {"message": "internal error", "type": "server_error"}}, status=status
            )

        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 64)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prompt = " ".join(
            str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict)
        )
        words = prompt.split()
        prompt_tokens = max(1, math.ceil(len(words) * _TOKENS_PER_WORD)) + _TEMPLATE_TOKENS
        cached = max(
            int(prompt_tokens * p.cached_share), state.prefix_hit_tokens(words, time.monotonic())
        )
        ttft_s = p.ttft_ms / 1000 * (math.exp(rng.gauss(0, p.ttft_sigma)) if p.ttft_sigma else 1)
        ttft_s += (prompt_tokens - cached) * p.prefill_ms_per_token / 1000
        tps = p.tps * (math.exp(rng.gauss(0, p.tps_sigma)) if p.tps_sigma else 1)
        budget = min(max_tokens, p.output_tokens + p.reasoning_tokens)
        n_reason = min(p.reasoning_tokens, budget)
        n_answer = budget - n_reason
        finish = "length" if p.output_tokens + p.reasoning_tokens > max_tokens else "stop"

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{p.name}_{state.requests}",
                "x-ratelimit-remaining-requests": str(max(0, 1000 - state.requests)),
                "x-ratelimit-remaining-tokens": str(max(0, 200000 - state.requests * 60)),
                "x-ratelimit-reset-requests": "1m0s",
            }
        )
        await response.prepare(request)
        try:
            cid = f"chatcmpl-{p.name}-{state.requests}"
            model = body.get("model", p.name)
            base = {"id": cid, "object": "chat.completion.chunk", "model": model}
            await response.write(
                _chunk(
                    base
                    | {
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None,
                            }
                        ]
                    }
                )
            )
            loop = asyncio.get_running_loop()
            due = t_request + ttft_s
            for i in range(n_reason + n_answer):
                await _sleep_until(loop, due)
                word = _WORDS[(state.requests + i) % len(_WORDS)]
                text = word if i in (0, n_reason) else " " + word
                delta = {"reasoning_content": text} if i < n_reason else {"content": text}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                await response.write(_chunk(base | {"choices": [choice]}))
                due += 1.0 / tps
            await response.write(
                _chunk(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            )
            if include_usage:
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": n_reason + n_answer,
                    "total_tokens": prompt_tokens + n_reason + n_answer,
                    "prompt_tokens_details": {"cached_tokens": cached},
                    "completion_tokens_details": {"reasoning_tokens": n_reason},
                }
                await response.write(_chunk(base | {"choices": [], "usage": usage}))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away (a probe's deadline, or the demo shutting down)
        return response


class ChildServer:
    """A server in a child interpreter (``python -m <module> ...``) that prints ``PORT <n>``
    once it listens: the demo simulator here, the tests' replay server likewise."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._proc: subprocess.Popen[str] | None = None

    def _spawn(self, module_args: Sequence[str], what: str) -> None:
        """Start ``python -m *module_args`` and wait until it reports its port.

        Raises:
            RuntimeError: when the child exits before reporting a port (``what`` names it).
        """
        self._proc = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{what} failed to start: {line.strip() or 'no output'}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        """Terminate the child process (killed if it has not ended 5 s later)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None


class SimulatorProcess(ChildServer):
    """Runs the simulator in a child process (``python -m probes.simulator``).

    A separate interpreter keeps the simulator off the prober's GIL: in a thread of the probing
    process, GIL hand-offs (5 ms switch interval) add milliseconds to every measured TTFT.
    Profiles are passed as JSON; the child prints ``PORT <n>`` once it listens.
    """

    def __init__(self, profiles: Sequence[SimProfile] = DEMO_PROFILES, port: int = 0) -> None:
        super().__init__(port)
        self.profiles = tuple(profiles)

    def start(self) -> SimulatorProcess:
        """Start the child and wait until it listens.

        Raises:
            RuntimeError: when the child exits before reporting its port.
        """
        spec = json.dumps([asdict(p) for p in self.profiles])
        args = ["probes.simulator", "--port", str(self.port), "--profiles", spec]
        self._spawn(args, "demo simulator")
        return self

    def base_url(self, name: str) -> str:
        """The OpenAI-style base URL of profile ``name``."""
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve inferwatch's demo providers.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profiles", help="JSON list of SimProfile fields (default: the demo)")
    args = parser.parse_args(argv)
    profiles = (
        tuple(SimProfile(**p) for p in json.loads(args.profiles))
        if args.profiles
        else DEMO_PROFILES
    )

    async def serve() -> None:
        sim = Simulator(profiles)
        await sim.start(args.port)
        print(f"PORT {sim.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    _main()

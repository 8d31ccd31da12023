"""A scripted OpenAI-compatible streaming server for the benchmarks: healthy and hostile.

Run: .venv/bin/python bench/faultserver.py [--port 0]   (prints ``port N`` once listening)

The first path segment picks the behaviour (``http://127.0.0.1:PORT/<mode>/v1`` is a target's
``base_url``):

* ``ok``: headers at once, the first token ``--ttft-ms`` (300) after the request arrived,
  ``--tokens`` (50) token events ``--gap-ms`` (20) apart, usage and ``[DONE]``; keep-alive.
* ``hang``: reads the request and never answers (connection kept open).
* ``stall``: headers and three tokens, then silence on an open connection.
* ``dribble``: 20,000 tokens, one per write, a write every millisecond (a long stream in
  many reads: per-event and per-read work adds up).
* ``big``: 50 MB of token events as fast as the socket takes them.
* ``slowloris``: the status line and headers one byte per second, never finished.
* ``reset``: three tokens, then a TCP reset (SO_LINGER 0).

It speaks raw HTTP/1.1 on asyncio transports instead of a framework because the hostile modes
need byte-level control (one-byte writes, unfinished headers, resets) and because every
scheduled write must cost as little as possible: each token is one ``loop.call_at`` callback
and one ``transport.write``, so the server's own lateness stays small next to what the
benchmark measures (its share of the error is what the bare client's floor sees too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import socket
import struct
import sys
from collections.abc import Callable

HEAD_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def token_event(i: int) -> bytes:
    """One Chat Completions chunk carrying a token."""
    body = {
        "id": "bench",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def final_events(tokens: int) -> bytes:
    """The finish chunk with usage, then ``[DONE]``."""
    body = {
        "id": "bench",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": tokens + 12},
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n"


class Settings:
    """What the healthy mode sends (seconds)."""

    def __init__(self, ttft_s: float, gap_s: float, tokens: int) -> None:
        self.ttft_s = ttft_s
        self.gap_s = gap_s
        self.tokens = tokens
        self.events = [chunk(token_event(i)) for i in range(tokens)]
        self.final = chunk(final_events(tokens)) + b"0\r\n\r\n"


class Conn(asyncio.Protocol):
    """One client connection: parse requests, answer by mode."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.loop = asyncio.get_running_loop()
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.handles: list[asyncio.TimerHandle] = []
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        for h in self.handles:
            h.cancel()
        self.handles.clear()
        self.transport = None

    def eof_received(self) -> bool:
        # The client closed its side (a probe that gave up): stop writing to it.
        if self.transport is not None:
            self.transport.close()
        return False

    def data_received(self, data: bytes) -> None:
        t_recv = self.loop.time()
        self.buf += data
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            path = head.split(" ", 2)[1]
            self.buf = self.buf[end + 4 + length :]
            self.busy = True
            self.respond(path.strip("/").split("/", 1)[0], t_recv)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        self.handles.append(self.loop.call_at(when, fn))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def done(self) -> None:
        self.handles.clear()
        self.busy = False
        if self.buf:
            self.data_received(b"")

    def respond(self, mode: str, t0: float) -> None:
        s = self.s
        if mode == "ok":
            self.write(HEAD_OK)
            for i, event in enumerate(s.events[:-1]):
                self.at(t0 + s.ttft_s + i * s.gap_s, lambda e=event: self.write(e))

            def finish() -> None:
                self.write(s.events[-1] + s.final)  # the last token, usage and [DONE] at once
                self.done()

            self.at(t0 + s.ttft_s + (s.tokens - 1) * s.gap_s, finish)
        elif mode == "hang":
            pass
        elif mode == "stall":
            self.write(HEAD_OK)
            for i in range(3):
                self.at(t0 + 0.05 * (i + 1), lambda e=s.events[i]: self.write(e))
        elif mode == "reset":
            self.write(HEAD_OK)
            for i in range(3):
                self.at(t0 + 0.05 * (i + 1), lambda e=s.events[i]: self.write(e))
            self.at(t0 + 0.2, self.reset)
        elif mode == "slowloris":
            self.dribble(HEAD_OK, 1.0)
        elif mode == "dribble":
            self.write(HEAD_OK)
            self.drip([chunk(token_event(i)) for i in range(20_000)], 0.001)
        elif mode == "big":
            self.write(HEAD_OK)
            self.big(50 * 1024 * 1024)
        else:
            self.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            self.done()

    def dribble(self, data: bytes, every_s: float) -> None:
        pos = 0

        def step() -> None:
            nonlocal pos
            if self.transport is None or pos >= len(data):
                if pos >= len(data):
                    self.done()
                return
            self.write(data[pos : pos + 1])
            pos += 1
            self.handles[:] = [self.loop.call_later(every_s, step)]

        step()

    def drip(self, pieces: list[bytes], every_s: float) -> None:
        pos = 0

        def step() -> None:
            nonlocal pos
            if self.transport is None:
                return
            if pos >= len(pieces):
                self.write(self.s.final)
                self.done()
                return
            self.write(pieces[pos])
            pos += 1
            self.handles[:] = [self.loop.call_later(every_s, step)]

        step()

    def big(self, total: int) -> None:
        block = b"".join(chunk(token_event(i)) for i in range(400))
        sent = 0

        def step() -> None:
            nonlocal sent
            if self.transport is None:
                return
            while sent < total and self.transport.get_write_buffer_size() < 1 << 20:
                if self.transport.is_closing():
                    return
                self.transport.write(block)
                sent += len(block)
            if sent >= total:
                self.write(self.s.final)
                self.done()
                return
            self.handles[:] = [self.loop.call_later(0.001, step)]

        step()

    def reset(self) -> None:
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


async def serve(port: int, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(settings), "127.0.0.1", port, backlog=4096)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    gc.freeze()
    # Stop when the parent closes our stdin (the bench never leaves a server behind).
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=300.0)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    settings = Settings(args.ttft_ms / 1000, args.gap_ms / 1000, args.tokens)
    asyncio.run(serve(args.port, settings))


if __name__ == "__main__":
    main()

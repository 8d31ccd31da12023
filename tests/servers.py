"""A scripted replay server on 127.0.0.1, in its own process, that records when it wrote what.

The server writes each scripted read separately at its scheduled time after the request
arrived (the reads of a field case, docs/field-cases.md), over real TCP with HTTP/1.1 chunked
transfer, so probes see real transport reads, not a patched client. It runs in a child
interpreter so that its work never shares the probing process's GIL or event loop (in a thread
of the test process, GIL hand-offs add milliseconds to every stamp the probe takes).

Every response is recorded on the machine's monotonic clock (``time.perf_counter``, which is
``CLOCK_MONOTONIC`` on Linux and so comparable across processes): when the request arrived,
when the headers went out and when each scripted read was handed to the socket. A probe's
stamps are then checked against what the server really did, to a few milliseconds, instead of
against the schedule plus a wide allowance for the server's own lateness (tests/probing.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from probes.simulator import ChildServer


@dataclass
class Script:
    """One scripted response.

    Attributes:
        reads: ``(t_s, bytes)``: write ``bytes`` at ``t_s`` seconds after the request arrived.
        status: HTTP status.
        headers: response headers (content type included).
        headers_at: when to send the status line and headers.
        body: a whole non-streamed body (used instead of ``reads`` when set).
        abort_at_end: drop the TCP connection after the last read instead of ending cleanly.
        scale: multiply every time by this (compress long field cases, stretch short ones).
        echo_auth: replace ``{AUTH}`` in header values, the body and the reads by the
            request's credential (the ``Authorization: Bearer`` token, else ``x-api-key``),
            as a server echoing the key back would; ``{AUTH_UPPER}``, ``{AUTH_JSON}``
            (JSON-escaped, ``/`` as ``\\/``) and ``{AUTH_URL}`` (percent-encoded) echo it
            changed.
    """

    reads: list[tuple[float, bytes]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    headers_at: float = 0.10
    body: bytes | None = None
    abort_at_end: bool = False
    scale: float = 1.0
    echo_auth: bool = False

    def to_json(self) -> dict[str, Any]:
        """The script as JSON: bytes in base64, each distinct read sent once (a 50 MB stream of
        one repeated block travels as that block and a list of indices)."""
        chunks: dict[bytes, int] = {}
        reads = [[t, chunks.setdefault(b, len(chunks))] for t, b in self.reads]
        return {
            "chunks": [base64.b64encode(b).decode() for b in chunks],
            "reads": reads,
            "status": self.status,
            "headers": self.headers,
            "headers_at": self.headers_at,
            "body": None if self.body is None else base64.b64encode(self.body).decode(),
            "abort_at_end": self.abort_at_end,
            "scale": self.scale,
            "echo_auth": self.echo_auth,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Script:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        chunks = [base64.b64decode(b) for b in data.pop("chunks")]
        data["reads"] = [(float(t), chunks[i]) for t, i in data["reads"]]
        if data["body"] is not None:
            data["body"] = base64.b64decode(data["body"])
        return cls(**data)


@dataclass(frozen=True)
class Timeline:
    """What the server did for one request, on the shared monotonic clock (seconds).

    Attributes:
        arrived: the request's headers had been parsed (the handler started).
        headers_sent: the status line and headers were handed to the socket.
        writes: per scripted read, the moment just before its bytes were handed to the socket.
        scheduled: per scripted read, its scheduled time after arrival (scale applied).
    """

    arrived: float
    headers_sent: float | None
    writes: tuple[float, ...]
    scheduled: tuple[float, ...]

    def ms_after_arrival(self, when: float) -> float:
        """Milliseconds from the request's arrival to ``when``."""
        return (when - self.arrived) * 1000.0


class ReplayApp:
    """The server side: serves :class:`Script` responses at ``/<case>/...`` and a control API
    at ``/_ctl/...``: register scripts; read the requests received, the timelines, the body
    bytes written per case (``sent``), the cases whose client closed the connection before the
    script ended (``dropped``) and the streamed cases whose handler has returned
    (``finished``)."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.timelines: dict[str, list[dict[str, Any]]] = {}
        self.sent: dict[str, int] = {}
        self.dropped: set[str] = set()
        self.finished: set[str] = set()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/_ctl/script/{case}", self._add_script)
        self.app.router.add_get("/_ctl/requests", self._get_requests)
        self.app.router.add_get("/_ctl/timeline/{case}", self._get_timeline)
        self.app.router.add_get("/_ctl/state", self._get_state)
        self.app.router.add_route("*", "/{case}/{tail:.*}", self._handle)

    async def _add_script(self, request: web.Request) -> web.Response:
        self.scripts[request.match_info["case"]] = Script.from_json(await request.json())
        return web.json_response({"ok": True})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def _get_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "sent": self.sent,
                "dropped": sorted(self.dropped),
                "finished": sorted(self.finished),
            }
        )

    async def _get_timeline(self, request: web.Request) -> web.Response:
        return web.json_response(self.timelines.get(request.match_info["case"], []))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        loop = asyncio.get_running_loop()
        t_request = loop.time()
        case = request.match_info["case"]
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        self.requests.setdefault(case, []).append(
            {
                "path": request.path,
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": payload,
            }
        )
        script = self.scripts.get(case)
        if script is None:
            return web.Response(status=599, text=f"no script for {case}")
        if script.echo_auth:
            script = _echoed(script, request)
        k = script.scale
        timeline: dict[str, Any] = {
            "arrived": arrived,
            "headers_sent": None,
            "writes": [],
            "scheduled": [t * k for t, _ in script.reads],
        }
        self.timelines.setdefault(case, []).append(timeline)
        await asyncio.sleep(max(0.0, t_request + script.headers_at * k - loop.time()))
        if script.body is not None:
            timeline["headers_sent"] = time.perf_counter()
            return web.Response(status=script.status, headers=script.headers, body=script.body)
        response = web.StreamResponse(status=script.status, headers=script.headers)
        timeline["headers_sent"] = time.perf_counter()
        await response.prepare(request)
        self.sent[case] = 0
        for t_s, chunk in script.reads:
            await asyncio.sleep(max(0.0, t_request + t_s * k - loop.time()))
            timeline["writes"].append(time.perf_counter())
            try:
                await response.write(chunk)
            except ConnectionError:  # the client closed the connection mid-body
                self.dropped.add(case)
                self.finished.add(case)
                return response
            self.sent[case] += len(chunk)
        self.finished.add(case)
        if script.abort_at_end:
            assert request.transport is not None
            request.transport.abort()
            return response
        with contextlib.suppress(ConnectionError):  # the probe had what it needed and closed
            await response.write_eof()
        return response


def _echoed(script: Script, request: web.Request) -> Script:
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ") if auth else request.headers.get("x-api-key", "")
    forms = {
        "{AUTH}": token,
        "{AUTH_UPPER}": token.upper(),
        "{AUTH_JSON}": json.dumps(token)[1:-1].replace("/", "\\/"),
        "{AUTH_URL}": urllib.parse.quote(token, safe=""),
    }

    def text(value: str) -> str:
        for mark, form in forms.items():
            value = value.replace(mark, form)
        return value

    def data(value: bytes) -> bytes:
        for mark, form in forms.items():
            value = value.replace(mark.encode(), form.encode())
        return value

    return Script(
        reads=[(t, data(chunk)) for t, chunk in script.reads],
        status=script.status,
        headers={k: text(v) for k, v in script.headers.items()},
        headers_at=script.headers_at,
        body=data(script.body) if script.body is not None else None,
        abort_at_end=script.abort_at_end,
        scale=script.scale,
    )


def _serve(port: int) -> None:
    async def main() -> None:
        runner = web.AppRunner(ReplayApp().app, access_log=None, handle_signals=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class ReplayServer(ChildServer):
    """The test side of the replay server: starts the child process and talks to it."""

    def start(self) -> ReplayServer:
        """Start the child and wait until it listens.

        Raises:
            RuntimeError: when the child does not report its port.
        """
        self._spawn(["tests.servers"], "replay server")
        return self

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if data is None else "POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def add(self, case: str, script: Script) -> str:
        """Register ``script`` under ``case``; returns the base URL to configure (``…/v1``)."""
        self._call(f"/_ctl/script/{case}", script.to_json())
        return self.url(case)

    def url(self, case: str) -> str:
        """Base URL of ``case``."""
        return f"http://127.0.0.1:{self.port}/{case}/v1"

    @property
    def requests(self) -> dict[str, list[dict[str, Any]]]:
        """Every request received so far, by case (path, query, headers, JSON body)."""
        result: dict[str, list[dict[str, Any]]] = self._call("/_ctl/requests")
        return result

    @property
    def sent(self) -> dict[str, int]:
        """Body bytes the server wrote, by case."""
        result: dict[str, int] = self._call("/_ctl/state")["sent"]
        return result

    @property
    def dropped(self) -> set[str]:
        """Cases whose client closed the connection before the script ended."""
        return set(self._call("/_ctl/state")["dropped"])

    @property
    def finished(self) -> set[str]:
        """Streamed cases whose handler has returned."""
        return set(self._call("/_ctl/state")["finished"])

    def timelines(self, case: str) -> list[Timeline]:
        """What the server did for each request of ``case``, oldest first."""
        return [
            Timeline(
                arrived=t["arrived"],
                headers_sent=t["headers_sent"],
                writes=tuple(t["writes"]),
                scheduled=tuple(t["scheduled"]),
            )
            for t in self._call(f"/_ctl/timeline/{case}")
        ]


class ServerThread:
    """Runs an aiohttp application on 127.0.0.1 in its own thread and event loop (for fakes
    that need no precise timing: in the test process, GIL hand-offs add milliseconds)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(self._runner.addresses[0][1])

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        assert self._runner is not None
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> int:
        """Start and return the port."""
        self._thread.start()
        self._ready.wait(10)
        return self.port

    def stop(self) -> None:
        """Stop the server and join its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def sse(obj: Any) -> bytes:
    """One SSE ``data:`` event for a JSON-serialisable object."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


#: Two tokens 5 and 10 ms after the headers, then the terminal: a quick, well-formed OpenAI
#: Chat stream for tests that need many cheap probes (real prober processes).
FAST_SCRIPT = Script(
    headers_at=0.0,
    reads=[
        (0.005, b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'),
        (
            0.010,
            b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n',
        ),
        (0.011, b"data: [DONE]\n\n"),
    ],
)


@contextlib.contextmanager
def answering_and_hanging_server() -> Iterator[int]:
    """An OpenAI-style chat server on 127.0.0.1 (in a thread); yields its port.

    ``/v1/chat/completions`` streams "ok" at once; ``/hang/v1/chat/completions`` accepts and
    never answers until the context ends (then the hanging handlers return, so the server
    stops at once instead of waiting out its shutdown timeout).
    """
    release = threading.Event()

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        delta = {"index": 0, "delta": {"content": "ok"}, "finish_reason": None}
        await resp.write(sse({"choices": [delta]}))
        await resp.write(sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def hang(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.to_thread(release.wait)
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    app.router.add_post("/hang/v1/chat/completions", hang)
    server = ServerThread(app)
    port = server.start()
    try:
        yield port
    finally:
        release.set()
        server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)

"""Real HTTP servers on 127.0.0.1 for tests: a scripted replay server and a thread runner.

The replay server writes each scripted read separately at its scheduled time after the
request arrived (the reads of a field case, docs/field-cases.md), over real TCP with HTTP/1.1 chunked
transfer, so probes see real transport reads, not a patched client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


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
        scale: multiply every time by this (compress long field cases).
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


class ReplayServer:
    """Serves :class:`Script` responses at ``/<case>/...``; records the requests it received,
    the body bytes it wrote per case (``sent``), the cases whose client closed the
    connection before the script ended (``dropped``) and the streamed cases whose handler
    has returned (``finished``)."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.sent: dict[str, int] = {}
        self.dropped: set[str] = set()
        self.finished: set[str] = set()
        self.app = web.Application()
        self.app.router.add_route("*", "/{case}/{tail:.*}", self._handle)
        self.port = 0

    def add(self, case: str, script: Script) -> str:
        """Register ``script`` under ``case``; returns the base URL to configure (``…/v1``)."""
        self.scripts[case] = script
        return self.url(case)

    def url(self, case: str) -> str:
        """Base URL of ``case``."""
        return f"http://127.0.0.1:{self.port}/{case}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
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
        await asyncio.sleep(max(0.0, t_request + script.headers_at * k - loop.time()))
        if script.body is not None:
            return web.Response(status=script.status, headers=script.headers, body=script.body)
        response = web.StreamResponse(status=script.status, headers=script.headers)
        await response.prepare(request)
        self.sent[case] = 0
        for t_s, chunk in script.reads:
            delay = t_request + t_s * k - loop.time()
            await asyncio.sleep(max(0.0, delay))
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


class ServerThread:
    """Runs an aiohttp application on 127.0.0.1 in its own thread and event loop."""

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

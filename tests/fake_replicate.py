"""A fake Replicate API on 127.0.0.1: create a prediction, stream its events, read it back.

Each case is served under its own path prefix (``/{case}/v1/...``) like the replay server.
Times in a :class:`ReplicateScript` count from the moment the create request arrived, the way
a real prediction's boot and output follow its creation; the stream handler writes each
scripted read at its time over real HTTP/1.1 chunked transfer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def event(name: str, data: str, event_id: str) -> bytes:
    """One SSE event as Replicate sends it: ``event``, ``id`` and ``data`` lines; multi-line
    data becomes several ``data:`` lines (replicate-javascript's tests)."""
    lines = [f"event: {name}", f"id: {event_id}"] + [f"data: {part}" for part in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


@dataclass
class ReplicateScript:
    """One scripted prediction.

    Attributes:
        create_status: HTTP status of the create response.
        create_body: a whole create response body instead of the generated prediction.
        create_headers: extra headers of the create response.
        create_at: when the create response is sent, seconds after the request arrived.
        prediction: fields merged into the created prediction (``status``, ``error``, ...).
        stream: whether the prediction has ``urls.stream``.
        stream_host: host:port for ``urls.stream`` and ``urls.get`` (default: this server).
        stream_headers_at: when the stream's headers are sent (after the create arrived).
        reads: ``(t_s, bytes)`` written on the stream at ``t_s`` after the create arrived.
        stream_status: HTTP status of the stream response.
        final: the prediction returned by ``GET urls.get`` (merged over the created one).
        processing_reads: how many ``GET urls.get`` first answer ``status: processing``
            without metrics (the prediction not yet final when the stream ended).
        scale: multiply every time by this.
    """

    create_status: int = 201
    create_body: bytes | None = None
    create_headers: dict[str, str] = field(default_factory=dict)
    create_at: float = 0.05
    prediction: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    stream_host: str | None = None
    stream_headers_at: float = 0.10
    reads: list[tuple[float, bytes]] = field(default_factory=list)
    stream_status: int = 200
    final: dict[str, Any] = field(default_factory=lambda: {"status": "succeeded"})
    processing_reads: int = 0
    scale: float = 1.0


class FakeReplicate:
    """Serves :class:`ReplicateScript` cases; records every request it received."""

    def __init__(self) -> None:
        self.scripts: dict[str, ReplicateScript] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self._created: dict[str, float] = {}
        self._gets: dict[str, int] = {}
        self.port = 0
        self.app = web.Application()
        self.app.router.add_post("/{case}/v1/models/{owner}/{name}/predictions", self._create)
        self.app.router.add_post("/{case}/v1/predictions", self._create)
        self.app.router.add_post("/{case}/v1/deployments/{owner}/{name}/predictions", self._create)
        self.app.router.add_get("/{case}/stream/{pid}", self._stream)
        self.app.router.add_get("/{case}/v1/predictions/{pid}", self._get)

    def add(self, case: str, script: ReplicateScript) -> str:
        """Register ``script`` as ``case``; returns the base URL to configure."""
        self.scripts[case] = script
        self.requests.pop(case, None)  # a rerun starts with a clean log
        self._gets[case] = 0
        return f"http://127.0.0.1:{self.port}/{case}/v1"

    def _log(self, request: web.Request, payload: Any) -> None:
        self.requests.setdefault(request.match_info["case"], []).append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "json": payload,
            }
        )

    def _prediction(self, case: str, host: str) -> dict[str, Any]:
        script = self.scripts[case]
        pid = f"pred-{case}"
        urls = {
            "get": f"http://{host}/{case}/v1/predictions/{pid}",
            "cancel": f"http://{host}/{case}/v1/predictions/{pid}/cancel",
        }
        if script.stream:
            urls["stream"] = f"http://{host}/{case}/stream/{pid}"
        base = {
            "id": pid,
            "model": "meta/meta-llama-3-8b-instruct",
            "input": {},
            "logs": "",
            "error": None,
            "status": "starting",
            "created_at": "2026-10-21T12:00:00.000000Z",
            "urls": urls,
        }
        return base | script.prediction

    async def _create(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        t_request = loop.time()
        case = request.match_info["case"]
        raw = await request.read()
        self._log(request, json.loads(raw) if raw else None)
        script = self.scripts.get(case)
        if script is None:
            return web.Response(status=599, text=f"no script for {case}")
        self._created[case] = t_request
        await asyncio.sleep(max(0.0, t_request + script.create_at * script.scale - loop.time()))
        host = script.stream_host or f"127.0.0.1:{self.port}"
        body = script.create_body or json.dumps(self._prediction(case, host)).encode()
        headers = {"Content-Type": "application/json"} | script.create_headers
        return web.Response(status=script.create_status, headers=headers, body=body)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        case = request.match_info["case"]
        self._log(request, None)
        script = self.scripts[case]
        k = script.scale
        t_created = self._created[case]
        await asyncio.sleep(max(0.0, t_created + script.stream_headers_at * k - loop.time()))
        response = web.StreamResponse(
            status=script.stream_status,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
        )
        await response.prepare(request)
        for t_s, chunk in script.reads:
            await asyncio.sleep(max(0.0, t_created + t_s * k - loop.time()))
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _get(self, request: web.Request) -> web.Response:
        case = request.match_info["case"]
        self._log(request, None)
        script = self.scripts[case]
        self._gets[case] = self._gets.get(case, 0) + 1
        body = self._prediction(case, f"127.0.0.1:{self.port}")
        if self._gets[case] <= script.processing_reads:
            return web.json_response(body | {"status": "processing"})
        return web.json_response(body | script.final)

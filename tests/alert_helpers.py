"""A webhook receiver on 127.0.0.1 and a compressed-time prober core for the alert tests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from probes.config import Config
from store.db import open_db
from store.history import HistoryWriter
from tests.history_helpers import record
from tests.servers import ServerThread
from tui.oncall import OnCall
from tui.prober import monitored


@dataclass
class Receiver:
    """Collects webhook deliveries; ``hang_s`` makes it answer that late; ``status`` fails."""

    key: bytes = b""
    hang_s: float = 0.0
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    thread: ServerThread | None = None
    stopping: bool = False

    def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.thread = ServerThread(app)
        port = self.thread.start()
        return f"http://127.0.0.1:{port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.key:
            sent = request.headers.get("X-Inferwatch-Signature-256", "")
            good = "sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest()
            self.bad_signatures += int(not hmac.compare_digest(sent, good))
        if self.hang_s:
            deadline = asyncio.get_running_loop().time() + self.hang_s
            # stop() runs on another thread: poll its flag.
            while not self.stopping and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        self.bodies.append(json.loads(body))
        return web.Response(status=self.status)

    def stop(self) -> None:
        self.stopping = True  # releases a hanging handler, so the server stops at once
        if self.thread is not None:
            self.thread.stop()


class Core:
    """The prober's writer-thread half (HistoryWriter + OnCall) on a real SQLite file, driven
    by hand with a settable clock: each :meth:`probe` is one stored probe at ``now``."""

    def __init__(self, config: Config, path: Path, now: datetime) -> None:
        self.config = config
        self.path = path
        self.now = now
        self.db = open_db(path)
        self.history = HistoryWriter(self.db, monitored(config, now), now)
        self.oncall = OnCall(config, path, clock=lambda: self.now)
        self.oncall.attach(self.history)

    def probe(self, target: str, ok: bool, step_s: float = 30.0) -> None:
        self.now += timedelta(seconds=step_s)
        rec = record(target, self.now, "ok" if ok else "error", None if ok else "server_error")
        self.oncall.on_record(rec)
        self.history.store_probe(rec)
        self.oncall.tick()

    def run(self, target: str, pattern: str, step_s: float = 30.0) -> None:
        """``pattern``: ``o`` a success, ``f`` a failure, one probe each."""
        for c in pattern:
            self.probe(target, c == "o", step_s)

    def wait_delivered(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            waiting = self.db.conn.execute(
                "SELECT count(*) FROM notifications WHERE status IN ('pending', 'retrying')"
            ).fetchone()[0]
            if not waiting:
                return
            time.sleep(0.05)
        raise AssertionError("notifications still waiting")

    def close(self) -> None:
        self.wait_delivered()
        self.oncall.close()
        self.db.close()


def events(receiver: Receiver) -> Iterator[tuple[str, str]]:
    for b in receiver.bodies:
        yield b["alert"], b["event"]

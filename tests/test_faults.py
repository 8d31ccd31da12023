"""Fault injection on 127.0.0.1: every failure class, its row in SQLite, and isolation.

One :class:`~probes.scheduler.Scheduler` run probes every faulty target *and* two healthy
control targets at once; its sink writes each record to a real SQLite file with
``store.db.insert_probe``. Each fault is then checked for its ``error_kind`` and its stored
row, and the control targets' TTFT is compared with a run of the control targets alone: a
slow or failing target must not delay anyone else's probe. Nothing here leaves 127.0.0.1
(name resolution outcomes are tested with an injected resolver in tests/test_transport.py).

The module's measurement is one module-scoped run, which pytest-rerunfailures would not run
again on a retry; so these tests carry no rerun marker, and their bounds are about
classification and isolation (hundreds of ms), not stamp precision.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from probes.config import ResolvedTarget
from probes.errors import ErrorKind
from probes.record import ProbeRecord
from probes.scheduler import Scheduler
from probes.transport import make_client
from store.db import insert_probe, open_db
from tests.conftest import make_target
from tests.servers import ReplayServer, Script

TOKEN = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
FAST = {"timeout_s": 1.5, "first_token_timeout_s": 0.8, "stall_timeout_s": 0.6}
JSON = {"Content-Type": "application/json"}


@dataclass
class Fault:
    """One faulty target: where it points and the class its probe must end in."""

    name: str
    kind: str
    script: Script | None = None  # served by the replay server
    url: str | None = None  # or a raw URL (sockets made by the fixture)
    provider: str = "openai-compatible"
    settings: dict[str, Any] = field(default_factory=dict)
    retry_after: tuple[float, float] | None = None


def http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def faults() -> list[Fault]:
    stream_keepalive = [(0.1 * i, b": keep-alive\n\n") for i in range(1, 30)]
    return [
        Fault("refused", "connect_refused", url="{closed}"),
        Fault("backlog", "connect_timeout", url="{backlog}"),
        Fault("tls-silent", "connect_timeout", url="{silent_https}"),
        Fault("tls", "tls", url="{replay_https}"),
        Fault("no-headers", "first_token_timeout", url="{silent_http}"),
        Fault("first-token", "first_token_timeout", Script(reads=stream_keepalive)),
        Fault("stall", "stall", Script(reads=[(0.1, TOKEN), *stream_keepalive[1:]])),
        Fault(
            "deadline",
            "deadline",
            Script(reads=[(0.1 * i, TOKEN) for i in range(1, 40)]),
            settings={"timeout_s": 1.2},
        ),
        Fault(
            "401", "auth", Script(status=401, body=b'{"error":{"message":"no key"}}', headers=JSON)
        ),
        Fault(
            "403",
            "auth",
            Script(status=403, body=b'{"error":{"message":"forbidden"}}', headers=JSON),
        ),
        Fault(
            "404",
            "model_not_found",
            Script(status=404, body=b'{"error":{"message":"no such model"}}', headers=JSON),
        ),
        Fault(
            "400",
            "probe_config",
            Script(
                status=400,
                body=b'{"error":{"message":"max_tokens too large","type":"invalid_request_error"}}',
                headers=JSON,
            ),
        ),
        Fault(
            "429-seconds",
            "rate_limited",
            Script(
                status=429,
                body=b'{"error":{"message":"slow down"}}',
                headers=JSON | {"Retry-After": "20"},
            ),
            retry_after=(20.0, 20.0),
        ),
        Fault(
            "429-date",
            "rate_limited",
            Script(
                status=429,
                body=b'{"error":{"message":"slow down"}}',
                headers=JSON | {"Retry-After": http_date_in(30)},
            ),
            retry_after=(27.0, 31.0),
        ),
        Fault(
            "500",
            "server_error",
            Script(status=500, body=b'{"error":{"message":"boom"}}', headers=JSON),
        ),
        Fault(
            "502-html",
            "server_error",
            Script(
                status=502,
                body=b"<html><body>Bad gateway</body></html>",
                headers={"Content-Type": "text/html"},
            ),
        ),
        Fault(
            "503",
            "overloaded",
            Script(status=503, body=b'{"error":{"message":"busy"}}', headers=JSON),
        ),
        Fault(
            "529",
            "overloaded",
            Script(
                status=529,
                body=b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
                headers=JSON,
            ),
            provider="anthropic",
        ),
        Fault(
            "error-in-200",
            "server_error",  # the documented type says what it was
            Script(
                reads=[
                    (0.1, TOKEN),
                    (
                        0.2,
                        b'data: {"error":{"message":"upstream failed","type":"server_error"}}\n\n',
                    ),
                ]
            ),
        ),
        Fault(
            "error-in-200-untyped",
            "stream_error",
            Script(reads=[(0.1, TOKEN), (0.2, b'data: {"error":"something broke"}\n\n')]),
        ),
        Fault("truncated", "truncated", Script(reads=[(0.1, TOKEN)])),
        Fault("dropped", "truncated", Script(reads=[(0.1, TOKEN)], abort_at_end=True)),
        Fault(
            "empty",
            "empty_response",
            Script(
                reads=[
                    (
                        0.1,
                        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
                    ),
                    (
                        0.15,
                        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
                    ),
                    (0.2, b"data: [DONE]\n\n"),
                ]
            ),
        ),
        Fault(
            "html-200",
            "bad_format",
            Script(
                body=b"<!DOCTYPE html><html>Sign in</html>", headers={"Content-Type": "text/html"}
            ),
        ),
        Fault(
            "ndjson-for-sse",
            "bad_format",
            Script(
                body=b'{"message":{"content":"a"},"done":false}\n{"done":true}\n',
                headers={"Content-Type": "application/x-ndjson"},
            ),
        ),
    ]


CONTROL = Script(
    reads=[
        (0.30, b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'),
        (
            0.35,
            b'data: {"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}\n\n',
        ),
        (0.36, b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'),
        (0.37, b"data: [DONE]\n\n"),
    ]
)
CONTROLS = ("control-a", "control-b")


@dataclass
class Sockets:
    """Raw listening sockets that make connection-level faults."""

    closed_port: int
    backlog: socket.socket
    silent: socket.socket
    fillers: list[socket.socket]

    def close(self) -> None:
        for s in [self.backlog, self.silent, *self.fillers]:
            s.close()


def make_sockets() -> Sockets:
    probe_port = socket.socket()
    probe_port.bind(("127.0.0.1", 0))
    closed_port = probe_port.getsockname()[1]
    probe_port.close()  # nothing listens there now: connection refused
    # A listener that never accepts, with its accept queue already full: SYNs are dropped and
    # connect() hangs (Linux keeps backlog + 1 connections queued).
    backlog = socket.socket()
    backlog.bind(("127.0.0.1", 0))
    backlog.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(backlog.getsockname())
        fillers.append(filler)
    # A listener that never accepts but has room: the kernel completes the TCP handshake, and
    # then nothing ever answers (no TLS ServerHello, no HTTP response).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    return Sockets(closed_port, backlog, silent, fillers)


def control_targets(replay: ReplayServer, prefix: str) -> list[ResolvedTarget]:
    return [
        make_target(replay.add(f"{prefix}-{name}", CONTROL), name=name, **FAST) for name in CONTROLS
    ]


async def run_scheduler(
    targets: list[ResolvedTarget], db_path: Path
) -> tuple[list[ProbeRecord], dict[str, float]]:
    """One Scheduler.run_once over ``targets``; rows go to SQLite; returns records and the
    monotonic time (s since start) at which each record reached the sink."""
    db = open_db(db_path)
    sunk: dict[str, float] = {}
    start = time.perf_counter()

    async def sink(record: ProbeRecord) -> None:
        sunk[record.target] = time.perf_counter() - start
        insert_probe(db, record)

    scheduler = Scheduler(targets, sink, max_concurrency=64, jitter_s=0.0)
    async with make_client() as client:
        records = await scheduler.run_once(client)
    db.conn.close()
    return records, sunk


@dataclass
class FaultRun:
    control: dict[str, ProbeRecord]
    records: dict[str, ProbeRecord]
    sunk: dict[str, float]
    rows: dict[str, list[dict[str, Any]]]
    faults: dict[str, Fault]


@pytest.fixture(scope="module")
def fault_run(replay: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRun]:
    """Run the control targets alone, then every fault together with them."""
    tmp = tmp_path_factory.mktemp("faults")
    sockets = make_sockets()
    urls = {
        "{closed}": f"http://127.0.0.1:{sockets.closed_port}/v1",
        "{backlog}": f"http://127.0.0.1:{sockets.backlog.getsockname()[1]}/v1",
        "{silent_http}": f"http://127.0.0.1:{sockets.silent.getsockname()[1]}/v1",
        "{silent_https}": f"https://127.0.0.1:{sockets.silent.getsockname()[1]}/v1",
        "{replay_https}": replay.url("tls-plain").replace("http://", "https://"),
    }
    try:
        control, _ = asyncio.run(run_scheduler(control_targets(replay, "ctl"), tmp / "control.db"))
        all_faults = faults()
        targets = control_targets(replay, "mixed")
        for fault in all_faults:
            base = (
                urls[fault.url]
                if fault.url
                else replay.add(f"fault-{fault.name}", fault.script or Script())
            )
            settings = FAST | fault.settings
            model = "claude-sonnet-4-5" if fault.provider == "anthropic" else "m"
            targets.append(
                make_target(base, name=fault.name, provider=fault.provider, model=model, **settings)
            )
        db_path = tmp / "faults.db"
        records, sunk = asyncio.run(run_scheduler(targets, db_path))
        db = open_db(db_path)
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in db.query("select * from probes"):
            rows.setdefault(row["target"], []).append(row)
        db.conn.close()
        yield FaultRun(
            control={r.target: r for r in control},
            records={r.target: r for r in records},
            sunk=sunk,
            rows=rows,
            faults={f.name: f for f in all_faults},
        )
    finally:
        sockets.close()


@pytest.mark.parametrize("name", [f.name for f in faults()])
def test_fault_is_classified_and_stored(fault_run: FaultRun, name: str) -> None:
    fault = fault_run.faults[name]
    record = fault_run.records[name]
    assert record.status == "error", (name, record.error_message)
    assert record.error_kind == fault.kind, (name, record.error_kind, record.error_message)
    assert record.error_kind in {k.value for k in ErrorKind}
    assert record.decode_tps is None and record.e2e_output_tps is None  # never a rate sample
    assert record.total_ms is not None and record.total_ms >= 0
    if fault.retry_after is not None:
        low, high = fault.retry_after
        assert record.retry_after_s is not None and low <= record.retry_after_s <= high
    # The row is in the SQLite file, read back through a new connection.
    rows = fault_run.rows[name]
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "error" and row["error_kind"] == fault.kind
    assert row["http_status"] == record.http_status
    assert row["error_message"] == record.error_message


def test_connection_faults_have_no_response(fault_run: FaultRun) -> None:
    for name in ("refused", "backlog", "tls-silent", "tls", "no-headers"):
        record = fault_run.records[name]
        assert record.http_status is None and record.ttfb_ms is None, name
    # Timeouts end near their deadline, not at httpx's 10 s connect timeout.
    for name in ("backlog", "tls-silent", "no-headers"):
        total = fault_run.records[name].total_ms or 0
        assert 700 <= total <= 1500, (name, total)


def test_http_faults_keep_status_and_no_latency(fault_run: FaultRun) -> None:
    for name, status in (("401", 401), ("429-seconds", 429), ("529", 529), ("502-html", 502)):
        record = fault_run.records[name]
        assert record.http_status == status and record.ttft_ms is None, name
    for name in ("error-in-200", "truncated", "stall"):
        record = fault_run.records[name]
        assert record.http_status == 200 and record.ttft_ms is not None, name  # kept


def test_failing_targets_do_not_delay_the_others(fault_run: FaultRun) -> None:
    slowest = max(fault_run.sunk[f] for f in fault_run.faults)
    assert slowest >= 0.9  # the run really contained slow faults
    for name in CONTROLS:
        alone, mixed = fault_run.control[name], fault_run.records[name]
        assert alone.status == "ok" and mixed.status == "ok", mixed.error_message
        assert alone.ttft_ms is not None and mixed.ttft_ms is not None
        assert abs(mixed.ttft_ms - alone.ttft_ms) <= 150, (alone.ttft_ms, mixed.ttft_ms)
        assert mixed.total_ms is not None and mixed.total_ms <= 800
        # Its record reached the sink long before the slow faults finished.
        assert fault_run.sunk[name] < slowest - 0.3
        assert len(fault_run.rows[name]) == 1 and fault_run.rows[name][0]["status"] == "ok"

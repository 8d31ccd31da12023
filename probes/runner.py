"""Run one probe: send the canary, read the stream, time it and classify the outcome.

``run_probe`` never raises for anything a provider or the network does: every outcome is a
:class:`~probes.record.ProbeRecord` with ``status`` ``ok`` or ``error`` and a classified
``error_kind``. It never retries: a probe measures. Timing follows docs/metrics.md §1: ``t0`` right
before the request is handed to httpx, every stamp from the injected monotonic clock.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from probes.config import ResolvedTarget, key_problem, url_secrets
from probes.dialects import DIALECTS
from probes.dialects.base import Dialect, MultiRequestDialect, ParsedEvent, ProviderError
from probes.errors import ErrorKind, classify_http_status, redact
from probes.headers import parse_ratelimit, parse_retry_after, request_id
from probes.measure import StreamMeasurement
from probes.pricing import compute_cost
from probes.record import ProbeRecord
from probes.sanitize import sanitize_record
from probes.sse import (
    FramingError,
    StreamLimitExceeded,
    StreamLimits,
    WireEvent,
    accepts_content_type,
    aiter_framed,
)
from probes.timestamps import iso, utc_now

_MAX_ERROR_BODY_BYTES = 64 * 1024
_DRAIN_GRACE_S = 1.0

Clock = Callable[[], float]
WallClock = Callable[[], datetime]


#: Seconds an idle pooled connection is kept (httpx's default).
KEEPALIVE_EXPIRY_S = 5.0


def make_client(
    max_connections: int = 100,
    ssl_context: ssl.SSLContext | None = None,
    *,
    keep_alive: bool = True,
) -> httpx.AsyncClient:
    """An httpx client suited to probing.

    ``Accept-Encoding: identity`` because a compressed stream is released in blocks by the
    decompressor (docs/metrics.md §3 ``buffered``). Read timeouts are off: the runner enforces its
    own first-token, stall and total deadlines, which keep-alive bytes cannot re-arm.

    Args:
        max_connections: pool size; the scheduler sizes it so a probe never waits for one.
        ssl_context: a TLS context to share between clients (building one per client costs
            milliseconds and a copy of the CA bundle); None builds the default.
        keep_alive: keep idle connections (for :data:`KEEPALIVE_EXPIRY_S`); False closes
            each one when its response ends (the scheduler's choice for targets probed less
            often than that: their connection would expire unused anyway).
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=None, write=10.0, pool=10.0),
        headers={"Accept-Encoding": "identity", "User-Agent": "inferwatch/0.1"},
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(20, max_connections) if keep_alive else 0,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        ),
        verify=ssl_context if ssl_context is not None else True,
        follow_redirects=False,
        trust_env=False,
    )


class _ProbeFailed(Exception):
    def __init__(self, kind: ErrorKind, message: str, provider_error: ProviderError | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider_error = provider_error


@dataclass(slots=True)
class _Outcome:
    http_status: int | None = None
    kind: ErrorKind | None = None
    message: str | None = None
    retry_after_s: float | None = None
    header_request_id: str | None = None
    conn_reused: bool | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _connect_kind(exc: BaseException) -> tuple[ErrorKind, str]:
    """Classify a transport error raised before a response arrived."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    # Exception chains often repeat one message at each level (httpx wraps httpcore wraps
    # OSError): keep each distinct message once.
    text = " | ".join(dict.fromkeys(str(e) for e in chain if str(e)))
    lowered = text.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return ErrorKind.CONNECT_TIMEOUT, "connect timed out"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return ErrorKind.DNS, text or "DNS lookup failed"
    if (
        any(isinstance(e, ssl.SSLError) for e in chain)
        or "certificate" in lowered
        or "ssl" in lowered
    ):
        return ErrorKind.TLS, text or "TLS handshake failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in lowered:
        return ErrorKind.CONNECT_REFUSED, "connection refused"
    dns_words = (
        "name or service not known",
        "nodename nor servname",
        "getaddrinfo",
        "temporary failure in name resolution",
        "no address associated",
        "name resolution",
    )
    if any(w in lowered for w in dns_words):
        return ErrorKind.DNS, text or "DNS lookup failed"
    return ErrorKind.CONNECT_ERROR, text or type(exc).__name__


def _body_kind(content_type: str, body: str) -> str:
    head = body.lstrip()[:200].lower()
    if "html" in content_type or head.startswith(("<!doctype", "<html")):
        return "an HTML page (a proxy, captive portal or wrong base_url?)"
    if "ndjson" in content_type or (head.startswith("{") and "\n{" in body.strip()):
        return "NDJSON, not Server-Sent Events"
    if "json" in content_type or head.startswith(("{", "[")):
        return "a JSON document, not a stream"
    return f"content-type {content_type or 'missing'!r}"


async def _read_limited(response: httpx.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_ERROR_BODY_BYTES:
            break
    return b"".join(chunks)[:_MAX_ERROR_BODY_BYTES].decode("utf-8", errors="replace")


async def run_probe(
    target: ResolvedTarget,
    client: httpx.AsyncClient,
    *,
    clock: Clock = time.perf_counter,
    wall_clock: WallClock = utc_now,
    dialect: Dialect | None = None,
) -> ProbeRecord:
    """Probe ``target`` once and return its record. Never raises for provider or network faults.

    Args:
        target: the resolved target; its key is read from the environment now.
        client: a shared client (see :func:`make_client`); pooled connections are reused.
        clock: monotonic clock in seconds (``time.perf_counter``); injectable for tests.
        wall_clock: UTC wall clock, read once for ``started_at``; never subtracted.
        dialect: the wire dialect (default: the target's); a wrapper may reshape the request
            (the prompt-caching check adds ``cache_control``, ``prompt_cache_key``, ...).

    Returns:
        The probe's record, cost included when usage and a price are known.
    """
    dialect = dialect or DIALECTS[target.dialect]
    settings = target.settings
    started = wall_clock()
    api_key = target.api_key()
    secrets = ((api_key,) if api_key else ()) + url_secrets(target.base_url)
    record = ProbeRecord(
        started_at=iso(started),
        target=target.name,
        provider=target.config.provider,
        model=target.config.model,
        status="ok",
    )
    if not target.is_configured():
        record.status = "error"
        record.error_kind = ErrorKind.NOT_CONFIGURED
        record.error_message = f"environment variable {target.config.api_key_env} is not set"
        return record
    problem = key_problem(api_key) if api_key else None
    if problem is not None:
        # httpx would refuse the header with a message quoting the whole key.
        record.status = "error"
        record.error_kind = ErrorKind.PROBE_CONFIG
        record.error_message = (
            f"the API key in ${target.config.api_key_env} {problem}; an HTTP header cannot "
            "carry it (value not shown)"
        )
        return record

    request = dialect.build_request(target, api_key)
    outcome = _Outcome()
    loop = asyncio.get_running_loop()
    first_token_timeout = settings.first_token_timeout_s or settings.timeout_s
    t0 = clock()
    meas = StreamMeasurement(t0=t0)
    total_deadline = loop.time() + settings.timeout_s
    t_end = t0
    new_connection = False
    request_sent = False  # the connection was up: request headers started going out

    async def trace(name: str, info: dict[str, Any]) -> None:
        nonlocal new_connection, request_sent
        if name.startswith("connection.connect_tcp"):
            new_connection = True
        elif name.endswith("send_request_headers.started"):
            request_sent = True

    async def exchange(deadline_cm: asyncio.Timeout) -> None:
        opened: AbstractAsyncContextManager[httpx.Response]
        if isinstance(dialect, MultiRequestDialect):
            # The dialect sends its own requests around the stream (Replicate: create, stream,
            # read the result); facts it learns outside the stream arrive through `report`.
            opened = dialect.open_stream(
                client,
                request,
                extensions={"trace": trace},
                report=lambda event: meas.on_event(clock(), 0, event),
            )
        else:
            opened = client.stream(
                request.method,
                request.url,
                headers=request.headers,
                json=request.json,
                extensions={"trace": trace},
            )
        async with opened as response:
            meas.on_headers(clock())
            outcome.conn_reused = not new_connection
            outcome.http_status = response.status_code
            outcome.headers = dict(response.headers)
            outcome.header_request_id = request_id(response.headers)
            await _read_response(
                response,
                dialect,
                meas,
                clock,
                deadline_cm,
                loop,
                total_deadline,
                first_token_timeout,
                settings.stall_timeout_s,
                started,
                outcome,
                StreamLimits(settings.response_bytes_cap, settings.stream_events_cap),
            )
        # httpx binds a response's stream to the response, a reference cycle per probe that
        # only a full collection frees; unbound once closed, the probe's objects go at once
        # and the prober's workers collect rarely (tui/prober_worker.py, settle_gc).
        response.stream = httpx.ByteStream(b"")

    try:
        # Until the first token, first_token_timeout_s counts from the request (headers
        # included); _read_response re-arms the deadline as the stream progresses.
        async with asyncio.timeout(min(settings.timeout_s, first_token_timeout)) as deadline_cm:
            try:
                try:
                    await exchange(deadline_cm)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    if meas.t_headers is not None or new_connection:
                        raise
                    # A pooled keep-alive connection the server had already closed (llama-server
                    # does this after streamed responses without "Connection: close"): the
                    # request never reached the server, so this is not a provider failure.
                    # Send it once more on a new connection and restart the clock.
                    meas.t0 = clock()
                    await exchange(deadline_cm)
            except _ProbeFailed as failure:
                outcome.kind, outcome.message = failure.kind, failure.message
            except httpx.TimeoutException as exc:
                if meas.t_headers is None and isinstance(
                    exc, httpx.ConnectTimeout | httpx.PoolTimeout
                ):
                    outcome.kind, outcome.message = ErrorKind.CONNECT_TIMEOUT, "connect timed out"
                else:
                    outcome.kind, outcome.message = ErrorKind.DEADLINE, str(exc) or "timed out"
            except httpx.RemoteProtocolError as exc:
                if meas.t_headers is None:
                    outcome.kind, outcome.message = ErrorKind.CONNECT_ERROR, str(exc)
                else:
                    outcome.kind = ErrorKind.TRUNCATED
                    outcome.message = f"connection closed mid-stream: {exc}"
            except (httpx.ConnectError, httpx.NetworkError, OSError) as exc:
                if meas.t_headers is None:
                    outcome.kind, outcome.message = _connect_kind(exc)
                else:
                    outcome.kind = ErrorKind.TRUNCATED
                    outcome.message = f"network error mid-stream: {exc}"
            except (httpx.HTTPError, httpx.StreamError) as exc:
                outcome.kind, outcome.message = ErrorKind.CONNECT_ERROR, str(exc)
            t_end = clock()
    except TimeoutError:
        t_end = clock()
        if meas.t_terminal is not None:
            # The answer was complete; only the drain after the terminal marker timed out.
            if not meas.has_token:
                outcome.kind = ErrorKind.EMPTY_RESPONSE
                outcome.message = "stream completed without any generated token"
        elif meas.t_headers is None and not request_sent:
            outcome.kind = ErrorKind.CONNECT_TIMEOUT
            outcome.message = "the connection (TCP/TLS) was not established in time"
        elif loop.time() >= total_deadline - 0.001:
            outcome.kind = ErrorKind.DEADLINE
            outcome.message = f"no complete answer within timeout_s={settings.timeout_s:g}"
        elif meas.has_token:
            outcome.kind = ErrorKind.STALL
            outcome.message = f"no token for stall_timeout_s={settings.stall_timeout_s:g}"
        else:
            outcome.kind = ErrorKind.FIRST_TOKEN_TIMEOUT
            outcome.message = f"no token within first_token_timeout_s={first_token_timeout:g}"
            if meas.t_headers is None:
                outcome.message += " (connected, request sent, no response headers)"
        if meas.keepalives and outcome.message:
            outcome.message += f" ({meas.keepalives} keep-alives received)"
    except Exception as exc:  # a bug in a parser must not take the prober down
        t_end = clock()
        outcome.kind = ErrorKind.INTERNAL
        outcome.message = f"{type(exc).__name__}: {exc}"

    if meas.t_terminal is not None:
        t_end = meas.t_terminal  # total_ms ends at the terminal marker (docs/metrics.md §1)
    try:
        return _finish(record, target, meas, outcome, t_end, started, secrets)
    except Exception as exc:  # whatever a provider sent, the target gets a record
        record.status = "error"
        record.error_kind = ErrorKind.INTERNAL
        record.error_message = f"finishing the record failed: {type(exc).__name__}: {exc}"
        return sanitize_record(record, secrets)


async def _read_response(
    response: httpx.Response,
    dialect: Any,
    meas: StreamMeasurement,
    clock: Clock,
    deadline_cm: asyncio.Timeout,
    loop: asyncio.AbstractEventLoop,
    total_deadline: float,
    first_token_timeout: float,
    stall_timeout: float,
    started: datetime,
    outcome: _Outcome,
    limits: StreamLimits,
) -> None:
    """Read the body into ``meas``; raise :class:`_ProbeFailed` for classified failures.

    Past a cap of ``limits`` the probe fails as ``too_large`` (or, when the terminal marker
    had already arrived, ends as complete) without reading further: leaving the stream
    context with the body unread makes httpx close the connection rather than drain it.
    """
    status = response.status_code
    if status >= 400 or 300 <= status < 400:
        body = await _read_limited(response)
        perr = dialect.parse_error_body(body)
        kind = classify_http_status(status, perr.type if perr else None)
        if status in (429, 503, 529):
            outcome.retry_after_s = parse_retry_after(response.headers, started)
            if outcome.retry_after_s is None and perr is not None:
                outcome.retry_after_s = perr.retry_after_s
        # Not cut here: redact() removes keys from the whole text first, then caps it.
        message = perr.message if perr else (body.strip() or response.reason_phrase)
        if perr and perr.type:
            message = f"{perr.type}: {message}"
        raise _ProbeFailed(kind, f"HTTP {status}: {message}", perr)

    content_type = response.headers.get("content-type", "").lower()
    if not accepts_content_type(dialect.framing, content_type):
        body = await _read_limited(response)
        perr = dialect.parse_error_body(body)
        if perr is not None:
            raise _ProbeFailed(ErrorKind.STREAM_ERROR, f"HTTP {status} error body: {perr.message}")
        raise _ProbeFailed(
            ErrorKind.BAD_FORMAT, f"expected a stream, got {_body_kind(content_type, body)}"
        )

    parser = dialect.new_parser()
    source: AsyncIterator[WireEvent] = aiter_framed(dialect.framing, response, limits)

    def rearm() -> None:
        last = meas.t_last_token
        if last is None:
            progress_deadline = loop.time() + first_token_timeout - (clock() - meas.t0)
        else:
            progress_deadline = loop.time() + stall_timeout - (clock() - last)
        deadline_cm.reschedule(min(total_deadline, progress_deadline))

    rearm()
    try:
        async for item in source:
            now = clock()
            if meas.t_terminal is not None:
                # Past the terminal marker: read the rest of the body (normally just the
                # closing chunk) so the connection goes back to the pool instead of closing.
                continue
            if item.kind == "comment":
                meas.keepalives += 1
                continue
            try:
                parsed: ParsedEvent | None = parser.parse(item.event, item.data)
            except ValueError as exc:
                raise _ProbeFailed(ErrorKind.BAD_FORMAT, str(exc)) from None
            if parsed is None:
                continue
            meas.on_event(now, item.read_index, parsed)
            if parsed.has_token:
                rearm()
            if parsed.error is not None:
                perr = parsed.error
                kind = ErrorKind.STREAM_ERROR
                if perr.type and "overloaded" in perr.type.lower():
                    kind = ErrorKind.OVERLOADED
                label = f"{perr.type}: " if perr.type else ""
                raise _ProbeFailed(kind, f"error in stream: {label}{perr.message}", perr)
            if parsed.terminal:
                meas.t_terminal = now
                # A server that keeps the body open after its marker gets a short grace.
                deadline_cm.reschedule(min(total_deadline, loop.time() + _DRAIN_GRACE_S))
    except FramingError as exc:
        raise _ProbeFailed(ErrorKind.BAD_FORMAT, str(exc)) from None
    except StreamLimitExceeded as exc:
        if meas.t_terminal is None:
            raise _ProbeFailed(ErrorKind.TOO_LARGE, str(exc)) from None
        # The answer was complete; only what followed its terminal marker overflowed.
    if not meas.saw_terminal:
        raise _ProbeFailed(ErrorKind.TRUNCATED, "stream ended without its terminal marker")
    if not meas.has_token:
        raise _ProbeFailed(ErrorKind.EMPTY_RESPONSE, "stream completed without any generated token")


def _finish(
    record: ProbeRecord,
    target: ResolvedTarget,
    meas: StreamMeasurement,
    outcome: _Outcome,
    t_end: float,
    started: datetime,
    secrets: tuple[str, ...],
) -> ProbeRecord:
    derived = meas.derive(t_end)
    record.http_status = outcome.http_status
    record.conn_reused = outcome.conn_reused
    record.total_ms = (t_end - meas.t0) * 1000.0
    if meas.t_headers is not None:
        record.ttfb_ms = (meas.t_headers - meas.t0) * 1000.0
    record.ttft_ms = derived.ttft_ms
    record.ttfat_ms = derived.ttfat_ms
    record.token_events = len(meas.token_times)
    record.itl_p50_ms = derived.itl_p50_ms
    record.itl_max_ms = derived.itl_max_ms
    record.buffered = derived.buffered
    record.reasoning_hidden = derived.reasoning_hidden
    record.no_visible_output = derived.no_visible_output
    record.usage_inconsistent = derived.usage_inconsistent
    record.usage_source = derived.usage_source
    usage = derived.usage
    record.input_tokens = usage.input_tokens
    record.cache_read_tokens = usage.cache_read_tokens
    record.cache_write_tokens = usage.cache_write_tokens
    record.output_tokens = usage.output_tokens
    record.reasoning_tokens = usage.reasoning_tokens
    record.finish_reason = meas.finish_reason
    record.request_id = outcome.header_request_id or meas.request_id
    record.upstream_provider = meas.upstream_provider
    record.provider_cost_usd = meas.provider_cost_usd
    timings = meas.server_timings_ms
    record.server_queue_ms = timings.get("queue")
    record.server_ttft_ms = timings.get("ttft")
    record.server_predict_ms = timings.get("predict")
    record.server_load_ms = timings.get("load")
    record.server_prefill_ms = timings.get("prefill")
    record.server_decode_ms = timings.get("decode")
    record.server_total_ms = timings.get("total")
    limits = parse_ratelimit(outcome.headers, started)
    record.ratelimit_remaining_requests = limits.remaining_requests
    record.ratelimit_remaining_tokens = limits.remaining_tokens
    record.ratelimit_reset_requests_s = limits.reset_requests_s
    record.ratelimit_reset_tokens_s = limits.reset_tokens_s
    flagged = tuple(meas.out_of_range) + tuple(f"ratelimit_{n}" for n in limits.out_of_range)
    record.retry_after_s = outcome.retry_after_s

    # A billed failure that still reported usage is priced (docs/metrics.md §5).
    cost = compute_cost(usage, target.config, target.prices_id, started, meas.provider_cost_usd)
    record.cost_usd, record.cost_source = cost.cost_usd, cost.cost_source
    record.cost_mismatch = cost.mismatch

    if outcome.kind is None:
        record.status = "ok"
        record.decode_tps = derived.decode_tps
        record.e2e_output_tps = derived.e2e_output_tps
        record.itl_ms = derived.itl_ms
    else:
        # Failures keep TTFT and tokens for diagnosis, never as rate samples (docs/metrics.md §6).
        record.status = "error"
        record.error_kind = outcome.kind.value
        record.error_message = redact(outcome.message or outcome.kind.value, secrets)
    return sanitize_record(record, secrets, flagged)


def record_to_json(record: ProbeRecord) -> str:
    """Serialise a record as one JSON line (schema order, nulls kept; never ``NaN``/``Infinity``:
    raises ValueError for a record that did not pass ``sanitize_record``)."""
    return json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)

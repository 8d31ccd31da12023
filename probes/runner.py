"""Run one probe: send the canary, read the stream, time it and classify the outcome.

``run_probe`` never raises for anything a provider or the network does: every outcome is a
:class:`~probes.record.ProbeRecord` with ``status`` ``ok`` or ``error`` and a classified
``error_kind``. It never retries: a probe measures. Timing follows docs/metrics.md: the
client's one-time start-up is paid before any clock (:func:`probes.transport.warm_up`), ``t0``
is taken right before the request is handed to httpx, each event is stamped with the time its
bytes were read (before any decoding or parsing), every stamp from the injected monotonic clock.
Exceptions are classified by a table (``probes.failures``), provider error objects by their
documented type (``probes.errors.classify_provider_error``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from probes.config import ResolvedTarget, key_problem, url_secrets
from probes.dialects import DIALECTS
from probes.dialects.base import Dialect, MultiRequestDialect, ProviderError, StreamParser
from probes.errors import (
    ErrorKind,
    classify_http_status,
    classify_provider_error,
    redact,
)
from probes.failures import classify_exception, timeout_kind
from probes.headers import parse_ratelimit, parse_retry_after, request_id, response_date
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
    check_bytes,
    check_events,
    new_framer,
)
from probes.timestamps import iso, utc_now
from probes.transport import ConnectionPhases, StampedStream, make_client, tracking, warm_up

__all__ = ["make_client", "record_to_json", "run_probe"]

_MAX_ERROR_BODY_BYTES = 64 * 1024
_DRAIN_GRACE_S = 1.0
#: Precision of the stall deadline (see ``_read_response``): at most this, ...
_STALL_SLACK_S = 0.5
#: ... or this share of stall_timeout_s when that is shorter.
_STALL_SLACK_SHARE = 0.05
#: Share of the probe's first-token budget that name resolution may use: a slow resolver
#: then ends as ``dns_timeout`` (the monitor's side), not as a connect timeout.
DNS_BUDGET_SHARE = 0.25

Clock = Callable[[], float]
WallClock = Callable[[], datetime]


def _unbind(response: httpx.Response) -> None:
    """Drop a closed response's stream. httpx binds a response's stream to the response, a
    reference cycle per probe that only a full collection frees; unbound, the probe's objects
    go at once and the prober's workers collect rarely (tui/prober_worker.py, settle_gc)."""
    response.stream = httpx.ByteStream(b"")


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
    headers: Mapping[str, str] = field(default_factory=dict)


#: What a stop the provider documents (``ParsedEvent.stop_kind``) is called in the message.
_STOP_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.CONTENT_FILTER: "the answer was stopped by a content filter",
    ErrorKind.SAFETY_BLOCK: "the prompt was blocked by the provider's safety system",
    ErrorKind.MODEL_LOADING: "the server is loading the model",
}


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


class _ArrivalClock:
    """The probe's clock, moved back to when the latest bytes came off the socket.

    ``StampedStream`` stamps each socket read (``time.perf_counter``); between that read and the
    moment httpx hands the bytes over, h11 and httpx run. Reading the probe's clock and taking
    away that processing time gives the arrival on the probe's own (possibly injected) clock.
    Made when the response's headers are in: the read that completed them is this request's,
    and so is every later one. Without a stamped stream (a foreign transport), or before any
    read of this request, it is the probe's clock as is.
    """

    __slots__ = ("_clock", "_first", "_stream")

    def __init__(self, clock: Clock, stream: StampedStream | None) -> None:
        self._clock = clock
        self._stream = stream
        first = stream.last_read_s if stream is not None else None
        self._first = first if first is not None else float("inf")

    def __call__(self) -> float:
        now = self._clock()
        stream = self._stream
        if stream is None:
            return now
        read_at = stream.last_read_s
        if read_at is None or read_at < self._first:
            return now
        return now - max(time.perf_counter() - read_at, 0.0)


def _labelled(prefix: str, perr: ProviderError) -> str:
    label = perr.label()
    return f"{prefix} [{label}]: {perr.message}" if label else f"{prefix}: {perr.message}"


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
        client: a shared client (see :func:`probes.transport.make_client`); pooled
            connections are reused.
        clock: monotonic clock in seconds (``time.perf_counter``); injectable for tests.
        wall_clock: UTC wall clock, read once for ``started_at``; never subtracted.
        dialect: the wire dialect (default: the target's); a wrapper may reshape the request
            (the prompt-caching check adds ``cache_control``, ``prompt_cache_key``, ...).

    Returns:
        The probe's record, cost included when usage and a price are known.
    """
    dialect = dialect or DIALECTS[target.dialect]
    settings = target.settings
    await warm_up()  # once per event loop, before any clock: no start-up cost in a timing
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
    budget_s = min(settings.timeout_s, first_token_timeout)
    phases = ConnectionPhases(dns_timeout_s=DNS_BUDGET_SHARE * budget_s)

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name == "http11.send_request_headers.started":
            phases.phase = "request"  # a pooled connection goes straight from pool to request

    # Building the HTTP request (URL, headers, JSON body) is our work, not the provider's: it
    # happens before the clock starts, as the client's start-up does.
    try:
        http_request = client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            json=request.json,
            extensions={"trace": trace},
        )
    except Exception as exc:  # a URL or header from the config httpx cannot send
        record.status = "error"
        record.error_kind = ErrorKind.PROBE_CONFIG
        record.error_message = redact(f"the request could not be built: {exc}", secrets)
        return record
    meas = StreamMeasurement(t0=clock())
    total_deadline = loop.time() + settings.timeout_s

    async def send() -> httpx.Response:
        meas.t0 = clock()  # t0: immediately before the request is handed to httpx
        return await client.send(http_request, stream=True)

    async def exchange(deadline_cm: asyncio.Timeout) -> None:
        if isinstance(dialect, MultiRequestDialect):
            # The dialect sends its own requests around the stream (Replicate: create, stream,
            # read the result); facts it learns outside the stream arrive through `report`.
            opened: AbstractAsyncContextManager[httpx.Response] = dialect.open_stream(
                client,
                request,
                extensions={"trace": trace},
                report=lambda event: meas.on_event(clock(), 0, event),
            )
            meas.t0 = clock()
            async with opened as response:
                await read(response, deadline_cm)
            _unbind(response)
            return
        response = await send()
        try:
            await read(response, deadline_cm)
        finally:
            await response.aclose()
            _unbind(response)

    async def read(response: httpx.Response, deadline_cm: asyncio.Timeout) -> None:
        stream = response.extensions.get("network_stream")
        arrival = _ArrivalClock(clock, stream if isinstance(stream, StampedStream) else None)
        meas.on_headers(arrival())
        phases.phase = "response"
        outcome.http_status = response.status_code
        outcome.headers = response.headers
        outcome.header_request_id = request_id(response.headers)
        await _read_response(
            response,
            dialect.framing,
            dialect.new_parser(),
            dialect.parse_error_body,
            meas,
            arrival,
            deadline_cm,
            loop,
            total_deadline,
            first_token_timeout,
            settings.stall_timeout_s,
            started,
            outcome,
            StreamLimits(settings.response_bytes_cap, settings.stream_events_cap),
        )

    try:
        # Until the first token, first_token_timeout_s counts from the request (headers
        # included); _read_response re-arms the deadline as the stream progresses.
        with tracking(phases):
            async with asyncio.timeout(budget_s) as deadline_cm:
                try:
                    await exchange(deadline_cm)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    if phases.phase == "response" or phases.new_connection:
                        raise
                    # A pooled keep-alive connection the server had already closed (llama-server
                    # does this after streamed responses without "Connection: close"): the
                    # request never reached the server, so this is not a provider failure.
                    # Send it once more on a new connection (exchange restarts the clock).
                    phases.restart()
                    await exchange(deadline_cm)
    except _ProbeFailed as failure:
        outcome.kind, outcome.message = failure.kind, failure.message
    except TimeoutError:
        kind = timeout_kind(
            phases.phase,
            has_token=meas.has_token,
            terminal_seen=meas.t_terminal is not None,
            total_deadline_reached=loop.time() >= total_deadline - 0.001,
        )
        if kind is not None:
            outcome.kind, outcome.message = kind, _timeout_message(kind, phases, settings)
            if meas.keepalives:
                outcome.message += f" ({meas.keepalives} keep-alives received)"
    except Exception as exc:
        classified = classify_exception(exc, phases.phase)
        if classified is None:  # a bug of ours must not take the prober down
            outcome.kind, outcome.message = ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}"
        else:
            outcome.kind, outcome.message = classified
    t_end = clock()

    if outcome.kind is None and meas.saw_terminal:
        # The answer is complete: judge what it was (docs/metrics.md §7).
        if meas.stop_kind is not None:
            outcome.kind = meas.stop_kind
            outcome.message = (
                f"{_STOP_MESSAGES.get(meas.stop_kind, meas.stop_kind.value)} "
                f"(finish reason {meas.finish_reason})"
            )
        elif not meas.has_token:
            outcome.kind = ErrorKind.EMPTY_RESPONSE
            outcome.message = "stream completed without any generated token"
    if meas.t_terminal is not None:
        t_end = meas.t_terminal  # total_ms ends at the terminal marker (docs/metrics.md §1)
    try:
        return _finish(record, target, meas, phases, outcome, t_end, started, secrets)
    except Exception as exc:  # whatever a provider sent, the target gets a record
        record.status = "error"
        record.error_kind = ErrorKind.INTERNAL
        record.error_message = f"finishing the record failed: {type(exc).__name__}: {exc}"
        return sanitize_record(record, secrets)


def _timeout_message(kind: ErrorKind, phases: ConnectionPhases, settings: Any) -> str:
    if kind is ErrorKind.DNS_TIMEOUT:
        return "the resolver did not answer within the probe's budget"
    if kind is ErrorKind.CONNECT_TIMEOUT:
        return "the connection (TCP/TLS) was not established in time"
    if kind is ErrorKind.DEADLINE:
        return f"no complete answer within timeout_s={settings.timeout_s:g}"
    if kind is ErrorKind.STALL:
        return f"no token for stall_timeout_s={settings.stall_timeout_s:g}"
    first = settings.first_token_timeout_s or settings.timeout_s
    message = f"no token within first_token_timeout_s={first:g}"
    if phases.phase == "request":
        message += " (connected, request sent, no response headers)"
    return message


async def _read_response(
    response: httpx.Response,
    framing: str,
    parser: StreamParser,
    parse_error_body: Callable[[str], ProviderError | None],
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
        perr = parse_error_body(body)
        kind = classify_http_status(
            status,
            perr.type if perr else None,
            perr.code if perr else None,
            perr.message if perr else body[:200],
        )
        if status in (429, 503, 529):
            sent_at = response_date(response.headers) or started
            outcome.retry_after_s = parse_retry_after(response.headers, sent_at)
            if outcome.retry_after_s is None and perr is not None:
                outcome.retry_after_s = perr.retry_after_s
        # Not cut here: redact() removes keys from the whole text first, then caps it.
        if perr is None:
            raise _ProbeFailed(kind, f"HTTP {status}: {body.strip() or response.reason_phrase}")
        raise _ProbeFailed(kind, _labelled(f"HTTP {status}", perr), perr)

    content_type = response.headers.get("content-type", "").lower()
    if not accepts_content_type(framing, content_type):
        body = await _read_limited(response)
        perr = parse_error_body(body)
        if perr is not None:
            kind = classify_provider_error(perr.type, perr.code, perr.message)
            raise _ProbeFailed(kind, _labelled(f"HTTP {status} error body", perr), perr)
        raise _ProbeFailed(
            ErrorKind.BAD_FORMAT, f"expected a stream, got {_body_kind(content_type, body)}"
        )

    framer = new_framer(framing)
    # Moving the deadline is a timer-heap operation; doing it for every token was a visible
    # share of a probe's CPU. The stall deadline is pushed out only when a token arrives after
    # the scheduled one minus this slack, and then to ``last token + stall + slack``: a stall is
    # detected between stall_timeout_s and stall_timeout_s + slack after the last token.
    slack = min(_STALL_SLACK_S, _STALL_SLACK_SHARE * stall_timeout)

    def rearm(now: float) -> None:
        last = meas.t_last_token
        if last is None:
            deadline_cm.reschedule(
                min(total_deadline, loop.time() + first_token_timeout - (now - meas.t0))
            )
            return
        progress_deadline = loop.time() + stall_timeout - (now - last)
        scheduled = deadline_cm.when()
        if scheduled is None or progress_deadline > scheduled or len(meas.token_times) == 1:
            deadline_cm.reschedule(min(total_deadline, progress_deadline + slack))

    def handle(item: WireEvent, now: float) -> None:
        if item.kind == "comment":
            meas.keepalives += 1
            return
        try:
            parsed = parser.parse(item.event, item.data)
        except ValueError as exc:
            raise _ProbeFailed(ErrorKind.BAD_FORMAT, str(exc)) from None
        if parsed is None:
            return
        meas.on_event(now, item.read_index, parsed)
        if parsed.has_token:
            rearm(now)
        if parsed.error is not None:
            perr = parsed.error
            kind = classify_provider_error(perr.type, perr.code, perr.message)
            raise _ProbeFailed(kind, _labelled("error in stream", perr), perr)
        if parsed.terminal:
            meas.t_terminal = now
            # A server that keeps the body open after its marker gets a short grace.
            deadline_cm.reschedule(min(total_deadline, loop.time() + _DRAIN_GRACE_S))

    now = clock()
    rearm(now)
    read_index = 0
    # Undecoded bodies (we ask for identity) skip httpx's decoder layer; a server that
    # compresses anyway still gets decoded, chunk by chunk as it arrives.
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    reads = response.aiter_bytes() if encoded else response.aiter_raw()
    items = 0
    try:
        async for chunk in reads:
            # When these bytes came off the socket, before any decoding or parsing: every
            # event they complete carries it (docs/metrics.md §1).
            now = clock()
            check_bytes(response.num_bytes_downloaded, limits)
            if meas.t_terminal is not None:
                # Past the terminal marker: read the rest of the body (normally just the
                # closing chunk) so the connection goes back to the pool instead of closing.
                continue
            read_index += 1
            for item in framer.feed(chunk, read_index):
                items += 1
                check_events(items, limits)
                handle(item, now)
                if meas.t_terminal is not None:
                    break
        if meas.t_terminal is None:
            for item in framer.close(read_index):
                handle(item, now)
    except FramingError as exc:
        raise _ProbeFailed(ErrorKind.BAD_FORMAT, str(exc)) from None
    except StreamLimitExceeded as exc:
        if meas.t_terminal is None:
            raise _ProbeFailed(ErrorKind.TOO_LARGE, str(exc)) from None
        # The answer was complete; only what followed its terminal marker overflowed.
    if not meas.saw_terminal:
        raise _ProbeFailed(ErrorKind.TRUNCATED, "stream ended without its terminal marker")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _finish(
    record: ProbeRecord,
    target: ResolvedTarget,
    meas: StreamMeasurement,
    phases: ConnectionPhases,
    outcome: _Outcome,
    t_end: float,
    started: datetime,
    secrets: tuple[str, ...],
) -> ProbeRecord:
    derived = meas.derive(t_end)
    record.http_status = outcome.http_status
    if phases.new_connection:
        record.conn_reused = False
        record.dns_ms = _ms(phases.dns_s)
        record.connect_ms = _ms(phases.connect_s)
        record.tls_ms = _ms(phases.tls_s)
    elif outcome.http_status is not None:
        record.conn_reused = True
    record.response_model = meas.response_model
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
    record.cold_load = derived.cold_load
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
    record.server_load_ms = timings.get("load")
    record.server_prefill_ms = timings.get("prefill")
    record.server_decode_ms = timings.get("decode")
    record.server_total_ms = timings.get("total")
    record.server_ttft_ms = timings.get("ttft")
    record.server_predict_ms = timings.get("predict")
    # Absolute reset times count from the provider's clock (its Date header), not ours.
    limits = parse_ratelimit(outcome.headers, response_date(outcome.headers) or started)
    record.ratelimit_remaining_requests = limits.remaining_requests
    record.ratelimit_remaining_tokens = limits.remaining_tokens
    record.ratelimit_reset_requests_s = limits.reset_requests_s
    record.ratelimit_reset_tokens_s = limits.reset_tokens_s
    flagged = tuple(meas.out_of_range) + tuple(f"ratelimit_{n}" for n in limits.out_of_range)
    record.retry_after_s = outcome.retry_after_s

    # A billed failure that still reported usage is priced (docs/metrics.md §5); a charge
    # the provider reports is the cost, the price table's estimate kept beside it.
    cost = compute_cost(usage, target.config, target.prices_id, started, meas.provider_cost_usd)
    record.cost_usd, record.cost_source = cost.cost_usd, cost.cost_source
    record.cost_estimate_usd = cost.estimate_usd
    record.cost_mismatch = cost.mismatch

    if outcome.kind is None:
        record.status = "ok"
        record.decode_tps = derived.decode_tps
        record.e2e_output_tps = derived.e2e_output_tps
        record.itl_ms = derived.itl_ms
    else:
        # Failures keep TTFT and tokens for diagnosis but are never rate samples.
        record.status = "error"
        record.error_kind = outcome.kind.value
        record.error_message = redact(outcome.message or outcome.kind.value, secrets)
    return sanitize_record(record, secrets, flagged)


def record_to_json(record: ProbeRecord) -> str:
    """Serialise a record as one JSON line (schema order, nulls kept; never ``NaN``/``Infinity``:
    raises ValueError for a record that did not pass ``sanitize_record``)."""
    return json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)

"""What a wire dialect provides: the request it sends and a parser for what comes back.

A dialect module turns one provider API's stream into :class:`ParsedEvent` values and nothing
else; timing, token accounting, classification and the record are shared (``probes.measure``,
``probes.runner``), so every dialect is measured the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from probes.config import ResolvedTarget
from probes.errors import ErrorKind

if TYPE_CHECKING:  # the price and config paths import this module without loading httpx
    import httpx


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage normalised to docs/metrics.md §4. ``None`` means "not reported", never 0.

    Attributes:
        input_tokens: whole prompt processed, cache reads and writes included.
        cache_read_tokens: part of the input read from the prompt cache.
        cache_write_tokens: part of the input written to the prompt cache.
        output_tokens: generated tokens, reasoning included.
        reasoning_tokens: part of the output spent on reasoning.
    """

    input_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An error object the provider sent (in a body or inside a stream).

    Attributes:
        message: the provider's message (redacted later by the runner).
        type: the provider's machine-readable type (``rate_limit_error``, ...), if any.
        code: the provider's code (string or HTTP-like number), if any.
        retry_after_s: a retry delay the provider put in the body (Gemini
            ``google.rpc.RetryInfo.retryDelay``), seconds; the runner prefers the
            ``Retry-After`` header when both are present.
    """

    message: str
    type: str | None = None
    code: str | int | None = None
    retry_after_s: float | None = None

    def label(self) -> str:
        """``type=… code=…`` (what the provider said it was), or "" when it sent neither."""
        parts = []
        if self.type:
            parts.append(f"type={self.type}")
        if self.code is not None and str(self.code) != self.type:
            parts.append(f"code={self.code}")
        return " ".join(parts)


@dataclass(slots=True)
class ParsedEvent:
    """What one wire event said, in the dialect-neutral terms of docs/metrics.md §2.

    Attributes:
        answer: visible answer text carried by this event ("" if none).
        reasoning: reasoning/thinking text carried by this event.
        tool_call: True when the event carries a tool-call fragment.
        usage: usage reported by this event; it *replaces* earlier usage (cumulative APIs).
        finish_reason: the provider's stop reason, when this event carries one.
        error: an error object inside the stream.
        terminal: True when this is the API's terminal marker (``[DONE]``, ``message_stop``,
            ``response.completed``, ``done: true``, ...): the runner stops reading.
        final: True when this event ends the answer but the API has no terminal marker of its
            own (Gemini: the chunk carrying ``finishReason``, then EOF; Bedrock
            ``messageStop``, then ``metadata``): the stream counts as complete when the body
            then ends cleanly, and the runner keeps reading so later usage or an appended error
            is still seen.
        request_id: provider request id carried in the body.
        upstream_provider: upstream that served a routed request.
        provider_cost_usd: the provider's own charge for the request.
        server_timings_ms: provider-reported timings in ms, keys ``queue``, ``load``,
            ``prefill``, ``decode``, ``total`` (None when the event has none: most events; see
            :meth:`timing`).
        response_model: the model that actually answered, as the stream names it (OpenAI
            ``model``, Responses ``response.model``, Anthropic ``message.model``, Gemini
            ``modelVersion``, Ollama ``model``); routers and aliases differ from the request.
        stop_kind: an outcome the provider's documented stop reason decides, reported once the
            stream completes (usage after it is still read): ``content_filter`` (a policy
            filter stopped the answer), ``safety_block`` (the prompt was blocked),
            ``model_loading`` (the server answered that it is loading the model).
        opaque_reasoning: the event carries reasoning the provider does not show (an Anthropic
            ``redacted_thinking`` block): a token event without text.
    """

    answer: str = ""
    reasoning: str = ""
    tool_call: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None
    error: ProviderError | None = None
    terminal: bool = False
    final: bool = False
    request_id: str | None = None
    upstream_provider: str | None = None
    provider_cost_usd: float | None = None
    server_timings_ms: dict[str, float] | None = None
    response_model: str | None = None
    stop_kind: ErrorKind | None = None
    opaque_reasoning: bool = False

    def timing(self, key: str, ms: float) -> None:
        """Record a provider-reported timing (creates the dict only for events that have one)."""
        if self.server_timings_ms is None:
            self.server_timings_ms = {}
        self.server_timings_ms[key] = ms

    @property
    def has_token(self) -> bool:
        """True when the event carries a generated token of any channel (docs/metrics.md §2)."""
        return bool(self.answer or self.reasoning or self.tool_call or self.opaque_reasoning)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The HTTP request a probe sends. ``headers`` may hold the key; never log them."""

    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any]


class StreamParser(Protocol):
    """Parses one response stream; may keep state across events (e.g. inline ``<think>``)."""

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one event's data; return None for events that carry nothing (heartbeats).

        ``event`` is the SSE ``event:`` name (``message`` when none was sent), ``""`` for an
        NDJSON line or for raw JSON text found outside any SSE field (a non-SSE error body
        appended to the stream, see ``probes.sse``), and the ``:event-type`` header of an AWS
        event-stream frame (``exception:<type>`` / ``error:<code>`` for failure frames).

        Raises:
            ValueError: when the data is not what the API sends (bad JSON, wrong shape); the
                runner classifies it as ``bad_format``.
        """
        ...


Framing = Literal["sse", "ndjson", "eventstream"]
"""How a response body is framed: Server-Sent Events, newline-delimited JSON, or AWS binary
event-stream frames (``application/vnd.amazon.eventstream``); see ``probes.sse``."""


class Dialect(Protocol):
    """A provider API's wire format."""

    name: str
    """Key in ``probes.dialects.DIALECTS``."""
    framing: Framing
    """How the response body is framed."""

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary request for ``target``; ``api_key`` is None for keyless servers."""
        ...

    def new_parser(self) -> StreamParser:
        """Return a fresh parser for one response stream."""
        ...

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Extract the error object from a non-2xx response body, if it has one."""
        ...


@runtime_checkable
class MultiRequestDialect(Protocol):
    """A dialect whose probe is more than one HTTP request (Replicate: create a prediction,
    read its event stream, read the finished prediction).

    It has everything a :class:`Dialect` has plus :meth:`open_stream`; the runner then calls
    ``open_stream`` instead of sending ``build_request``'s request itself, and reads the
    yielded response exactly like any other stream (status, content type, events), so timing,
    classification and the record stay shared. The clock starts before ``open_stream``.
    """

    def open_stream(
        self,
        client: httpx.AsyncClient,
        request: HttpRequest,
        *,
        extensions: dict[str, Any],
        report: Callable[[ParsedEvent], None],
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """Send the requests that lead to the stream; yield the response to read.

        Args:
            client: the probe's client (pooled connections, no read timeout).
            request: what :meth:`Dialect.build_request` built (the first request).
            extensions: httpx request extensions to pass on every request (connection trace).
            report: takes non-token facts learned outside the stream (usage, server timings,
                request id) as a :class:`ParsedEvent`; later reports replace earlier usage.

        The yielded response may be an error response (any status, already read): the runner
        classifies it. Work after the stream (reading a result) runs on normal exit only,
        inside the probe's deadline, after ``total_ms`` has ended.
        """
        ...


def load_json(data: str, what: str = "event data") -> Any:
    """Decode one event's JSON payload.

    Args:
        data: the event's data (SSE ``data:`` lines joined, an NDJSON line, a frame payload).
        what: how to name it in the error message.

    Returns:
        The decoded value, or None when ``data`` is empty or blank (heartbeats and the empty
        events SSE decoders dispatch after an ``id:``; docs/field-cases.md FC-05),
        which carry nothing.

    Raises:
        ValueError: when the data is not JSON; the message quotes its first 80 characters.
    """
    data = data.strip()
    if not data:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {data[:80]!r}") from exc


def load_json_object(data: str, what: str = "event data") -> dict[str, Any] | None:
    """Like :func:`load_json`, for APIs whose every event is a JSON object.

    Raises:
        ValueError: when the data is not JSON or not an object.
    """
    obj = load_json(data, what)
    if obj is not None and not isinstance(obj, dict):
        raise ValueError(f"{what} is not a JSON object: {data.strip()[:80]!r}")
    return obj


def json_or_none(body: str) -> Any:
    """Decode a (possibly non-JSON) error body; None when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None

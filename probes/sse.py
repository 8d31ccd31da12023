"""Server-Sent Events read from an httpx response, one decoded event at a time, with read counts.

We use httpx-sse's own line and event decoders (``SSELineDecoder``, ``SSEDecoder``; private
module of the pinned 0.4.x series, guarded by tests/test_sse.py) instead of
``EventSource.aiter_sse()`` for three reasons a monitor cannot give up:

* ``aiter_sse`` swallows comment lines, so SSE keep-alives (``: OPENROUTER PROCESSING``,
  DeepSeek's ``: keep-alive``) are invisible; we report them so a queued request can be told
  from a dead one.
* it drops a final event that is not followed by a blank line; several real servers end that
  way, so we dispatch it at EOF.
* it hides transport reads; we number them so a stream released in one block (a buffering
  proxy, Azure's filtered mode) can be flagged ``buffered`` instead of reporting absurd TPS.

Older llama.cpp builds send a non-standard ``error: {...}`` field, which spec-compliant decoders
ignore; we surface it as an event named ``error``. Likewise Gemini can append a raw, multi-line
JSON error body after its SSE events (docs/field-cases.md T28, vercel/ai#5217), which a
spec-compliant decoder drops as unknown fields; lines that are not SSE fields and look like
JSON are handed over as one ``raw`` item.

AWS event-stream frames (Bedrock ConverseStream) are decoded with botocore's
``EventStreamBuffer``, which checks both CRCs; nothing here parses that format by hand.

Every decoder here is linear in the bytes it is given, and :func:`aiter_framed` enforces a
probe's caps (:class:`StreamLimits`): past ``max_bytes`` on the wire or ``max_events`` items
(keep-alives included) it raises :class:`StreamLimitExceeded` and reads nothing more, so the
runner closes the connection instead of draining a runaway stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from botocore.eventstream import EventStreamBuffer, ParserError
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

_SSE_FIELDS = frozenset({"data", "event", "id", "retry"})

#: Content types each framing accepts for a 200 response (substring match, lower case).
FRAMING_CONTENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "sse": ("text/event-stream",),
    "ndjson": ("ndjson", "json"),
    "eventstream": ("application/vnd.amazon.eventstream",),
}


class FramingError(ValueError):
    """The body is not valid in its framing (e.g. an event-stream frame with a bad CRC)."""


class StreamLimitExceeded(Exception):
    """The body passed one of the probe's :class:`StreamLimits`; ``str()`` says which."""


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Caps on one response body.

    Attributes:
        max_bytes: bytes received on the wire (``Response.num_bytes_downloaded``), or None.
        max_events: items decoded (events, keep-alive comments, raw JSON), or None.
    """

    max_bytes: int | None = None
    max_events: int | None = None


def accepts_content_type(framing: str, content_type: str) -> bool:
    """True when ``content_type`` (any case) is one a ``framing`` stream is sent with."""
    lowered = content_type.lower()
    return any(ct in lowered for ct in FRAMING_CONTENT_TYPES.get(framing, ()))


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One item of a stream, as the parser hands it over.

    Attributes:
        kind: ``event`` (a dispatched SSE event, NDJSON line or event-stream frame),
            ``comment`` (keep-alive) or ``raw`` (JSON text outside any SSE field).
        event: the SSE ``event:`` name (httpx-sse reports ``message`` when the server sent
            none), the frame's ``:event-type`` for event-stream frames, ``""`` otherwise.
        data: the event's data (multi-line ``data:`` fields joined with ``\\n``).
        read_index: 1-based number of the transport read that completed this item.
    """

    kind: Literal["event", "comment", "raw"]
    event: str
    data: str
    read_index: int


async def aiter_sse(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Decode SSE from text chunks (one per transport read) into :class:`WireEvent` items.

    Args:
        chunks: decoded text as it arrives, e.g. ``response.aiter_text()``.

    Yields:
        Events in order; comments as ``kind="comment"``; a trailing event without its blank
        line at EOF is still dispatched. Lines that are not SSE fields (no ``data``, ``event``,
        ``id`` or ``retry`` name) are ignored as the SSE spec says, except a run of such lines
        starting with ``{`` or ``[``: it is yielded as one ``kind="raw"`` item when a blank
        line or EOF ends it.
    """
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    read_index = 0
    pending = False  # a field line was seen since the last dispatch
    raw: list[str] = []  # non-SSE lines of a raw JSON body

    def flush_raw() -> WireEvent | None:
        text = "\n".join(raw).strip()
        raw.clear()
        if text.startswith(("{", "[")):
            return WireEvent("raw", "", text, read_index)
        return None

    def feed(line: str) -> list[WireEvent]:
        nonlocal pending
        if line.startswith(":"):
            return [WireEvent("comment", "", line[1:].strip(), read_index)]
        if line.startswith("error:"):
            # Non-standard llama.cpp field: keep it as an error event rather than lose it.
            return [WireEvent("event", "error", line[6:].strip(), read_index)]
        if (
            line
            and line.partition(":")[0] not in _SSE_FIELDS
            and (raw or line.lstrip().startswith(("{", "[")))
        ):
            raw.append(line)
            return []
        out: list[WireEvent] = []
        if raw:
            item = flush_raw()
            if item is not None:
                out.append(item)
        sse = decoder.decode(line)
        if sse is None:
            pending = pending or bool(line)
            return out
        pending = False
        out.append(WireEvent("event", sse.event, sse.data, read_index))
        return out

    async for text in chunks:
        read_index += 1
        for line in lines.decode(text):
            for item in feed(line):
                yield item
    for line in lines.flush():
        for item in feed(line):
            yield item
    if pending or raw:
        for item in feed(""):
            yield item


async def aiter_ndjson(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Split newline-delimited JSON text chunks into one :class:`WireEvent` per non-empty line.

    A line arriving in many reads is kept as a list of pieces and joined once, so a long line
    costs time linear in its length (re-scanning a growing buffer on every read would not).
    """
    pending: list[str] = []  # pieces of the line not yet ended by a newline
    read_index = 0
    async for text in chunks:
        read_index += 1
        if "\n" not in text:
            pending.append(text)
            continue
        first, *complete, rest = text.split("\n")
        pending.append(first)
        for line in ("".join(pending), *complete):
            if line.strip():
                yield WireEvent("event", "", line.strip(), read_index)
        pending = [rest] if rest else []
    last = "".join(pending)
    if last.strip():
        yield WireEvent("event", "", last.strip(), read_index)


def _frame_to_wire(headers: Mapping[str, Any], payload: bytes, read_index: int) -> WireEvent:
    message_type = str(headers.get(":message-type", "event"))
    data = payload.decode("utf-8", errors="replace")
    if message_type == "exception":
        name = f"exception:{headers.get(':exception-type', 'unknown')}"
    elif message_type == "error":
        name = f"error:{headers.get(':error-code', 'unknown')}"
        data = str(headers.get(":error-message", data))
    else:
        name = str(headers.get(":event-type", ""))
    return WireEvent("event", name, data, read_index)


async def aiter_eventstream(chunks: AsyncIterator[bytes]) -> AsyncIterator[WireEvent]:
    """Decode AWS event-stream frames (``application/vnd.amazon.eventstream``).

    Source: AWS "Event stream encoding" (``[total_len][headers_len][prelude CRC][headers]
    [payload][message CRC]``), as used by Bedrock ConverseStream; decoding and CRC checks are
    botocore's ``EventStreamBuffer``. A frame is complete when ``total_len`` bytes have arrived.

    Args:
        chunks: raw bytes as they arrive, e.g. ``response.aiter_bytes()``.

    Yields:
        One ``kind="event"`` item per frame: ``event`` is the ``:event-type`` header
        (``exception:<:exception-type>`` for exception frames, ``error:<:error-code>`` for
        error frames, whose data is ``:error-message``), ``data`` the UTF-8 payload.

    Raises:
        FramingError: on a frame with a bad CRC or length, or bytes left over at EOF.
    """
    buffer = EventStreamBuffer()
    read_index = 0
    leftover = 0
    async for data in chunks:
        read_index += 1
        buffer.add_data(data)
        leftover += len(data)
        try:
            for message in buffer:
                leftover -= message.prelude.total_length
                yield _frame_to_wire(message.headers, message.payload, read_index)
        except ParserError as exc:
            raise FramingError(f"bad event-stream frame: {exc}") from None
    if leftover > 0:
        raise FramingError(f"event stream ended inside a frame ({leftover} bytes left over)")


async def _capped_text(response: httpx.Response, limits: StreamLimits) -> AsyncIterator[str]:
    async for text in response.aiter_text():
        _check_bytes(response, limits)
        yield text


async def _capped_bytes(response: httpx.Response, limits: StreamLimits) -> AsyncIterator[bytes]:
    async for data in response.aiter_bytes():
        _check_bytes(response, limits)
        yield data


def _check_bytes(response: httpx.Response, limits: StreamLimits) -> None:
    if limits.max_bytes is not None and response.num_bytes_downloaded > limits.max_bytes:
        raise StreamLimitExceeded(
            f"response body passed max_response_bytes={limits.max_bytes:,} "
            "(stopped reading, connection closed)"
        )


async def _capped_events(
    items: AsyncIterator[WireEvent], limits: StreamLimits
) -> AsyncIterator[WireEvent]:
    count = 0
    async for item in items:
        count += 1
        if limits.max_events is not None and count > limits.max_events:
            raise StreamLimitExceeded(
                f"stream passed max_stream_events={limits.max_events:,} "
                "(stopped reading, connection closed)"
            )
        yield item


def aiter_framed(
    framing: str, response: httpx.Response, limits: StreamLimits | None = None
) -> AsyncIterator[WireEvent]:
    """Decode ``response``'s body with the decoder for ``framing`` (see ``Framing``).

    SSE and NDJSON read ``response.aiter_text()`` (UTF-8 split across reads is handled by
    httpx's incremental decoder); event streams read ``response.aiter_bytes()``.

    Args:
        framing: ``sse``, ``ndjson`` or ``eventstream``.
        response: a streaming response whose body has not been read.
        limits: caps on the body; the iterator raises :class:`StreamLimitExceeded` as soon as
            the bytes received or the items decoded pass one (checked after every read and
            every item).

    Raises:
        ValueError: for an unknown framing name.
    """
    limits = limits or StreamLimits()
    if framing == "sse":
        items = aiter_sse(_capped_text(response, limits))
    elif framing == "ndjson":
        items = aiter_ndjson(_capped_text(response, limits))
    elif framing == "eventstream":
        items = aiter_eventstream(_capped_bytes(response, limits))
    else:
        raise ValueError(f"unknown framing {framing!r}")
    return _capped_events(items, limits)

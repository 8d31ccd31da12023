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

import codecs
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

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


class WireEvent(NamedTuple):
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


class SSEFramer:
    """Incremental SSE decoder: bytes (or text) of one transport read in, finished items out.

    Lines and events are httpx-sse's decoders (``SSELineDecoder``, ``SSEDecoder``). Items come
    out in order: events, comments as ``kind="comment"``, and lines that are not SSE fields
    (no ``data``, ``event``, ``id`` or ``retry`` name) ignored as the SSE spec says, except a
    run of such lines starting with ``{`` or ``[``: one ``kind="raw"`` item when a blank line or
    the end of the body ends it. :meth:`close` dispatches a trailing event that had no blank
    line.
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = SSELineDecoder()
        self._decoder = SSEDecoder()
        self._pending = False  # a field line was seen since the last dispatch
        self._raw: list[str] = []  # non-SSE lines of a raw JSON body

    def feed(self, chunk: bytes | str, read_index: int) -> list[WireEvent]:
        """Decode one transport read; return the items it completed."""
        text = chunk if isinstance(chunk, str) else self._text.decode(chunk)
        if not text:
            return []
        out: list[WireEvent] = []
        for line in self._lines.decode(text):
            self._line(line, read_index, out)
        return out

    def close(self, read_index: int) -> list[WireEvent]:
        """End of body: flush a partial line and dispatch a trailing event or raw body."""
        out: list[WireEvent] = []
        tail = self._text.decode(b"", final=True)
        lines = self._lines.decode(tail) if tail else []
        for line in [*lines, *self._lines.flush()]:
            self._line(line, read_index, out)
        if self._pending or self._raw:
            self._line("", read_index, out)
        return out

    def _line(self, line: str, read_index: int, out: list[WireEvent]) -> None:
        if line and not line.startswith("data:"):  # data lines and blank lines go straight on
            if line[0] == ":":
                out.append(WireEvent("comment", "", line[1:].strip(), read_index))
                return
            if line.startswith("error:"):
                # Non-standard llama.cpp field: keep it as an error event rather than lose it.
                out.append(WireEvent("event", "error", line[6:].strip(), read_index))
                return
            if (self._raw or line.lstrip().startswith(("{", "["))) and line.partition(":")[
                0
            ] not in _SSE_FIELDS:
                self._raw.append(line)
                return
        if self._raw:
            text = "\n".join(self._raw).strip()
            self._raw.clear()
            if text.startswith(("{", "[")):
                out.append(WireEvent("raw", "", text, read_index))
        sse = self._decoder.decode(line)
        if sse is None:
            self._pending = self._pending or bool(line)
            return
        self._pending = False
        out.append(WireEvent("event", sse.event, sse.data, read_index))


class NDJSONFramer:
    """Incremental newline-delimited JSON: one ``kind="event"`` item per non-empty line."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Pieces of the line not yet ended by a newline, joined once: a line arriving in many
        # reads costs time linear in its length.
        self._pending: list[str] = []

    def feed(self, chunk: bytes | str, read_index: int) -> list[WireEvent]:
        """Decode one transport read; return the lines it completed."""
        text = chunk if isinstance(chunk, str) else self._text.decode(chunk)
        if "\n" not in text:
            if text:
                self._pending.append(text)
            return []
        first, *complete, rest = text.split("\n")
        self._pending.append(first)
        out = [
            WireEvent("event", "", line.strip(), read_index)
            for line in ("".join(self._pending), *complete)
            if line.strip()
        ]
        self._pending = [rest] if rest else []
        return out

    def close(self, read_index: int) -> list[WireEvent]:
        """End of body: a last line without its newline is still an item."""
        self._pending.append(self._text.decode(b"", final=True))
        rest = "".join(self._pending).strip()
        self._pending = []
        return [WireEvent("event", "", rest, read_index)] if rest else []


class EventStreamFramer:
    """Incremental AWS event-stream decoder (``application/vnd.amazon.eventstream``).

    Source: AWS "Event stream encoding" (``[total_len][headers_len][prelude CRC][headers]
    [payload][message CRC]``), as used by Bedrock ConverseStream; decoding and CRC checks are
    botocore's ``EventStreamBuffer``. A frame is complete when ``total_len`` bytes have arrived.
    Each frame is one ``kind="event"`` item: ``event`` is the ``:event-type`` header
    (``exception:<:exception-type>`` for exception frames, ``error:<:error-code>`` for error
    frames, whose data is ``:error-message``), ``data`` the UTF-8 payload.
    """

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._leftover = 0

    def feed(self, chunk: bytes | str, read_index: int) -> list[WireEvent]:
        """Decode one transport read; return the frames it completed.

        Raises:
            FramingError: on a frame with a bad CRC or length.
        """
        data = chunk.encode() if isinstance(chunk, str) else chunk
        self._buffer.add_data(data)
        self._leftover += len(data)
        out: list[WireEvent] = []
        try:
            for message in self._buffer:
                self._leftover -= message.prelude.total_length
                out.append(_frame_to_wire(message.headers, message.payload, read_index))
        except ParserError as exc:
            raise FramingError(f"bad event-stream frame: {exc}") from None
        return out

    def close(self, read_index: int) -> list[WireEvent]:
        """End of body.

        Raises:
            FramingError: when bytes of an unfinished frame are left over.
        """
        if self._leftover > 0:
            raise FramingError(
                f"event stream ended inside a frame ({self._leftover} bytes left over)"
            )
        return []


Framer = SSEFramer | NDJSONFramer | EventStreamFramer


def new_framer(framing: str) -> Framer:
    """A fresh incremental decoder for ``framing`` (``sse``, ``ndjson``, ``eventstream``).

    Raises:
        ValueError: for an unknown framing name.
    """
    if framing == "sse":
        return SSEFramer()
    if framing == "ndjson":
        return NDJSONFramer()
    if framing == "eventstream":
        return EventStreamFramer()
    raise ValueError(f"unknown framing {framing!r}")


async def _aiter_framer(
    framer: Framer, chunks: AsyncIterator[bytes] | AsyncIterator[str]
) -> AsyncIterator[WireEvent]:
    read_index = 0
    async for chunk in chunks:
        read_index += 1
        for item in framer.feed(chunk, read_index):
            yield item
    for item in framer.close(read_index):
        yield item


def aiter_sse(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Decode SSE from text chunks (one per transport read); see :class:`SSEFramer`."""
    return _aiter_framer(SSEFramer(), chunks)


def aiter_ndjson(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Split newline-delimited JSON text chunks; see :class:`NDJSONFramer`."""
    return _aiter_framer(NDJSONFramer(), chunks)


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


def aiter_eventstream(chunks: AsyncIterator[bytes]) -> AsyncIterator[WireEvent]:
    """Decode AWS event-stream frames from raw byte chunks; see :class:`EventStreamFramer`.

    Raises:
        FramingError: on a frame with a bad CRC or length, or bytes left over at EOF.
    """
    return _aiter_framer(EventStreamFramer(), chunks)


async def _capped_bytes(response: httpx.Response, limits: StreamLimits) -> AsyncIterator[bytes]:
    async for data in response.aiter_bytes():
        check_bytes(response.num_bytes_downloaded, limits)
        yield data


def check_bytes(received: int, limits: StreamLimits) -> None:
    """Raise :class:`StreamLimitExceeded` once ``received`` bytes pass ``limits.max_bytes``."""
    if limits.max_bytes is not None and received > limits.max_bytes:
        raise StreamLimitExceeded(
            f"response body passed max_response_bytes={limits.max_bytes:,} "
            "(stopped reading, connection closed)"
        )


def check_events(count: int, limits: StreamLimits) -> None:
    """Raise :class:`StreamLimitExceeded` once ``count`` items pass ``limits.max_events``."""
    if limits.max_events is not None and count > limits.max_events:
        raise StreamLimitExceeded(
            f"stream passed max_stream_events={limits.max_events:,} "
            "(stopped reading, connection closed)"
        )


async def _capped_events(
    items: AsyncIterator[WireEvent], limits: StreamLimits
) -> AsyncIterator[WireEvent]:
    count = 0
    async for item in items:
        count += 1
        check_events(count, limits)
        yield item


def aiter_framed(
    framing: str, response: httpx.Response, limits: StreamLimits | None = None
) -> AsyncIterator[WireEvent]:
    """Decode ``response``'s body with the decoder for ``framing`` (see ``Framing``).

    Args:
        framing: ``sse``, ``ndjson`` or ``eventstream``.
        response: a streaming response whose body has not been read.
        limits: caps on the body; the iterator raises :class:`StreamLimitExceeded` as soon as
            the bytes received or the items decoded pass one (checked after every read and
            every item).

    Raises:
        ValueError: for an unknown framing name.
    """
    return _capped_events(
        _aiter_framer(new_framer(framing), _capped_bytes(response, limits or StreamLimits())),
        limits or StreamLimits(),
    )

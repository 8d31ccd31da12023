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
ignore; we surface it as an event named ``error``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from httpx_sse._decoders import SSEDecoder, SSELineDecoder


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One item of a stream, as the parser hands it over.

    Attributes:
        kind: ``event`` (a dispatched SSE event or NDJSON line) or ``comment`` (keep-alive).
        event: the SSE ``event:`` name, ``""`` when the server sent none.
        data: the event's data (multi-line ``data:`` fields joined with ``\\n``).
        read_index: 1-based number of the transport read that completed this item.
    """

    kind: Literal["event", "comment"]
    event: str
    data: str
    read_index: int


async def aiter_sse(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Decode SSE from text chunks (one per transport read) into :class:`WireEvent` items.

    Args:
        chunks: decoded text as it arrives, e.g. ``response.aiter_text()``.

    Yields:
        Events in order; comments as ``kind="comment"``; a trailing event without its blank
        line at EOF is still dispatched.
    """
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    read_index = 0
    pending = False  # a field line was seen since the last dispatch

    def feed(line: str) -> WireEvent | None:
        nonlocal pending
        if line.startswith(":"):
            return WireEvent("comment", "", line[1:].strip(), read_index)
        if line.startswith("error:"):
            # Non-standard llama.cpp field: keep it as an error event rather than lose it.
            return WireEvent("event", "error", line[6:].strip(), read_index)
        sse = decoder.decode(line)
        if sse is None:
            pending = pending or bool(line)
            return None
        pending = False
        return WireEvent("event", sse.event, sse.data, read_index)

    async for text in chunks:
        read_index += 1
        for line in lines.decode(text):
            item = feed(line)
            if item is not None:
                yield item
    for line in lines.flush():
        item = feed(line)
        if item is not None:
            yield item
    if pending:
        item = feed("")
        if item is not None:
            yield item


async def aiter_ndjson(chunks: AsyncIterator[str]) -> AsyncIterator[WireEvent]:
    """Split newline-delimited JSON text chunks into one :class:`WireEvent` per non-empty line."""
    buffer = ""
    read_index = 0
    async for text in chunks:
        read_index += 1
        buffer += text
        *complete, buffer = buffer.split("\n")
        for line in complete:
            if line.strip():
                yield WireEvent("event", "", line.strip(), read_index)
    if buffer.strip():
        yield WireEvent("event", "", buffer.strip(), read_index)

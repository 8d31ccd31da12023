"""Framing added for the native dialects (probes/sse.py): raw JSON tails in SSE bodies, AWS
event-stream frames split at every byte, and a gzip-encoded stream on a real connection."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import pytest

from probes.sse import FramingError, WireEvent, accepts_content_type, aiter_eventstream, aiter_sse
from tests.eventstream import event, exception, frame
from tests.probing import near, probe
from tests.servers import ReplayServer, Script


async def chunks_of(parts: list[bytes] | list[str]) -> AsyncIterator:  # type: ignore[type-arg]
    for part in parts:
        yield part


async def collect(source: AsyncIterator[WireEvent]) -> list[WireEvent]:
    return [item async for item in source]


async def test_raw_json_body_after_events_is_one_raw_item() -> None:
    body = 'data: {"a":1}\r\n\r\n{\n  "error": {\n    "code": 503\n  }\n}\n'
    items = await collect(aiter_sse(chunks_of([body[:20], body[20:]])))
    assert [(i.kind, i.data) for i in items] == [
        ("event", '{"a":1}'),
        ("raw", '{\n  "error": {\n    "code": 503\n  }\n}'),
    ]


async def test_unknown_non_json_fields_are_still_ignored() -> None:
    # SSE spec: unknown field names are ignored and do not swallow the event's data lines.
    body = "foo: bar\ndata: x\n\nweird line\ndata: y\n\n"
    items = await collect(aiter_sse(chunks_of([body])))
    assert [(i.kind, i.data) for i in items] == [("event", "x"), ("event", "y")]


async def test_event_stream_frames_split_at_every_byte() -> None:
    blob = event("messageStart", {"role": "assistant"}) + exception("throttlingException", "slow")
    for cut in range(1, len(blob)):
        items = await collect(aiter_eventstream(chunks_of([blob[:cut], blob[cut:]])))
        assert [i.event for i in items] == ["messageStart", "exception:throttlingException"]
        assert items[1].data == '{"message": "slow"}'
    error_frame = frame(
        {":message-type": "error", ":error-code": "Boom", ":error-message": "m"}, b""
    )
    items = await collect(aiter_eventstream(chunks_of([error_frame])))
    assert (items[0].event, items[0].data) == ("error:Boom", "m")


async def test_event_stream_read_index_is_the_completing_read() -> None:
    first = event("messageStart", {"role": "assistant"})
    items = await collect(aiter_eventstream(chunks_of([first[:5], first[5:], b""])))
    assert items[0].read_index == 2


async def test_event_stream_ending_inside_a_frame_raises() -> None:
    blob = event("messageStart", {"role": "assistant"})
    with pytest.raises(FramingError, match="inside a frame"):
        await collect(aiter_eventstream(chunks_of([blob[:-3]])))


def test_content_types_per_framing() -> None:
    assert accepts_content_type("sse", "text/event-stream; charset=utf-8")
    assert accepts_content_type("ndjson", "application/x-ndjson")
    assert accepts_content_type("eventstream", "application/vnd.amazon.eventstream")
    assert not accepts_content_type("eventstream", "application/json")
    assert not accepts_content_type("sse", "application/x-ndjson")


async def test_gzip_encoded_stream_is_decoded_event_by_event(replay: ReplayServer) -> None:
    # A server that compresses anyway (we ask for identity): flushed gzip blocks still decode
    # as they arrive, so TTFT is the first event's read, not the end of the body.
    gz = zlib.compressobj(wbits=31)
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    reads = [
        (0.20, gz.compress(events[0]) + gz.flush(zlib.Z_SYNC_FLUSH)),
        (0.40, gz.compress(events[1]) + gz.flush(zlib.Z_SYNC_FLUSH)),
        (0.41, gz.compress(events[2]) + gz.flush()),
    ]
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    r = await probe(replay, "gzip-sse", Script(reads=reads, headers=headers))
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 200) and r.token_events == 2 and not r.buffered

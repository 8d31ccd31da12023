"""Issue #10, "long streams freeze the prober": per-event work is O(1), per-probe O(events),
and every probe has caps on bytes and events that end it as ``too_large``.

The exact inputs of the issue run against the replay server on 127.0.0.1: a one-token-per-
write stream (20,000 writes) and a 50 MB stream. Work is checked structurally, never by a
clock: ``derive()`` is handed a sequence that counts every element it touches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, overload

import pytest

from probes import measure as measure_module
from probes.dialects.base import ParsedEvent, Usage
from probes.measure import StreamMeasurement
from probes.sse import WireEvent, aiter_ndjson
from tests.probing import probe
from tests.servers import ReplayServer, Script, sse

SSE = {"Content-Type": "text/event-stream"}
TOKEN = sse({"choices": [{"index": 0, "delta": {"content": "x"}}]})


class CountingStamps(Sequence[float]):
    """A read-only sequence that counts every element access (iteration included: the
    Sequence mixins iterate, count and index through ``__getitem__``)."""

    def __init__(self, values: list[float]) -> None:
        self._values = values
        self.touched = 0

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if isinstance(i, slice):
            picked = self._values[i]
            self.touched += len(picked)
            return picked
        value = self._values[i]  # IndexError ends iteration
        self.touched += 1
        return value

    def __len__(self) -> int:
        return len(self._values)


def feed(n: int, *, per_read: int = 1, step_s: float = 0.001) -> StreamMeasurement:
    """A measurement of ``n`` one-token events ``step_s`` apart, ``per_read`` per read."""
    meas = StreamMeasurement(t0=100.0)
    for i in range(n):
        meas.on_event(100.5 + i * step_s, 1 + i // per_read, ParsedEvent(answer="x"))
    meas.on_event(100.5 + n * step_s, 1 + n // per_read, ParsedEvent(usage=Usage(5, 0, 0, n)))
    return meas


def derive_counted(meas: StreamMeasurement, t_end: float) -> tuple[Any, int]:
    stamps = CountingStamps(list(meas.token_times))
    meas.token_times = stamps  # type: ignore[assignment]
    return meas.derive(t_end), stamps.touched


def test_derive_touches_each_stamp_once_for_one_token_per_read() -> None:
    n = 50_000
    meas = feed(n)
    # The only per-event state is one stamp per token (a per-read list made derive quadratic).
    sized = {
        name: len(value)
        for name in StreamMeasurement.__slots__
        if isinstance(value := getattr(meas, name), list | dict | set | tuple) and len(value) > 8
    }
    assert sized == {"token_times": n}
    derived, touched = derive_counted(meas, 100.5 + n * 0.001)
    # The old derive did token_reads.count(r) for every read: n * n = 2.5e9 steps.
    assert touched <= n + 1
    assert derived.buffered is False
    assert derived.itl_p50_ms == pytest.approx(1.0)
    # (n - 1) tokens over (n - 1) ms: 1000 tokens/s (the naive n / window gives 1000.02).
    assert derived.decode_tps == pytest.approx(1000.0, rel=1e-9)
    assert meas.most_tokens_one_read == 1


def test_buffered_is_found_from_the_running_count() -> None:
    n = 1000
    meas = feed(n, per_read=n)  # every token in one transport read
    derived, touched = derive_counted(meas, 101.6)
    assert touched <= n + 1
    assert meas.most_tokens_one_read == n
    assert derived.buffered is True and derived.decode_tps is None
    # 900 of 1000 in one read is buffered (90 %); 899 is not.
    for same, expected in ((900, True), (899, False)):
        m = StreamMeasurement(t0=0.0)
        for i in range(1000):
            m.on_event(1.0 + i * 0.01, 1 if i < same else 2 + i, ParsedEvent(answer="x"))
        assert m.derive(20.0).buffered is expected, same


@pytest.fixture
def counted_derive(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ``derive()`` the runner makes: (token events, stamps touched)."""
    calls: list[tuple[int, int]] = []
    original = measure_module.StreamMeasurement.derive

    def derive(self: StreamMeasurement, t_end: float) -> Any:
        stamps = CountingStamps(list(self.token_times))
        self.token_times = stamps  # type: ignore[assignment]
        try:
            return original(self, t_end)
        finally:
            calls.append((len(stamps), stamps.touched))

    monkeypatch.setattr(measure_module.StreamMeasurement, "derive", derive)
    return calls


async def server_done(replay: ReplayServer, case: str) -> None:
    """Wait until the server's handler for ``case`` returned (it runs in its own thread and
    learns of a closed connection at its next write)."""
    for _ in range(500):
        if case in replay.finished:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the server is still writing {case} after 10 s")


def one_token_per_write(n: int) -> Script:
    usage = sse({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}})
    reads = [(0.0, TOKEN)] * n + [(0.0, usage), (0.0, b"data: [DONE]\n\n")]
    return Script(reads=reads, headers=SSE, headers_at=0.0)


async def test_one_token_per_write_stream_is_measured_in_linear_work(
    replay: ReplayServer, counted_derive: list[tuple[int, int]]
) -> None:
    n = 20_000
    record = await probe(
        replay, "hostile-20k-writes", one_token_per_write(n), max_stream_events=50_000
    )
    assert record.status == "ok", record.error_message
    assert record.token_events == n and record.output_tokens == n
    assert counted_derive == [(n, counted_derive[0][1])]
    assert counted_derive[0][1] <= n + 1


async def test_one_token_per_write_stream_passes_the_default_event_cap(
    replay: ReplayServer,
) -> None:
    # Defaults: max_tokens 64, so the cap is max(10,000, 4 x 64) events.
    record = await probe(replay, "hostile-20k-capped", one_token_per_write(20_000))
    assert record.status == "error" and record.error_kind == "too_large"
    assert record.error_message is not None and "max_stream_events=10,000" in record.error_message
    assert record.token_events == 10_000  # everything up to the cap was measured, no more


BIG_TOKEN = sse({"choices": [{"index": 0, "delta": {"content": "x" * 65_000}}]})


@pytest.mark.parametrize(
    "shape, block",
    [
        ("events", BIG_TOKEN),  # 65 kB token events
        ("one-line", b"data: " + b"y" * 65_530),  # one 50 MB line that never ends
    ],
    ids=["events", "one-line"],
)
async def test_a_50_mb_stream_ends_at_the_byte_cap_and_the_connection_is_closed(
    replay: ReplayServer, shape: str, block: bytes
) -> None:
    total = 50 * 1024 * 1024
    case = f"hostile-50mb-{shape}"
    script = Script(reads=[(0.0, block)] * (total // len(block)), headers=SSE, headers_at=0.0)
    record = await probe(replay, case, script)
    assert record.status == "error" and record.error_kind == "too_large"
    assert record.error_message is not None
    assert "max_response_bytes=4,194,304" in record.error_message
    # Not drained: the server saw the connection close long before its 50 MB were out.
    # (Its kernel buffers may take a few MB more than the probe read.)
    await server_done(replay, case)
    assert case in replay.dropped
    assert replay.sent[case] < total // 2


async def test_configured_byte_cap_and_overflow_after_the_terminal_marker(
    replay: ReplayServer,
) -> None:
    # A complete answer followed by junk past the cap: the answer counts, nothing is drained.
    done = one_token_per_write(3).reads
    junk = [(0.0, b": " + b"p" * 65530 + b"\n\n")] * 512  # 32 MiB of comments
    script = Script(reads=[*done, *junk], headers=SSE, headers_at=0.0)
    record = await probe(replay, "hostile-after-done", script, max_response_bytes=65536)
    assert record.status == "ok", record.error_message
    assert record.token_events == 3
    await server_done(replay, "hostile-after-done")
    assert "hostile-after-done" in replay.dropped
    assert replay.sent["hostile-after-done"] < 16 * 1024 * 1024


async def test_ndjson_line_split_over_many_reads_is_one_event() -> None:
    line = json.dumps({"message": {"content": "y" * 100_000}, "done": False})
    pieces = [line[i : i + 7] for i in range(0, len(line), 7)]

    async def chunks() -> Any:
        for piece in [*pieces[:-1], pieces[-1] + "\n", '{"done":true}']:
            yield piece

    events: list[WireEvent] = [e async for e in aiter_ndjson(chunks())]
    assert [e.data for e in events] == [line, '{"done":true}']
    assert events[0].read_index == len(pieces)

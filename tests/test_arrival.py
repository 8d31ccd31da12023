"""Arrival stamps (probes/arrival.py): a token's time is when its bytes were there to read.

Real TCP connections on 127.0.0.1 through the probing transport's own backend; the loop is
made busy on purpose (a callback that sleeps) between the poll that finds the bytes and the
read, which is what a thousand targets do to each other. No timing tolerance: the assertions
compare stamps with marks taken by the busy callback itself.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from probes.arrival import new_stamping_loop
from probes.transport import PhasedBackend, StampedStream

BUSY_S = 0.03


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv
    srv.close()


def run_on(
    factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, None]
) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(10):  # a read that waits for bytes never sent fails, not hangs
            await coro

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(bounded())


async def connect(srv: socket.socket) -> tuple[StampedStream, socket.socket]:
    stream = await PhasedBackend().connect_tcp("127.0.0.1", srv.getsockname()[1])
    conn, _ = srv.accept()  # the kernel completed the handshake already
    assert isinstance(stream, StampedStream)
    return stream, conn


def read_behind_queued_work(
    factory: Callable[[], asyncio.AbstractEventLoop], srv: socket.socket
) -> dict[str, float]:
    """Send a token, queue work that runs after the next poll and before that poll's read
    callbacks, read the token; marks: busy_from/busy_to (the work), stamp, resumed (the
    reading task got the bytes)."""
    marks: dict[str, float] = {}

    def busy() -> None:
        marks["busy_from"] = time.perf_counter()
        time.sleep(BUSY_S)
        marks["busy_to"] = time.perf_counter()

    async def main() -> None:
        stream, conn = await connect(srv)
        conn.sendall(b"data: token\n\n")
        asyncio.get_running_loop().call_soon(busy)
        assert await stream.read(1024) == b"data: token\n\n"
        marks["resumed"] = time.perf_counter()
        assert stream.last_read_s is not None
        marks["stamp"] = stream.last_read_s
        conn.close()
        await stream.aclose()

    run_on(factory, main())
    return marks


def test_a_token_is_stamped_at_the_poll_that_found_it_not_after_queued_work(
    listener: socket.socket,
) -> None:
    marks = read_behind_queued_work(new_stamping_loop, listener)
    # The poll that found the bytes returned before the queued work began.
    assert marks["stamp"] <= marks["busy_from"]


def test_on_a_plain_loop_the_stamp_is_the_hand_over_still_before_the_reader_ran(
    listener: socket.socket,
) -> None:
    marks = read_behind_queued_work(asyncio.new_event_loop, listener)
    # Without a stamping selector the transport's hand-over is the first moment known: after
    # the queued work, before the reading task resumed.
    assert marks["busy_to"] <= marks["stamp"] <= marks["resumed"]


def test_blocks_that_wait_together_keep_their_own_stamps(listener: socket.socket) -> None:
    stamps: list[tuple[bytes, float]] = []
    marks: dict[str, float] = {}

    async def main() -> None:
        stream, conn = await connect(listener)
        conn.sendall(b"first")
        await asyncio.sleep(0.01)  # the loop polls and hands the block over; nobody reads
        marks["between"] = time.perf_counter()
        conn.sendall(b"second!")
        await asyncio.sleep(0.01)
        # One read would get both blocks; each comes back alone, with its own arrival.
        for size in (1024, 3, 1024):
            data = await stream.read(size)
            assert stream.last_read_s is not None
            stamps.append((data, stream.last_read_s))
        conn.close()
        await stream.aclose()

    run_on(new_stamping_loop, main())
    assert [data for data, _ in stamps] == [b"first", b"sec", b"ond!"]
    first, second, rest = (stamp for _, stamp in stamps)
    assert first < marks["between"] < second
    assert rest == second  # the rest of a block keeps the block's stamp


def test_bytes_held_back_make_an_idle_connection_not_reusable(listener: socket.socket) -> None:
    readable: list[bool] = []

    async def main() -> None:
        stream, conn = await connect(listener)
        assert not stream.get_extra_info("is_readable")
        conn.sendall(b"ab")
        await asyncio.sleep(0.01)
        conn.sendall(b"cd")
        await asyncio.sleep(0.01)
        await stream.read(1024)  # "ab"; "cd" is held by the stream, not the socket
        readable.append(stream.get_extra_info("is_readable"))
        assert await stream.read(1024) == b"cd"
        conn.close()
        await stream.aclose()

    run_on(new_stamping_loop, main())
    assert readable == [True]

"""When a response's bytes arrived: stamped as the event loop learns of them, not when parsed.

A token's time is the moment its bytes were there to read (docs/metrics.md §1). On a busy loop
the coroutine that reads a socket runs well after the poll that found the socket readable:
first every callback already queued runs (other probes' parsing, each a fraction of a
millisecond), then the socket's read callback, then, one loop turn later, the task that awaits
the bytes. At a thousand targets that queue is milliseconds long, and a stamp taken when the
reading task resumes puts it into TTFT.

* :class:`PollStampingSelector` notes ``time.perf_counter()`` the moment each poll returns.
  Every read callback of that loop turn handles bytes that were there at that moment (the poll
  reported them), so that is the best arrival time user space can know. An event loop built
  on it by :func:`new_stamping_loop` gives its readers that time.
* :class:`ArrivalStampingReader` is an ``asyncio.StreamReader`` that records, per block of
  bytes handed to it by the transport (``feed_data``), when it arrived: the loop's last poll
  when the loop is a stamping one, ``time.perf_counter()`` at the hand-over otherwise (still
  before the reading task runs). :meth:`ArrivalStampingReader.take_stamp` gives the arrival of
  the oldest unread bytes, block by block.

The clock is the monotonic ``time.perf_counter`` throughout; kernel receive timestamps
(``SO_TIMESTAMPNS``) would be closer still, but they are wall-clock time.
"""

from __future__ import annotations

import asyncio
import selectors
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import SupportsIndex

#: The default ``limit`` of ``asyncio.open_connection`` (its buffer high-water mark).
STREAM_LIMIT = 2**16


class PollStampingSelector(selectors.DefaultSelector):
    """The platform's default selector (epoll on Linux), remembering when each poll returned.

    ``polled_s`` is ``time.perf_counter()`` right after the latest ``select()`` returned, 0.0
    before the first.
    """

    polled_s: float = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """``selectors.DefaultSelector.select``, then note the time."""
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        self.polled_s = time.perf_counter()
        return ready


_SELECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollStampingSelector] = (
    weakref.WeakKeyDictionary()
)


def new_stamping_loop() -> asyncio.AbstractEventLoop:
    """A new selector event loop on a :class:`PollStampingSelector` (a ``loop_factory`` for
    ``asyncio.Runner``); readers made on it stamp arrivals at the poll."""
    selector = PollStampingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _SELECTORS[loop] = selector
    return loop


def arrival_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The clock a reader on ``loop`` stamps arrivals with (``time.perf_counter`` seconds):
    the latest poll's return on a stamping loop, the current time on any other loop."""
    selector = _SELECTORS.get(loop)
    if selector is None:
        return time.perf_counter

    def polled() -> float:
        at = selector.polled_s
        return at if at > 0.0 else time.perf_counter()

    return polled


class ArrivalStampingReader(asyncio.StreamReader):
    """A stream reader that knows when each block of its unread bytes arrived.

    Every non-empty ``feed_data`` (one socket read by the transport) is one block. The blocks'
    sizes and stamps are kept until :meth:`take_stamp` hands them out, so the deque holds only
    what is still unread (bounded by the reader's flow control).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limit: int = STREAM_LIMIT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(limit=limit, loop=loop)
        self._clock = clock or arrival_clock(loop)
        self._blocks: deque[list[float]] = deque()  # [bytes left unread, arrival s]

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        """Stamp the block (the transport hands over ``bytes``), then buffer it as
        ``asyncio.StreamReader`` does."""
        size = len(data) if isinstance(data, bytes | bytearray | memoryview) else 0
        if size:
            self._blocks.append([float(size), self._clock()])
        super().feed_data(data)

    def next_block_size(self) -> int | None:
        """How many unread bytes are left of the oldest block (None when none is known)."""
        return int(self._blocks[0][0]) if self._blocks else None

    def take_stamp(self, size: int) -> float | None:
        """Mark ``size`` bytes of the oldest block as read and return when it arrived
        (``time.perf_counter`` seconds); None when no block is known. ``size`` is at most
        :meth:`next_block_size`."""
        if not self._blocks:
            return None
        block = self._blocks[0]
        block[0] -= size
        if block[0] <= 0:
            self._blocks.popleft()
        return block[1]


async def open_stamped_connection(
    host: str, port: int, local_addr: tuple[str, int] | None = None
) -> tuple[ArrivalStampingReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` with an :class:`ArrivalStampingReader` (the same parts
    asyncio's own function joins: a ``StreamReaderProtocol`` and a ``StreamWriter``).

    Raises:
        OSError: the connection failed.
    """
    loop = asyncio.get_running_loop()
    reader = ArrivalStampingReader(loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, local_addr=local_addr)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer

"""A fake clock for the scheduler: time moves only when a test says so.

The scheduler reads time and sets timers through its ``clock`` (``probes.scheduler.Clock``);
with this one, a test advances time explicitly and every timer due by then fires in order,
the loop running everything it woke before the next one. An hour of schedule takes
milliseconds and never depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from probes.record import ProbeRecord


@dataclass
class Handle:
    """What ``call_at`` returns."""

    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


async def settle(rounds: int = 30) -> None:
    """Let every task that can run, run (a few loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Monotonic seconds that advance only through :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, Handle, Callable[[], None]]] = []
        self._seq = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle()
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, handle, callback))
        return handle

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_at(self.now + seconds, lambda: None if fut.done() else fut.set_result(None))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order."""
        end = self.now + seconds
        await settle()
        while self._heap and self._heap[0][0] <= end:
            when, _, handle, callback = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            self.now = max(self.now, when)
            callback()
            await settle()
        self.now = end
        await settle()


class FakeProbe:
    """A probe function that takes ``duration_s`` of fake time (per target, overridable) and
    notes the fake start time of every probe."""

    def __init__(self, clock: FakeClock, duration_s: float = 0.3) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.durations: dict[str, float] = {}
        self.starts: dict[str, list[float]] = {}
        self.raises: dict[str, BaseException] = {}
        self.retry_after: dict[str, float] = {}
        self.cost: float | None = None

    async def __call__(self, target: object, client: object) -> ProbeRecord:
        name = target.name  # type: ignore[attr-defined]
        self.starts.setdefault(name, []).append(self.clock.now)
        await self.clock.sleep(self.durations.get(name, self.duration_s))
        if name in self.raises:
            raise self.raises[name]
        started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.clock.now)
        return ProbeRecord(
            started_at=started.isoformat(),
            target=name,
            provider="openai-compatible",
            model="m",
            status="ok",
            retry_after_s=self.retry_after.get(name),
            cost_usd=self.cost,
        )

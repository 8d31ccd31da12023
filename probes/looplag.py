"""How late the event loop runs: a tiny periodic timer that notes how late it fires.

Every stamp a probe takes (``perf_counter`` when a read returns) is only as good as the loop
that runs the read: while the loop is busy elsewhere (a collection, a long callback, other
probes' work), bytes that have already arrived wait, and the wait lands in TTFT. The monitor
cannot see the socket, but it sees the loop: a timer due at ``t`` that runs at ``t + lag`` means
nothing on this loop ran between ``t`` and ``t + lag``. Each probe is then given the worst lag
seen while it ran (``loop_lag_ms``), so a probe measured on a late loop is flagged instead of
trusted (docs/fields.md).

Cost: one timer callback every ``period_s`` (20 ms: 50 wake-ups a second) and, per probe, a
walk over the samples taken while it ran.
"""

from __future__ import annotations

import asyncio
from collections import deque

#: Seconds between two samples.
PERIOD_S = 0.020
#: Samples kept: probes longer than this many periods see only the most recent ones.
KEEP = 30_000


class LoopLagMonitor:
    """Samples the running loop's lag until :meth:`stop`.

    Times are the loop's own clock (``loop.time()``, monotonic seconds).

    Args:
        period_s: seconds between samples.
        keep: samples kept (``keep * period_s`` seconds of history; 10 minutes by default).
    """

    def __init__(self, period_s: float = PERIOD_S, keep: int = KEEP) -> None:
        self.period_s = period_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self.worst_s = 0.0
        """Worst lag since the last :meth:`take_worst`, seconds."""

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.period_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        """Stop sampling."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        lag = max(0.0, now - self._due)
        self._samples.append((now, lag))
        self.worst_s = max(self.worst_s, lag)
        # From now, not from the missed due time: after a long block, one sample says how
        # long, instead of a burst of catch-up samples.
        self._due = now + self.period_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def now(self) -> float:
        """The loop's clock, seconds."""
        assert self._loop is not None
        return self._loop.time()

    def worst_since(self, since: float) -> float:
        """Worst lag (seconds) seen from loop time ``since`` until now.

        Includes the lag building up right now: a sample that is overdue says the loop has
        been late at least that long, even before the sample runs.
        """
        if self._loop is None:
            return 0.0
        now = self._loop.time()
        worst = max(0.0, now - self._due) if self._handle is not None else 0.0
        # A sample taken at ``at`` with lag L says the loop was blocked over [at - L, at]: it
        # concerns this probe when it ended after the probe began.
        for at, lag in reversed(self._samples):
            if at < since:
                break
            worst = max(worst, lag)
        return worst

    def take_worst(self) -> float:
        """Worst lag since the previous call, seconds (for periodic reports)."""
        worst, self.worst_s = self.worst_s, 0.0
        return worst

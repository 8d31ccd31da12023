"""Loop lag: a probe that ran while the loop was blocked says so (``loop_lag_ms``)."""

from __future__ import annotations

import asyncio
import time

from probes.looplag import LoopLagMonitor


async def test_a_block_during_the_window_is_reported_and_one_before_it_is_not() -> None:
    monitor = LoopLagMonitor(period_s=0.005)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.06)  # noqa: ASYNC251 (blocking the loop is the point)
        await asyncio.sleep(0.02)  # the sampler reports it
        since = monitor.now()
        await asyncio.sleep(0.05)
        quiet = monitor.worst_since(since)
        time.sleep(0.08)  # noqa: ASYNC251 (blocks the loop inside the window)
        blocked = monitor.worst_since(since)  # even before the sampler runs again
        await asyncio.sleep(0.02)
        after = monitor.worst_since(since)
    finally:
        monitor.stop()
    assert quiet < 0.04, "the block before the window must not count"
    assert blocked >= 0.075, "an overdue sample counts while the block is still going on"
    assert after >= 0.075
    assert monitor.take_worst() >= 0.075 and monitor.take_worst() < 0.075

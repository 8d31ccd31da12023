"""The scheduler: per-target intervals, no overlap per target, a concurrency cap, Retry-After."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import datetime

import pytest

from probes.record import ProbeRecord
from probes.scheduler import Scheduler
from tests.conftest import make_target
from tests.servers import ReplayServer, Script

# Real servers and real time on a shared machine: see pyproject.toml (pytest-rerunfailures).
pytestmark = pytest.mark.flaky(reruns=2)

SLOW = [
    (0.05, b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'),
    (0.30, b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n'),
    (0.31, b"data: [DONE]\n\n"),
]


def spans(records: list[ProbeRecord]) -> list[tuple[float, float]]:
    out = []
    for r in records:
        start = datetime.fromisoformat(r.started_at.replace("Z", "+00:00")).timestamp()
        out.append((start, start + (r.total_ms or 0) / 1000))
    return sorted(out)


def overlaps(intervals: list[tuple[float, float]]) -> bool:
    return any(b[0] < a[1] - 0.002 for a, b in itertools.pairwise(intervals))


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def test_no_two_probes_of_one_target_at_once(replay: ReplayServer) -> None:
    records: list[ProbeRecord] = []

    async def sink(r: ProbeRecord) -> None:
        records.append(r)

    target = make_target(
        replay.add("sched-slow", Script(reads=SLOW, headers_at=0.0)), name="slow", interval_s=0.05
    )
    scheduler = Scheduler([target], sink, jitter_s=0.0, rng=random.Random(1))
    scheduler.probe_now()  # a "probe now" while one is in flight must not start a second
    await run_for(scheduler, 1.6)
    assert len(records) >= 3
    assert all(r.status == "ok" for r in records)
    assert not overlaps(spans(records))


async def test_concurrency_cap_across_targets(replay: ReplayServer) -> None:
    records: list[ProbeRecord] = []

    async def sink(r: ProbeRecord) -> None:
        records.append(r)

    url = replay.add("sched-cap", Script(reads=SLOW, headers_at=0.0))
    targets = [make_target(url, name=f"t{i}", interval_s=0.05) for i in range(3)]
    scheduler = Scheduler(targets, sink, max_concurrency=1, jitter_s=0.0)
    await run_for(scheduler, 1.5)
    assert len({r.target for r in records}) >= 2
    assert not overlaps(spans(records))


async def test_retry_after_pushes_the_next_probe_back(replay: ReplayServer) -> None:
    records: list[ProbeRecord] = []

    async def sink(r: ProbeRecord) -> None:
        records.append(r)

    url = replay.add(
        "sched-429",
        Script(
            status=429,
            headers_at=0.0,
            body=b'{"error":{"message":"slow down","type":"rate_limit"}}',
            headers={"Content-Type": "application/json", "Retry-After": "1"},
        ),
    )
    scheduler = Scheduler([make_target(url, name="limited", interval_s=0.05)], sink, jitter_s=0.0)
    await run_for(scheduler, 1.5)
    assert records and all(r.error_kind == "rate_limited" for r in records)
    assert len(records) == 2  # at ~0 s and ~1 s, not every 50 ms


async def test_paused_target_is_not_probed_until_resumed(replay: ReplayServer) -> None:
    records: list[ProbeRecord] = []

    async def sink(r: ProbeRecord) -> None:
        records.append(r)

    url = replay.add("sched-pause", Script(reads=SLOW[-1:], headers_at=0.0))
    scheduler = Scheduler([make_target(url, name="p", interval_s=0.05)], sink, jitter_s=0.0)
    scheduler.pause()
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.6)
    assert records == []
    scheduler.resume()
    await asyncio.sleep(0.6)
    stop.set()
    await task
    assert records


async def test_unconfigured_targets_are_skipped(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("IW_NOPE", raising=False)
    target = make_target("http://127.0.0.1:9/v1", api_key_env="IW_NOPE")

    async def sink(r: ProbeRecord) -> None:
        raise AssertionError("must not probe")

    assert await Scheduler([target], sink).run_once() == []

"""The scheduler: start-to-start intervals on assigned phases, skipped ticks, jitter that keeps
the rate, hanging and failing targets that disturb nobody, Retry-After, commands.

Schedules run on a fake clock (``tests/fakeclock.py``): time only moves when the test says
so, so every expected start is exact and nothing depends on how busy the machine is. One test
at the end probes a real server for real, to see records carry the scheduler's fields.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from probes.config import ResolvedTarget
from probes.record import ProbeRecord
from probes.scheduler import Phase, Scheduler, assign_phases
from tests.conftest import make_target
from tests.fakeclock import FakeClock, FakeProbe, settle
from tests.servers import ReplayServer, Script

SLOW = [
    (0.05, b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'),
    (0.10, b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n'),
    (0.11, b"data: [DONE]\n\n"),
]


def targets(n: int, interval_s: float = 10.0) -> list[ResolvedTarget]:
    return [
        make_target("http://127.0.0.1:9/v1", name=f"t{i}", interval_s=interval_s) for i in range(n)
    ]


class Harness:
    """A scheduler on a fake clock with a fake probe, collecting what reaches the sink."""

    def __init__(self, ts: list[ResolvedTarget], **kwargs: object) -> None:
        self.clock = FakeClock()
        self.probe = FakeProbe(self.clock)
        self.records: list[ProbeRecord] = []
        self.errors: list[tuple[str, BaseException]] = []

        async def sink(record: ProbeRecord) -> None:
            self.records.append(record)

        options: dict[str, object] = {
            "probe": self.probe,
            "clock": self.clock,
            "client_factory": lambda size: object(),
            "on_error": lambda name, exc: self.errors.append((name, exc)),
        }
        options.update(kwargs)
        self.scheduler = Scheduler(ts, sink, **options)  # type: ignore[arg-type]
        self.origin = self.clock.now
        self.stop = asyncio.Event()

    def starts(self, name: str) -> list[float]:
        """Start times relative to the scheduler's start, rounded to the microsecond."""
        return [round(t - self.origin, 6) for t in self.probe.starts.get(name, [])]


async def start(h: Harness) -> asyncio.Task[None]:
    task = asyncio.create_task(h.scheduler.run(h.stop))
    await settle()
    return task


async def finish(h: Harness, task: asyncio.Task[None]) -> None:
    h.stop.set()
    await task


async def test_intervals_are_start_to_start_on_even_phases() -> None:
    # Four targets every 8 s get slots 2 s apart; a 0.3 s probe never delays the next start.
    h = Harness(targets(4, 8.0))
    task = await start(h)
    await h.clock.advance(8 * 3 - 0.001)
    await finish(h, task)
    for i in range(4):
        assert h.starts(f"t{i}") == [2.0 * i, 2.0 * i + 8, 2.0 * i + 16]
    assert all(r.start_late_ms == 0.0 for r in h.records)
    assert h.scheduler.skipped_total == 0


async def test_one_probe_per_interval_from_the_start() -> None:
    # 100 targets at 60 s: each is probed exactly once in the first minute, and the starts
    # are spread over it (no herd at t = 0, no second probe seconds later).
    h = Harness(targets(100, 60.0))
    task = await start(h)
    await h.clock.advance(59.999)
    await finish(h, task)
    firsts = sorted(h.starts(f"t{i}")[0] for i in range(100))
    assert all(len(h.starts(f"t{i}")) == 1 for i in range(100))
    assert firsts == pytest.approx([0.6 * i for i in range(100)])


async def test_a_tick_that_finds_its_probe_running_is_skipped_and_counted() -> None:
    h = Harness(targets(1, 1.0))
    h.probe.duration_s = 2.5
    task = await start(h)
    await h.clock.advance(8.9)
    await finish(h, task)
    # Probes at 0, 3 (ticks 1 and 2 found the first still running) and 6 (4 and 5 skipped);
    # the third ends at 8.5, so ticks 7 and 8 were skipped too.
    assert h.starts("t0") == [0.0, 3.0, 6.0]
    assert h.scheduler.schedules[0].skipped == 6
    assert h.scheduler.skipped_total == 6


async def test_jitter_moves_starts_within_their_slot_and_keeps_the_rate() -> None:
    # Jitter 5 s, but ten targets share a 10 s interval: each start stays in its own 1 s slot.
    h = Harness(targets(10, 10.0), jitter_s=5.0, rng=random.Random(7))
    task = await start(h)
    await h.clock.advance(1000 - 0.001)
    await finish(h, task)
    for i in range(10):
        starts = h.starts(f"t{i}")
        assert len(starts) == 100  # one per interval: 1000 s / 10 s, jitter or not
        offsets = [s - (i + 10 * k) for k, s in enumerate(starts)]
        assert all(0 <= o < 1.0 for o in offsets)
        assert max(offsets) - min(offsets) > 0.5  # the jitter is there
        assert sum(offsets) / len(offsets) == pytest.approx(0.5, abs=0.1)


async def test_a_hanging_target_does_not_move_the_others() -> None:
    h = Harness(targets(3, 5.0))
    h.probe.durations["t0"] = 10_000.0  # never answers within the test
    task = await start(h)
    await h.clock.advance(60 - 0.001)
    await finish(h, task)
    assert h.starts("t0") == [0.0]
    for i in (1, 2):
        first = 5.0 * i / 3
        assert h.starts(f"t{i}") == pytest.approx([first + 5 * k for k in range(12)])


async def test_a_global_cap_makes_others_wait_and_says_how_late() -> None:
    # With max_concurrency 1, one hanging target holds the only slot: the others start late
    # and their records say how late (this is why there is no cap by default).
    h = Harness(targets(2, 5.0), max_concurrency=1)
    h.probe.durations["t0"] = 7.0
    task = await start(h)
    await h.clock.advance(9.9)
    await finish(h, task)
    assert h.starts("t1") == [7.0, 7.5]  # late for its 2.5 s slot, on time for 7.5 s
    late = [r.start_late_ms for r in h.records if r.target == "t1"]
    assert late == pytest.approx([4500.0, 0.0])


async def test_an_exception_in_probing_or_storing_never_stops_a_target() -> None:
    h = Harness(targets(2, 1.0))
    h.probe.raises["t0"] = OverflowError("cannot convert float infinity to integer")
    task = await start(h)
    await h.clock.advance(3.9)
    # The probe raised each time: reported, stored as an internal error, probed again.
    assert h.starts("t0") == [0.0, 1.0, 2.0, 3.0]
    failed = [r for r in h.records if r.target == "t0"]
    assert {r.status for r in failed} == {"error"} and {r.error_kind for r in failed} == {
        "internal"
    }
    assert "OverflowError" in (failed[0].error_message or "")
    assert [name for name, _ in h.errors] == ["t0"] * 4

    async def broken_sink(record: ProbeRecord) -> None:
        raise RuntimeError("database is gone")

    h.scheduler.sink = broken_sink
    await h.clock.advance(2.0)
    await finish(h, task)
    assert h.starts("t1")[-2:] == [4.5, 5.5]  # the sink failing did not stop t1 either
    assert sum(1 for name, exc in h.errors if isinstance(exc, RuntimeError)) == 4


async def test_retry_after_pushes_the_next_start_back() -> None:
    h = Harness(targets(1, 0.05))
    h.probe.duration_s = 0.01
    h.probe.retry_after["t0"] = 1.0
    task = await start(h)
    await h.clock.advance(1.5)
    await finish(h, task)
    # At 0 s, then the first tick at least 1 s after the 429 ended (0.01 + 1 s → 1.05 s).
    assert h.starts("t0") == [0.0, 1.05]
    assert h.scheduler.skipped_total == 0  # waiting out Retry-After is not a skipped tick


async def test_pause_resume_and_probe_now() -> None:
    h = Harness(targets(2, 10.0))
    h.scheduler.pause("t1")
    task = await start(h)
    await h.clock.advance(25)
    assert h.starts("t1") == []
    h.scheduler.probe_now("t1")  # a forced probe works while paused
    await h.clock.advance(1)
    assert h.starts("t1") == [25.0]
    h.scheduler.resume("t1")
    await h.clock.advance(10)
    assert h.starts("t1") == [25.0, 35.0]  # back on its own slot (5 + 10 k)
    # A probe now while one is in flight waits for it instead of overlapping it.
    h.probe.durations["t0"] = 3.0
    await h.clock.advance(40 - h.clock.now + h.origin)  # t0 starts at 40
    h.scheduler.probe_now("t0")
    await h.clock.advance(4)
    await finish(h, task)
    assert h.starts("t0")[-2:] == [40.0, 43.0]


async def test_a_restart_does_not_probe_sooner_than_the_interval() -> None:
    # t0 was probed 4 s before the restart: its first start waits for its 10 s to pass, on
    # its own slot; t1 was not probed recently and starts on its slot.
    h = Harness(targets(2, 10.0), not_before={"t0": 6.0})
    task = await start(h)
    await h.clock.advance(19.99)
    await finish(h, task)
    assert h.starts("t0") == [10.0]
    assert h.starts("t1") == [5.0, 15.0]


async def test_a_changed_interval_moves_the_next_start_at_once() -> None:
    h = Harness(targets(1, 1.0))
    task = await start(h)
    await h.clock.advance(0.5)
    h.scheduler.set_interval("t0", 10.0)  # e.g. a budget stretched it after the first probe
    await h.clock.advance(15)
    await finish(h, task)
    assert h.starts("t0") == [0.0, 10.0]


async def test_budget_stretches_from_the_measured_cost() -> None:
    # Two targets every 10 s at $1 a probe: 2 × 8,640 probes a day = $17,280 against $864:
    # a factor of 20, so each runs every 200 s once its cost is known.
    h = Harness(targets(2, 10.0), daily_budget_usd=864.0)
    h.probe.cost = 1.0
    task = await start(h)
    await h.clock.advance(999)
    await finish(h, task)
    assert h.scheduler.effective_interval("t0") == pytest.approx(200.0)
    assert h.starts("t0") == pytest.approx([0.0, 200.0, 400.0, 600.0, 800.0])
    # t1's first probe came at 5 s, when t0's cost alone made the factor 10.
    assert h.starts("t1")[:2] == pytest.approx([5.0, 205.0])


def test_phases_of_mixed_intervals() -> None:
    phases = assign_phases([("a", 10.0), ("b", 10.0), ("c", 60.0), ("d", 10.0)])
    assert phases["a"] == Phase(0.0, 10 / 3)
    assert phases["b"].phase_s == pytest.approx(10 / 3)
    assert phases["d"].phase_s == pytest.approx(20 / 3)
    # The second group is offset by a golden-ratio share of its slot, not at 0 with "a".
    assert phases["c"].phase_s == pytest.approx(60 * 0.6180339887)


async def test_real_probes_carry_the_schedule_fields(replay: ReplayServer) -> None:
    records: list[ProbeRecord] = []

    async def sink(r: ProbeRecord) -> None:
        records.append(r)

    url = replay.add("sched-real", Script(reads=SLOW, headers_at=0.0))
    scheduler = Scheduler([make_target(url, name="real", interval_s=0.2)], sink)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(records) >= 2:
            break
    stop.set()
    await task
    assert len(records) >= 2 and all(r.status == "ok" for r in records)
    assert all(r.start_late_ms is not None and r.start_late_ms >= 0 for r in records)
    assert all(r.loop_lag_ms is not None and r.loop_lag_ms >= 0 for r in records)
    assert records[1].conn_reused  # the target's own pool kept its connection


async def test_unconfigured_targets_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IW_NOPE", raising=False)
    target = make_target("http://127.0.0.1:9/v1", api_key_env="IW_NOPE")

    async def sink(r: ProbeRecord) -> None:
        raise AssertionError("must not probe")

    assert await Scheduler([target], sink).run_once() == []

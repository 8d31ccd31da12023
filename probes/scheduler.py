"""One event loop that probes its targets, each on its own fixed grid of start times.

Schedules mean what they say (docs/uptime.md, "Schedules"):

* An interval is start to start. Each schedule (a target's probe of one kind) has a phase in
  its interval and starts at ``phase + k × interval``; a tick that finds the previous probe
  still running is skipped and counted (:attr:`Schedule.skipped`), never queued behind it.
* Phases are assigned, not drawn: the schedules sharing an interval get evenly spaced slots
  (:func:`assign_phases`), so a thousand targets never start in the same millisecond and the
  first probe of each comes once within the first interval (no double probe at start).
* Jitter moves each start by a random ``0..jitter_s`` within its own slot: starts stay spread
  and the mean rate stays exactly one per interval.
* Nothing here grows with the number of targets per probe: a probe's bookkeeping touches its
  own schedule (and the budget planner's constant-time update) only.

Each schedule runs in its own task with its own HTTP client (one connection pool per target,
sized so a probe never waits for a connection, all sharing one TLS context), so a hanging
target holds only its own schedule: there is no global cap unless ``max_concurrency`` asks
for one. A ``Retry-After`` from a 429/503/529 pushes that target's next start back
(docs/field-cases.md FC-08);
daily budgets stretch intervals from the measured cost per probe (``probes.budget``).

Every probe records how late it started (``start_late_ms``) and the worst event-loop lag seen
while it ran (``loop_lag_ms``, ``probes.looplag``). Any exception in probing or in the sink
is reported through ``on_error`` and the schedule carries on at its next tick. Results go to
``sink``, which must not block the loop: this loop is the one whose timestamps we publish.
Time comes from an injectable :class:`Clock`, so tests run schedules on a fake one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import ssl
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from probes.budget import BudgetInput, BudgetPlanner, PlannedInterval
from probes.config import ResolvedTarget
from probes.errors import ErrorKind, redact
from probes.looplag import LoopLagMonitor
from probes.record import ProbeRecord
from probes.runner import run_probe
from probes.timestamps import iso
from probes.transport import KEEPALIVE_EXPIRY_S, make_client

Sink = Callable[[ProbeRecord], Awaitable[None]]
ProbeFn = Callable[[ResolvedTarget, Any], Awaitable[ProbeRecord]]
#: A schedule's own probe function may return several records (a two-request check).
ScheduleFn = Callable[[ResolvedTarget, Any], Awaitable[ProbeRecord | Sequence[ProbeRecord]]]
ErrorHook = Callable[[str, BaseException], None]
ClientFactory = Callable[[int], Any]

#: The kind of the canary stream probe every target has.
STREAM = "stream"
#: Golden-ratio fraction: offsets successive interval groups so their slots interleave.
_GOLDEN = 0.6180339887498949


class Clock(Protocol):
    """Where the scheduler reads time and sets its timers (seconds, monotonic)."""

    def time(self) -> float:
        """Now."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        """Run ``callback`` at ``when``; returns a handle with ``cancel()``."""
        ...


class LoopClock:
    """The running event loop's own clock and timers (real time)."""

    def time(self) -> float:
        """``loop.time()``."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """``loop.call_at``."""
        return asyncio.get_running_loop().call_at(when, callback)


@dataclass(frozen=True, slots=True)
class Phase:
    """Where a schedule's starts fall in its interval.

    Attributes:
        phase_s: offset of the first start from the scheduler's start, seconds.
        slot_s: width of the schedule's own slot (interval / schedules sharing it), seconds;
            jitter never moves a start out of it.
    """

    phase_s: float
    slot_s: float


def assign_phases(schedules: Sequence[tuple[str, float]]) -> dict[str, Phase]:
    """Evenly spaced phases for ``(key, interval_s)`` pairs.

    Schedules sharing an interval get slots ``interval / n`` wide, in input order; each
    further group of another interval is offset by a golden-ratio share of its slot so two
    groups' first starts do not coincide.

    Returns:
        key -> :class:`Phase`.
    """
    groups: dict[float, list[str]] = {}
    for key, interval in schedules:
        groups.setdefault(round(interval, 6), []).append(key)
    phases = {}
    for g, (interval, keys) in enumerate(groups.items()):
        slot = interval / len(keys)
        offset = (g * _GOLDEN) % 1.0
        for i, key in enumerate(keys):
            phases[key] = Phase((i + offset) * slot, slot)
    return phases


@dataclass(eq=False)
class Schedule:
    """One recurring probe of one target.

    Attributes:
        target: the target probed.
        interval_s: start-to-start interval in force (budgets may stretch it), seconds.
        kind: what is probed (``stream``: the canary; other kinds may have their own
            interval and probe function).
        probe: the probe function, which may return several records (a check made of two
            requests); None uses the scheduler's.
        skipped: ticks that found the previous probe still running.
        probes: probes started.
    """

    target: ResolvedTarget
    interval_s: float
    kind: str = STREAM
    probe: ScheduleFn | None = None
    skipped: int = 0
    probes: int = 0
    phase: Phase | None = None
    grid: float = 0.0
    start_at: float = 0.0
    last_grid: float | None = None
    running: bool = False
    forced: bool = False
    waker: asyncio.Future[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The target's name."""
        return self.target.name

    @property
    def key(self) -> str:
        """Unique key of the schedule: the target name, plus the kind unless ``stream``."""
        return self.name if self.kind == STREAM else f"{self.name}#{self.kind}"


def report_to_stderr(name: str, exc: BaseException) -> None:
    """The default ``on_error``: one line and the traceback's last frames on stderr."""
    tb = "".join(traceback.format_exception(exc, limit=-3)).rstrip()
    print(f"inferwatch: probe loop of {name!r} hit {type(exc).__name__}: {exc}", file=sys.stderr)
    print(tb, file=sys.stderr, flush=True)


class Scheduler:
    """Probes ``targets`` forever (:meth:`run`) or once (:meth:`run_once`).

    Args:
        targets: resolved targets; unconfigured ones (key variable unset) are never probed.
        sink: awaited with every finished record.
        max_concurrency: probes in flight at once across targets; None (default): no cap,
            each schedule has at most one probe in flight anyway.
        jitter_s: each start moves by a random ``0..jitter_s`` within its slot.
        rng: random source for jitter (seed it for reproducible schedules).
        daily_budget_usd: the prober's budget for all targets, USD per day, or None.
        cost_history: recent ``cost_usd`` values per target name (e.g. from the database), so
            the budget holds from the first probe after a restart.
        probe: the probe function (default ``probes.runner.run_probe``); injectable.
        clock: time and timers (default: the running loop's).
        plan_budgets: False when someone else plans budgets and calls :meth:`set_interval`
            (a prober worker, whose main process sees every target's cost).
        intervals: effective intervals to start with, per target name (default: configured).
        phases: phases per schedule key (default: :func:`assign_phases` over this
            scheduler's schedules).
        not_before: seconds from the start before which a target must not be probed (its
            previous probe was that recent), per target name.
        paused: names paused from the start.
        on_error: called with the target name and the exception when probing or the sink
            raised (default: :func:`report_to_stderr`).
        loop_lag: measure loop lag for ``loop_lag_ms`` (default: only on the real clock).
        client_factory: builds one target's HTTP client from its pool size (default:
            :func:`probes.runner.make_client` with a TLS context shared by all targets).
    """

    def __init__(
        self,
        targets: Sequence[ResolvedTarget],
        sink: Sink,
        *,
        max_concurrency: int | None = None,
        jitter_s: float = 0.0,
        rng: random.Random | None = None,
        daily_budget_usd: float | None = None,
        cost_history: Mapping[str, Sequence[float]] | None = None,
        probe: ProbeFn | None = None,
        clock: Clock | None = None,
        plan_budgets: bool = True,
        intervals: Mapping[str, float] | None = None,
        phases: Mapping[str, Phase] | None = None,
        not_before: Mapping[str, float] | None = None,
        paused: Iterable[str] = (),
        on_error: ErrorHook | None = None,
        loop_lag: bool | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.targets = [t for t in targets if t.is_configured()]
        self.sink = sink
        self.max_concurrency = max_concurrency
        self.jitter_s = jitter_s
        self.rng = rng or random.Random()
        self.probe: ProbeFn = probe or run_probe
        self.clock: Clock = clock or LoopClock()
        self.paused: set[str] = set(paused)
        self.on_error = on_error or report_to_stderr
        self._lag_enabled = isinstance(self.clock, LoopClock) if loop_lag is None else loop_lag
        self.lag: LoopLagMonitor | None = None
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self._ssl: ssl.SSLContext | None = None
        self._phases = dict(phases or {})
        self._not_before = dict(not_before or {})
        self._semaphore: asyncio.Semaphore | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight: set[str] = set()
        self._started_at: dict[str, str] = {}
        """Target name -> UTC ISO start of its canary probe in flight."""
        self.probes_done = 0
        self.skipped_total = 0
        self.errors = 0
        """Exceptions reported through ``on_error``."""
        self.planner: BudgetPlanner | None = None
        if plan_budgets:
            self.planner = BudgetPlanner(
                [
                    BudgetInput(
                        name=t.name,
                        interval_s=t.settings.interval_s,
                        daily_budget_usd=t.settings.daily_budget_usd,
                        paused=t.name in self.paused,
                    )
                    for t in self.targets
                ],
                daily_budget_usd=daily_budget_usd,
                cost_history=cost_history,
            )
        start = dict(intervals or {})
        self.schedules: list[Schedule] = []
        self._by_name: dict[str, list[Schedule]] = {}
        for t in self.targets:
            interval = start.get(t.name)
            if interval is None:
                interval = (
                    self.planner.effective_interval(t.name)
                    if self.planner
                    else t.settings.interval_s
                )
            self.add_schedule(Schedule(t, interval))

    # ---- schedules -----------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule) -> None:
        """Add a schedule (another probe kind of a target) before :meth:`run`."""
        self.schedules.append(schedule)
        self._by_name.setdefault(schedule.name, []).append(schedule)

    def set_interval(self, name: str, interval_s: float, kind: str = STREAM) -> None:
        """Change a schedule's interval now: its next start moves to one new interval after
        the previous start (or stays put while a probe runs: the move happens at its end)."""
        for s in self._by_name.get(name, ()):
            if s.kind != kind or s.interval_s == interval_s:
                continue
            s.interval_s = interval_s
            if s.last_grid is not None and not s.running:
                s.grid = max(s.last_grid + interval_s, self.clock.time())
                s.start_at = s.grid + self._jitter(s)
                self._wake(s)

    # ---- budgets -------------------------------------------------------------------------

    @property
    def plan(self) -> dict[str, PlannedInterval]:
        """Current interval plan per target name (configured vs effective interval, note)."""
        return {p.name: p for p in self.planner.plans()} if self.planner else {}

    def cost_per_probe(self, name: str) -> float | None:
        """Mean ``cost_usd`` of the target's latest priced probes, USD; None before any."""
        return self.planner.cost_per_probe(name) if self.planner else None

    def record_cost(self, name: str, cost_usd: float | None) -> None:
        """Feed one probe's cost into the target's mean and apply what it changes.

        Unpriced probes (``None``) are skipped: the mean is over priced probes only.
        """
        if self.planner is None or cost_usd is None:
            return
        self.planner.record_cost(name, cost_usd)
        self._apply_plan()

    def _apply_plan(self) -> None:
        assert self.planner is not None
        for changed in self.planner.take_changed():
            self.set_interval(changed, self.planner.effective_interval(changed))

    def effective_interval(self, name: str) -> float:
        """The target's interval in force, seconds."""
        for s in self._by_name.get(name, ()):
            if s.kind == STREAM:
                return s.interval_s
        raise KeyError(name)

    # ---- commands ------------------------------------------------------------------------

    def pause(self, name: str | None = None) -> None:
        """Pause one target, or all when ``name`` is None (a probe in flight finishes)."""
        names = [name] if name else [t.name for t in self.targets]
        self.paused.update(names)
        if self.planner is not None:
            self.planner.set_paused(name, True)
            self._apply_plan()

    def resume(self, name: str | None = None) -> None:
        """Resume one target, or all when ``name`` is None (it probes at its next tick)."""
        if name is None:
            self.paused.clear()
        else:
            self.paused.discard(name)
        if self.planner is not None:
            self.planner.set_paused(name, False)
            self._apply_plan()

    def probe_now(self, name: str | None = None) -> None:
        """Probe one target (or all) as soon as it is not already probing."""
        for s in self.schedules if name is None else self._by_name.get(name, ()):
            if s.kind == STREAM:
                s.forced = True
                self._wake(s)

    def stats(self) -> dict[str, Any]:
        """Counters for a status report: probes, skipped ticks, errors, in flight."""
        return {
            "probes": self.probes_done,
            "skipped": self.skipped_total,
            "errors": self.errors,
            "in_flight": len(self._in_flight),
        }

    def in_flight_since(self) -> dict[str, str]:
        """Target name -> UTC ISO 8601 start of its canary probe running now (what the
        dashboard shows as "probing 12s")."""
        return dict(self._started_at)

    # ---- running -------------------------------------------------------------------------

    async def run_once(self, client: httpx.AsyncClient | None = None) -> list[ProbeRecord]:
        """Probe every configured target once, concurrently up to the cap; return the records
        in target order (after each has been handed to the sink)."""
        semaphore = asyncio.Semaphore(self.max_concurrency or max(1, len(self.targets)))
        owns = client is None
        client = client or make_client(max_connections=max(1, len(self.targets)))
        try:

            async def one(target: ResolvedTarget) -> ProbeRecord:
                async with semaphore:
                    try:
                        record = await self.probe(target, client)
                    except Exception as exc:
                        self._report(target.name, exc)
                        record = self._internal_record(target, exc, datetime.now(UTC))
                self.record_cost(target.name, record.cost_usd)
                await self.sink(record)
                return record

            return list(await asyncio.gather(*(one(t) for t in self.targets)))
        finally:
            if owns:
                await client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Probe on schedule until ``stop`` is set."""
        if self.max_concurrency:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        if self._lag_enabled:
            self.lag = LoopLagMonitor()
            self.lag.start()
        self._stop = stop
        self._start(self.schedules)
        try:
            await stop.wait()
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.lag is not None:
                self.lag.stop()
            clients, self._clients = list(self._clients.values()), {}
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _start(self, schedules: Sequence[Schedule]) -> None:
        """Place ``schedules`` on their grids from now and start their tasks."""
        assert self._stop is not None
        origin = self.clock.time()
        missing = [(s.key, s.interval_s) for s in schedules if s.key not in self._phases]
        if missing:
            self._phases.update(assign_phases(missing))
        for s in schedules:
            s.phase = self._phases[s.key]
            s.grid = origin + s.phase.phase_s
            wait = self._not_before.get(s.name, 0.0) if s.kind == STREAM else 0.0
            if s.grid < origin + wait:
                s.grid += math.ceil((origin + wait - s.grid) / s.interval_s) * s.interval_s
            s.start_at = s.grid + self._jitter(s)
            self._tasks[s.key] = asyncio.create_task(
                self._run_schedule(s, self._stop), name=f"probe {s.key}"
            )

    def add_target(
        self,
        target: ResolvedTarget,
        schedules: Sequence[Schedule],
        *,
        phases: Mapping[str, Phase] | None = None,
        not_before_s: float = 0.0,
        paused: bool = False,
    ) -> None:
        """Start probing ``target`` (its ``schedules``) while running: a target moved here
        from another worker. ``not_before_s`` keeps its previous probe's interval."""
        if target.name in self._by_name or not target.is_configured():
            return
        self.targets.append(target)
        if paused:
            self.paused.add(target.name)
        self._phases.update(phases or {})
        if not_before_s > 0:
            self._not_before[target.name] = not_before_s
        for schedule in schedules:
            self.add_schedule(schedule)
        if self._stop is not None:
            self._start(schedules)

    async def remove_target(self, name: str) -> None:
        """Stop probing ``name`` (a probe in flight is abandoned) and close its client."""
        schedules = self._by_name.pop(name, [])
        self.schedules = [s for s in self.schedules if s.name != name]
        self.targets = [t for t in self.targets if t.name != name]
        tasks = [t for s in schedules if (t := self._tasks.pop(s.key, None)) is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client = self._clients.pop(name, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _jitter(self, s: Schedule) -> float:
        if not self.jitter_s:
            return 0.0
        width = min(self.jitter_s, s.phase.slot_s if s.phase else s.interval_s, s.interval_s)
        return self.rng.random() * width

    def _wake(self, s: Schedule) -> None:
        if s.waker is not None and not s.waker.done():
            s.waker.set_result(None)

    async def _sleep_until(self, s: Schedule, when: float) -> None:
        """Sleep until ``when`` or until :meth:`_wake`, whichever comes first."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        s.waker = fut
        handle = self.clock.call_at(when, lambda: None if fut.done() else fut.set_result(None))
        try:
            await fut
        finally:
            handle.cancel()
            s.waker = None

    def _advance(self, s: Schedule, now: float, *, consumed: bool, count: bool) -> None:
        """Move the schedule past ``now``: the tick just used (when ``consumed``) and every
        tick whose start passed meanwhile (counted as skipped when ``count``)."""
        if consumed:
            s.last_grid = s.grid
            s.grid += s.interval_s
            s.start_at = s.grid + self._jitter(s)
        if s.start_at <= now:
            missed = math.floor((now - s.start_at) / s.interval_s) + 1
            if count:
                s.skipped += missed
                self.skipped_total += missed
            s.grid += missed * s.interval_s
            s.start_at = s.grid + self._jitter(s)
            if s.start_at <= now:  # jitter drew below now: one more slot
                s.grid += s.interval_s
                s.start_at = s.grid + self._jitter(s)

    async def _run_schedule(self, s: Schedule, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if not s.forced:
                    await self._sleep_until(s, s.start_at)
                    if stop.is_set():
                        return
                now = self.clock.time()
                if s.forced:
                    s.forced = False
                    planned, consumed = now, False
                elif now < s.start_at:
                    continue  # woken early (the interval changed): sleep to the new start
                else:
                    planned, consumed = s.start_at, True
                    if s.name in self.paused:
                        self._advance(s, now, consumed=True, count=False)
                        continue
                retry_after = await self._probe(s, planned)
                end = self.clock.time()
                self._advance(s, end, consumed=consumed, count=True)
                if retry_after:
                    self._advance(s, end + retry_after, consumed=False, count=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug of ours: report it, keep the schedule
                self._report(s.name, exc)
                s.forced = False
                self._advance(s, self.clock.time(), consumed=False, count=False)

    def _client(self, s: Schedule) -> Any:
        client = self._clients.get(s.name)
        if client is None:
            # Every schedule of the target may be in flight at once, plus the one retry on a
            # fresh connection: the pool is never what a probe waits for.
            size = len(self._by_name.get(s.name, ())) + 1
            if self._client_factory is not None:
                client = self._client_factory(size)
            else:
                if self._ssl is None:
                    self._ssl = httpx.create_ssl_context()
                # A pooled connection idle longer than its expiry is closed at the next
                # request anyway; until then it is dead weight (and, at a thousand targets,
                # tens of thousands of objects for every full collection to walk).
                shortest = min(x.interval_s for x in self._by_name.get(s.name, [s]))
                client = make_client(
                    max_connections=size,
                    verify=self._ssl,
                    keep_alive=shortest <= KEEPALIVE_EXPIRY_S,
                )
            self._clients[s.name] = client
        return client

    async def _probe(self, s: Schedule, planned: float) -> float | None:
        """Run one probe of ``s`` and hand its record to the sink; never raises.

        Returns:
            The record's ``retry_after_s``, if any.
        """
        s.running = True
        self._in_flight.add(s.key)
        try:
            if self._semaphore is not None:
                await self._semaphore.acquire()
            try:
                launched = self.clock.time()
                lag_from = self.lag.now() if self.lag is not None else 0.0
                wall = time.time()
                if s.kind == STREAM:
                    self._started_at[s.name] = iso(datetime.fromtimestamp(wall, UTC))
                s.probes += 1
                self.probes_done += 1
                try:
                    result = await (s.probe or self.probe)(s.target, self._client(s))
                    records = [result] if isinstance(result, ProbeRecord) else list(result)
                except Exception as exc:
                    self._report(s.name, exc)
                    failed = self._internal_record(s.target, exc, datetime.fromtimestamp(wall, UTC))
                    if s.kind != STREAM:  # "workload:long" -> kind workload, workload long
                        failed.kind, _, workload = s.kind.partition(":")
                        failed.workload = workload or None
                    records = [failed]
            finally:
                if self._semaphore is not None:
                    self._semaphore.release()
            late_ms = max(0.0, launched - planned) * 1000.0
            lag_ms = self.lag.worst_since(lag_from) * 1000.0 if self.lag is not None else None
            for record in records:
                record.start_late_ms = late_ms
                record.loop_lag_ms = lag_ms
        finally:
            s.running = False
            self._in_flight.discard(s.key)
            if s.kind == STREAM:
                self._started_at.pop(s.name, None)
        retry_after: float | None = None
        for record in records:
            if s.kind == STREAM:
                try:
                    self.record_cost(s.name, record.cost_usd)
                except Exception as exc:
                    self._report(s.name, exc)
            try:
                await self.sink(record)
            except Exception as exc:
                self._report(s.name, exc)
            retry_after = max(retry_after or 0.0, record.retry_after_s or 0.0) or None
        return retry_after

    def _report(self, name: str, exc: BaseException) -> None:
        self.errors += 1
        with contextlib.suppress(Exception):
            self.on_error(name, exc)

    @staticmethod
    def _internal_record(
        target: ResolvedTarget, exc: BaseException, started: datetime
    ) -> ProbeRecord:
        """A record standing in for a probe that raised: the target is never silently gone."""
        key = target.api_key()
        message = redact(f"prober error: {type(exc).__name__}: {exc}", (key,) if key else ())
        return ProbeRecord(
            started_at=iso(started),
            target=target.name,
            provider=target.config.provider,
            model=target.config.model,
            status="error",
            error_kind=ErrorKind.INTERNAL.value,
            error_message=message[:300],
        )

"""One event loop that probes every target on its own interval.

Each target runs in its own task, so two probes of the same target never overlap; a semaphore
caps probes in flight across targets; each interval gets a random jitter so targets drift
apart; a ``Retry-After`` from a 429/503/529 pushes that target's next probe back
(docs/field-cases.md FC-08).
Daily probing budgets stretch intervals from the measured cost per probe (``probes.budget``);
the current plan is in :attr:`Scheduler.plan` for the prober to publish.
Results go to a ``sink`` callback, which must not block the loop (the prober hands rows to
a writer thread), since this loop is the one whose timestamps we publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from probes.budget import COST_SAMPLES, BudgetInput, PlannedInterval, plan_intervals
from probes.config import ResolvedTarget
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe

Sink = Callable[[ProbeRecord], Awaitable[None]]
ProbeFn = Callable[[ResolvedTarget, httpx.AsyncClient], Awaitable[ProbeRecord]]


class Scheduler:
    """Probes ``targets`` forever (:meth:`run`) or once (:meth:`run_once`).

    Args:
        targets: resolved targets; unconfigured ones (key variable unset) are never probed.
        sink: awaited with every finished record.
        max_concurrency: probes in flight at once.
        jitter_s: each interval is stretched by ``uniform(0, jitter_s)``.
        rng: random source for jitter (seed it for reproducible schedules).
        daily_budget_usd: the prober's budget for all targets, USD per day, or None.
        cost_history: recent ``cost_usd`` values per target name (e.g. from the database), so
            the budget holds from the first probe after a restart.
        probe: the probe function (``run_probe``); injectable for tests.
    """

    def __init__(
        self,
        targets: Sequence[ResolvedTarget],
        sink: Sink,
        *,
        max_concurrency: int = 8,
        jitter_s: float = 2.0,
        rng: random.Random | None = None,
        daily_budget_usd: float | None = None,
        cost_history: Mapping[str, Sequence[float]] | None = None,
        probe: ProbeFn = run_probe,
    ) -> None:
        self.targets = [t for t in targets if t.is_configured()]
        self.sink = sink
        self.max_concurrency = max_concurrency
        self.jitter_s = jitter_s
        self.rng = rng or random.Random()
        self.daily_budget_usd = daily_budget_usd
        self.probe = probe
        self.paused: set[str] = set()
        self._wake: dict[str, asyncio.Event] = {}
        self._in_flight: set[str] = set()
        self._forced: set[str] = set()
        self.probes_done = 0
        history = cost_history or {}
        self._costs: dict[str, deque[float]] = {
            t.name: deque(history.get(t.name, ())[-COST_SAMPLES:], maxlen=COST_SAMPLES)
            for t in self.targets
        }
        self.plan: dict[str, PlannedInterval] = {}
        """Current interval plan per target name (configured vs effective interval, note)."""
        self.last_delay_s: dict[str, float] = {}
        """The wait chosen after each target's latest probe, seconds (jitter included)."""
        self._replan()

    def cost_per_probe(self, name: str) -> float | None:
        """Mean ``cost_usd`` of the target's latest priced probes, USD; None before any."""
        costs = self._costs.get(name)
        return sum(costs) / len(costs) if costs else None

    def record_cost(self, name: str, cost_usd: float | None) -> None:
        """Feed one probe's cost into the target's mean and re-plan intervals.

        Unpriced probes (``None``) are skipped: the mean is over priced probes only.
        """
        if cost_usd is not None and name in self._costs:
            self._costs[name].append(cost_usd)
            self._replan()

    def _replan(self) -> None:
        inputs = [
            BudgetInput(
                name=t.name,
                interval_s=t.settings.interval_s,
                cost_per_probe_usd=self.cost_per_probe(t.name),
                daily_budget_usd=t.settings.daily_budget_usd,
                paused=t.name in self.paused,
            )
            for t in self.targets
        ]
        plans = plan_intervals(
            inputs, jitter_s=self.jitter_s, daily_budget_usd=self.daily_budget_usd
        )
        self.plan = {p.name: p for p in plans}

    def effective_interval(self, name: str) -> float:
        """The target's interval after budgets, seconds."""
        return self.plan[name].effective_interval_s

    def pause(self, name: str | None = None) -> None:
        """Pause one target, or all when ``name`` is None (a probe in flight finishes)."""
        self.paused.update([name] if name else [t.name for t in self.targets])
        self._replan()

    def resume(self, name: str | None = None) -> None:
        """Resume one target, or all when ``name`` is None."""
        if name is None:
            self.paused.clear()
        else:
            self.paused.discard(name)
        self._replan()
        for event in self._wake.values():
            event.set()

    def probe_now(self, name: str | None = None) -> None:
        """Probe one target (or all) as soon as it is not already probing."""
        for target_name, event in self._wake.items():
            if name is None or name == target_name:
                self._forced.add(target_name)
                event.set()

    async def run_once(self, client: httpx.AsyncClient | None = None) -> list[ProbeRecord]:
        """Probe every configured target once, concurrently up to the cap; return the records
        in target order (after each has been handed to the sink)."""
        semaphore = asyncio.Semaphore(self.max_concurrency)
        owns = client is None
        client = client or make_client()
        try:

            async def one(target: ResolvedTarget) -> ProbeRecord:
                async with semaphore:
                    record = await self.probe(target, client)
                self.record_cost(target.name, record.cost_usd)
                await self.sink(record)
                return record

            return list(await asyncio.gather(*(one(t) for t in self.targets)))
        finally:
            if owns:
                await client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Probe on schedule until ``stop`` is set."""
        semaphore = asyncio.Semaphore(self.max_concurrency)
        async with make_client() as client:
            tasks = [
                asyncio.create_task(self._target_loop(t, client, semaphore, stop), name=t.name)
                for t in self.targets
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _target_loop(
        self,
        target: ResolvedTarget,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        stop: asyncio.Event,
    ) -> None:
        wake = self._wake.setdefault(target.name, asyncio.Event())
        interval = target.settings.interval_s
        # Stagger the first round so targets do not all fire in the same millisecond.
        delay = self.rng.uniform(0, min(interval, max(self.jitter_s, 0.5)))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            forced = target.name in self._forced
            self._forced.discard(target.name)
            if target.name in self.paused and not forced:
                delay = 3600.0  # woken by resume() or probe_now()
                continue
            async with semaphore:
                self._in_flight.add(target.name)
                try:
                    record = await self.probe(target, client)
                finally:
                    self._in_flight.discard(target.name)
            self.probes_done += 1
            self.record_cost(target.name, record.cost_usd)
            await self.sink(record)
            delay = self.effective_interval(target.name) + self.rng.uniform(0, self.jitter_s)
            if record.retry_after_s:
                delay = max(delay, record.retry_after_s)
            self.last_delay_s[target.name] = delay

"""The extra schedules of issue #13, ready for the scheduler to run beside each canary.

From the config, :meth:`QuestionChecks.schedules` lists per target: the prompt-caching check
(``[targets.cache_check]``, kind ``cache_check``), every long-prompt workload that applies
(``[[workloads]]``, kind ``workload``) and the deliberately cold schedule
(``cold_interval_s``, kind ``cold_start``), each with its own interval. The scheduler calls
:meth:`QuestionChecks.run` for one due schedule and stores what comes back: probe records
(through the usual sink, so they count in the probing budget and history) and, for a cache
check, its verdict (``store.cache_checks.save_cache_check``).

The official status poller is separate (:mod:`probes.official_status`): it runs on its own
task and client, never through the probe path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx

from probes.cache_check import CacheCheckResult, cache_shape, new_sizer, run_cache_check
from probes.coldstart import IdleTracker
from probes.config import Config, ResolvedTarget
from probes.prompts import PromptSizer
from probes.record import ProbeRecord
from probes.runner import run_probe
from probes.timestamps import utc_now
from probes.workloads import WorkloadRunner

CheckKind = Literal["cache_check", "workload", "cold_start"]
ProbeFn = Callable[..., Awaitable[ProbeRecord]]


@dataclass(frozen=True, slots=True)
class CheckSchedule:
    """One extra schedule of one target.

    Attributes:
        target: the target's name.
        kind: what runs (``cache_check``, ``workload``, ``cold_start``).
        interval_s: seconds between two runs.
        workload: the workload's name for kind ``workload``, else None.
    """

    target: str
    kind: CheckKind
    interval_s: float
    workload: str | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one run produced: probe records to store, and a cache check's verdict."""

    records: tuple[ProbeRecord, ...]
    cache_check: CacheCheckResult | None = None


class QuestionChecks:
    """Runs the extra schedules; keeps what they learn across runs (prompt sizers).

    Args:
        config: the configuration (targets, workloads).
        probe: the probe function (``run_probe``).
        tracker: the prober's idle tracker; when given, every check's probes get ``idle_s``
            and ``cold`` like the canaries (pass the same tracker the canaries use).
        clock: monotonic clock for the probes.
        wall_clock: UTC wall clock for the probes.
    """

    def __init__(
        self,
        config: Config,
        *,
        probe: ProbeFn = run_probe,
        tracker: IdleTracker | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.probe = tracker.wrap(probe) if tracker is not None else probe
        self.clock = clock
        self.wall_clock = wall_clock
        self.workloads = WorkloadRunner()
        self._cache_sizers: dict[str, PromptSizer] = {}

    def schedules(self) -> list[CheckSchedule]:
        """Every extra schedule of every enabled target, in config order."""
        out = []
        for target in self.config.resolved():
            cfg = target.config
            if cfg.cache_check is not None and cfg.cache_check.enabled:
                out.append(CheckSchedule(target.name, "cache_check", cfg.cache_check.interval_s))
            for w in self.config.workloads:
                if not w.targets or target.name in w.targets:
                    out.append(CheckSchedule(target.name, "workload", w.interval_s, w.name))
            if cfg.cold_interval_s is not None:
                out.append(CheckSchedule(target.name, "cold_start", cfg.cold_interval_s))
        return out

    async def run(
        self, schedule: CheckSchedule, target: ResolvedTarget, client: httpx.AsyncClient
    ) -> CheckOutcome:
        """Run one due schedule on ``target`` with the probe client.

        Raises:
            KeyError: when a workload schedule names a workload the config does not have.
        """
        if schedule.kind == "workload":
            workload = next(w for w in self.config.workloads if w.name == schedule.workload)
            records = await self.workloads.run(
                target,
                client,
                workload,
                clock=self.clock,
                wall_clock=self.wall_clock,
                probe=self.probe,
            )
            return CheckOutcome(tuple(records))
        if schedule.kind == "cold_start":
            record = await self.probe(target, client, clock=self.clock, wall_clock=self.wall_clock)
            record.kind = "cold_start"
            return CheckOutcome((record,))
        settings = target.config.cache_check
        shape = cache_shape(target.config.provider)
        min_tokens = (settings.prefix_tokens if settings else None) or (
            shape.min_prefix_tokens if shape else 0
        )
        sizer = self._cache_sizers.get(target.name)
        wanted = new_sizer(min_tokens)
        if sizer is None or sizer.target_tokens != wanted.target_tokens:
            sizer = self._cache_sizers[target.name] = wanted
        check = await run_cache_check(
            target,
            client,
            prefix_tokens=min_tokens or None,
            gap_s=settings.gap_s if settings else 2.0,
            max_tokens=settings.max_tokens if settings else 8,
            sizer=sizer,
            clock=self.clock,
            wall_clock=self.wall_clock,
            probe=self.probe,
        )
        return CheckOutcome(check.records, check.result)

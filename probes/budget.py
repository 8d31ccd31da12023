"""Keep probing within a daily budget by stretching intervals (pure; the scheduler applies it).

A target probed every ``interval_s`` seconds plus a random ``0..jitter_s`` runs, on average,
``86400 / (interval_s + jitter_s / 2)`` probes a day; at its measured mean cost per probe that
is its daily cost. Two budgets can stretch its interval:

* its own ``daily_budget_usd`` (per target, or from ``[defaults]``): the interval grows until
  the target alone fits: ``interval + jitter/2 = cost_per_probe × 86400 / budget``;
* the prober's ``[prober] daily_budget_usd`` for all targets together: when their total daily
  cost is above it, every paid target's mean period is multiplied by the same factor,
  ``total / budget``, so relative probe rates are kept and the total lands on the budget.
  Targets that cost nothing ($0 per probe) keep their interval; targets whose cost is unknown
  (no priced probe yet, or no price) cannot be budgeted and say so.

Intervals only ever stretch, never shrink below the configured one, and shrink back when the
measured cost falls. Nothing here reads a clock or sleeps: tests feed costs in and read the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_PER_DAY = 86400.0
#: A month, for cost projections, is 30 days.
DAYS_PER_MONTH = 30
#: The mean cost per probe is taken over this many of a target's latest priced probes.
COST_SAMPLES = 20
#: Stretch factors closer to 1 than this are rounding, not a stretch.
_EPS = 1e-9


def probes_per_day(interval_s: float, jitter_s: float) -> float:
    """Mean probes per day of one target: one every ``interval_s + jitter_s / 2`` seconds.

    Raises:
        ValueError: when the mean period is not positive.
    """
    period = interval_s + jitter_s / 2
    if period <= 0:
        raise ValueError(f"probe period must be positive, got {period}")
    return SECONDS_PER_DAY / period


@dataclass(frozen=True, slots=True)
class BudgetInput:
    """What the plan needs to know about one target.

    Attributes:
        name: target name.
        interval_s: configured interval, seconds.
        cost_per_probe_usd: measured mean cost of one probe, USD; None when unknown.
        daily_budget_usd: the target's own budget, USD per day; None for no limit.
        paused: paused targets cost nothing and are left out of the total.
    """

    name: str
    interval_s: float
    cost_per_probe_usd: float | None = None
    daily_budget_usd: float | None = None
    paused: bool = False


@dataclass(frozen=True, slots=True)
class PlannedInterval:
    """The interval a target will actually be probed at, and why.

    Attributes:
        name: target name.
        interval_s: configured interval, seconds.
        effective_interval_s: interval after budgets, seconds (>= ``interval_s``).
        cost_per_probe_usd: measured mean cost per probe, USD; None when unknown.
        daily_cost_usd: projected cost per day at the effective interval (mean jitter
            included), USD; None when the cost per probe is unknown.
        daily_budget_usd: the target's own budget, USD per day, or None.
        note: why the interval differs or cannot be budgeted, "" when it runs as configured.
    """

    name: str
    interval_s: float
    effective_interval_s: float
    cost_per_probe_usd: float | None
    daily_cost_usd: float | None
    daily_budget_usd: float | None
    note: str = ""

    @property
    def stretched(self) -> bool:
        """True when a budget made the interval longer than configured."""
        return self.effective_interval_s > self.interval_s * (1 + _EPS)


def _daily(cost: float | None, interval_s: float, jitter_s: float) -> float | None:
    return None if cost is None else cost * probes_per_day(interval_s, jitter_s)


def plan_intervals(
    targets: Sequence[BudgetInput], *, jitter_s: float, daily_budget_usd: float | None
) -> list[PlannedInterval]:
    """Stretch intervals so each target's and the overall daily cost fit their budgets.

    Args:
        targets: every scheduled target with its measured cost per probe.
        jitter_s: the scheduler's jitter; a probe period averages ``interval + jitter/2``.
        daily_budget_usd: the prober's budget for all targets together, USD per day, or None.

    Returns:
        One plan per target, in input order.
    """
    half_jitter = jitter_s / 2
    periods: dict[str, float] = {}
    notes: dict[str, str] = {}
    for t in targets:
        period = t.interval_s + half_jitter
        cost = t.cost_per_probe_usd
        if t.paused:
            pass  # not probing: nothing to budget (the paused state is shown on its own)
        elif t.daily_budget_usd is not None:
            if cost is None:
                notes[t.name] = "cost per probe unknown: budget not enforced"
            elif cost > 0:
                needed = cost * SECONDS_PER_DAY / t.daily_budget_usd
                if needed > period * (1 + _EPS):
                    notes[t.name] = (
                        f"stretched x{needed / period:.2f} to fit target budget "
                        f"${t.daily_budget_usd:g}/day"
                    )
                    period = needed
        periods[t.name] = period

    if daily_budget_usd is not None:
        active = [t for t in targets if not t.paused]
        paid = [t for t in active if t.cost_per_probe_usd]
        total = sum((t.cost_per_probe_usd or 0.0) * SECONDS_PER_DAY / periods[t.name] for t in paid)
        factor = total / daily_budget_usd
        if factor > 1 + _EPS:
            for t in paid:
                periods[t.name] *= factor
                note = f"stretched x{factor:.2f} to fit prober budget ${daily_budget_usd:g}/day"
                notes[t.name] = f"{notes[t.name]}; {note}" if t.name in notes else note
        for t in active:
            if t.cost_per_probe_usd is None and t.name not in notes:
                notes[t.name] = "cost per probe unknown: budget not enforced"

    plans = []
    for t in targets:
        effective = max(t.interval_s, periods[t.name] - half_jitter)
        daily = None if t.paused else _daily(t.cost_per_probe_usd, effective, jitter_s)
        plans.append(
            PlannedInterval(
                name=t.name,
                interval_s=t.interval_s,
                effective_interval_s=effective,
                cost_per_probe_usd=t.cost_per_probe_usd,
                daily_cost_usd=daily,
                daily_budget_usd=t.daily_budget_usd,
                note=notes.get(t.name, ""),
            )
        )
    return plans

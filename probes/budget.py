"""Keep probing within a daily budget by stretching intervals (the scheduler applies the plan).

Intervals are start to start (``probes.scheduler``), and jitter only moves each start around
its slot, so a target probed every ``interval_s`` seconds runs ``86400 / interval_s`` probes a
day; at its measured mean cost per probe that is its daily cost. Two budgets can stretch its
interval:

* its own ``daily_budget_usd`` (per target, or from ``[defaults]``): the interval grows until
  the target alone fits: ``interval = cost_per_probe × 86400 / budget``;
* the prober's ``[prober] daily_budget_usd`` for all targets together: when their total daily
  cost is above it, every paid target's period is multiplied by the same factor,
  ``total / budget``, so relative probe rates are kept and the total lands on the budget.
  Targets that cost nothing ($0 per probe) keep their interval; targets whose cost is unknown
  (no priced probe yet, or no price) cannot be budgeted and say so.

Intervals only ever stretch, never shrink below the configured one, and shrink back when the
measured cost falls. :func:`plan_intervals` is the rule as a pure function; the scheduler and
the prober use :class:`BudgetPlanner`, which keeps the same plan up to date in constant time
per priced probe (a fleet of a thousand targets must not re-plan all of them after each
probe). Nothing here reads a clock or sleeps: tests feed costs in and read the plan.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SECONDS_PER_DAY = 86400.0
#: A month, for cost projections, is 30 days.
DAYS_PER_MONTH = 30
#: The mean cost per probe is taken over this many of a target's latest priced probes.
COST_SAMPLES = 20
#: Stretch factors closer to 1 than this are rounding, not a stretch.
_EPS = 1e-9


def probes_per_day(interval_s: float) -> float:
    """Probes per day of one target: one every ``interval_s`` seconds, start to start.

    Raises:
        ValueError: when the interval is not positive.
    """
    if interval_s <= 0:
        raise ValueError(f"probe interval must be positive, got {interval_s}")
    return SECONDS_PER_DAY / interval_s


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
        daily_cost_usd: projected cost per day at the effective interval, USD; None when the
            cost per probe is unknown.
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


def _daily(cost: float | None, interval_s: float) -> float | None:
    return None if cost is None else cost * probes_per_day(interval_s)


def _own_period(t: BudgetInput) -> tuple[float, str]:
    """A target's period under its own budget alone, and the note saying why."""
    cost = t.cost_per_probe_usd
    if t.paused or t.daily_budget_usd is None:
        return t.interval_s, ""  # paused: not probing, nothing to budget
    if cost is None:
        return t.interval_s, _UNKNOWN
    if cost > 0:
        needed = cost * SECONDS_PER_DAY / t.daily_budget_usd
        if needed > t.interval_s * (1 + _EPS):
            note = (
                f"stretched x{needed / t.interval_s:.2f} to fit target budget "
                f"${t.daily_budget_usd:g}/day"
            )
            return needed, note
    return t.interval_s, ""


_UNKNOWN = "cost per probe unknown: budget not enforced"


def _prober_note(factor: float, daily_budget_usd: float) -> str:
    return f"stretched x{factor:.2f} to fit prober budget ${daily_budget_usd:g}/day"


def _plan(
    t: BudgetInput, own: float, own_note: str, factor: float, daily_budget_usd: float | None
) -> PlannedInterval:
    """One target's plan from its own period and the prober-wide factor (1: none)."""
    period, note = own, own_note
    if daily_budget_usd is not None and not t.paused:
        if t.cost_per_probe_usd and factor > 1 + _EPS:
            period *= factor
            extra = _prober_note(factor, daily_budget_usd)
            note = f"{note}; {extra}" if note else extra
        elif t.cost_per_probe_usd is None and not note:
            note = _UNKNOWN
    effective = max(t.interval_s, period)
    return PlannedInterval(
        name=t.name,
        interval_s=t.interval_s,
        effective_interval_s=effective,
        cost_per_probe_usd=t.cost_per_probe_usd,
        daily_cost_usd=None if t.paused else _daily(t.cost_per_probe_usd, effective),
        daily_budget_usd=t.daily_budget_usd,
        note=note,
    )


def plan_intervals(
    targets: Sequence[BudgetInput], *, daily_budget_usd: float | None
) -> list[PlannedInterval]:
    """Stretch intervals so each target's and the overall daily cost fit their budgets.

    Args:
        targets: every scheduled target with its measured cost per probe.
        daily_budget_usd: the prober's budget for all targets together, USD per day, or None.

    Returns:
        One plan per target, in input order.
    """
    own = {t.name: _own_period(t) for t in targets}
    factor = 1.0
    if daily_budget_usd is not None:
        total = sum(
            (t.cost_per_probe_usd or 0.0) * SECONDS_PER_DAY / own[t.name][0]
            for t in targets
            if not t.paused and t.cost_per_probe_usd
        )
        factor = total / daily_budget_usd
    return [_plan(t, *own[t.name], factor, daily_budget_usd) for t in targets]


@dataclass(slots=True)
class _Entry:
    """What the planner keeps per target."""

    target: BudgetInput
    costs: deque[float]
    own: float = 0.0
    own_note: str = ""
    contribution: float = 0.0
    """This target's share of the prober-wide daily cost (0 unless paid and active)."""


class BudgetPlanner:
    """:func:`plan_intervals`, kept current one change at a time.

    A priced probe changes its own target's mean cost, so only that target's own period and
    its share of the prober-wide daily total change: both are updated in constant time. The
    prober-wide factor (``total / budget``) applies to every paid target, so it is applied
    when an interval is read instead of being written into each target.

    Args:
        targets: name, configured interval and own budget of each target (their
            ``cost_per_probe_usd`` is ignored: costs come from ``cost_history`` and
            :meth:`record_cost`).
        daily_budget_usd: the prober's budget for all targets, USD per day, or None.
        cost_history: recent ``cost_usd`` values per target name (e.g. from the database), so
            the budget holds from the first probe after a restart.
    """

    #: A prober-wide factor that moved by less than this share is not re-published.
    FACTOR_STEP = 0.001

    def __init__(
        self,
        targets: Sequence[BudgetInput],
        *,
        daily_budget_usd: float | None,
        cost_history: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        history = cost_history or {}
        self.daily_budget_usd = daily_budget_usd
        self._entries: dict[str, _Entry] = {}
        for t in targets:
            costs = deque(list(history.get(t.name, ()))[-COST_SAMPLES:], maxlen=COST_SAMPLES)
            mean = sum(costs) / len(costs) if costs else None
            entry = _Entry(dataclasses.replace(t, cost_per_probe_usd=mean), costs)
            self._entries[t.name] = entry
        self._total = 0.0
        self._updates = 0
        self._dirty: set[str] = set(self._entries)
        self._published_factor = 1.0
        for entry in self._entries.values():
            self._refresh(entry)

    # ---- inputs --------------------------------------------------------------------------

    def record_cost(self, name: str, cost_usd: float | None) -> None:
        """Feed one probe's cost into the target's mean (unpriced probes are skipped)."""
        entry = self._entries.get(name)
        if cost_usd is None or entry is None:
            return
        entry.costs.append(cost_usd)
        mean = sum(entry.costs) / len(entry.costs)
        if mean != entry.target.cost_per_probe_usd:
            entry.target = dataclasses.replace(entry.target, cost_per_probe_usd=mean)
            self._refresh(entry)

    def set_paused(self, name: str | None, paused: bool) -> None:
        """Pause (or resume) one target, or all when ``name`` is None: paused ones cost 0."""
        names = list(self._entries) if name is None else [name]
        for n in names:
            entry = self._entries.get(n)
            if entry is not None and entry.target.paused != paused:
                entry.target = dataclasses.replace(entry.target, paused=paused)
                self._refresh(entry)

    def _refresh(self, entry: _Entry) -> None:
        t = entry.target
        entry.own, entry.own_note = _own_period(t)
        paid = not t.paused and bool(t.cost_per_probe_usd)
        share = (t.cost_per_probe_usd or 0.0) * SECONDS_PER_DAY / entry.own if paid else 0.0
        self._total += share - entry.contribution
        entry.contribution = share
        self._dirty.add(t.name)
        self._updates += 1
        if self._updates % 1000 == 0:  # float drift of the running sum
            self._total = sum(e.contribution for e in self._entries.values())

    # ---- outputs -------------------------------------------------------------------------

    @property
    def factor(self) -> float:
        """The prober-wide stretch factor, ``total / budget`` (<= 1: no stretch)."""
        if self.daily_budget_usd is None:
            return 1.0
        return max(0.0, self._total) / self.daily_budget_usd

    def cost_per_probe(self, name: str) -> float | None:
        """Mean ``cost_usd`` of the target's latest priced probes, USD; None before any."""
        entry = self._entries.get(name)
        return entry.target.cost_per_probe_usd if entry else None

    def plan(self, name: str) -> PlannedInterval:
        """The target's current plan.

        Raises:
            KeyError: for a name the planner does not know.
        """
        e = self._entries[name]
        return _plan(e.target, e.own, e.own_note, self.factor, self.daily_budget_usd)

    def effective_interval(self, name: str) -> float:
        """The target's interval after budgets, seconds."""
        return self.plan(name).effective_interval_s

    def plans(self) -> list[PlannedInterval]:
        """Every target's plan, in input order."""
        return [self.plan(n) for n in self._entries]

    def take_changed(self) -> list[str]:
        """Names whose plan may have changed since the previous call.

        A move of the prober-wide factor by more than :attr:`FACTOR_STEP` (or across 1)
        marks every paid target; smaller moves wait until they add up, so a drifting total
        does not re-publish the whole fleet after every probe.
        """
        factor = self.factor
        old = self._published_factor
        crossed = (factor > 1 + _EPS) != (old > 1 + _EPS)
        if crossed or (factor > 1 + _EPS and abs(factor - old) > self.FACTOR_STEP * old):
            self._dirty.update(n for n, e in self._entries.items() if e.contribution > 0)
            self._published_factor = factor
        changed = [n for n in self._dirty]
        self._dirty.clear()
        return changed

"""Cost of monitoring and the probing budget: hand-computed schedules, no long sleeps.

The plan is a pure function of intervals, jitter and measured costs, so most checks feed
numbers in and read intervals out. The scheduler test injects its probe function and runs at
10 ms intervals; the prober test runs against one simulated provider for about a second.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from probes.budget import BudgetInput, plan_intervals, probes_per_day
from probes.config import ResolvedTarget, parse_config
from probes.record import ProbeRecord
from probes.scheduler import Scheduler
from probes.simulator import SimProfile, SimulatorProcess
from probes.timestamps import iso
from store import control
from store.costs import monitoring_report, recent_costs
from store.db import insert_probe, open_db
from store.summary import summarize
from tui.prober import published, run_prober


def test_probes_per_day_is_start_to_start() -> None:
    # Intervals are start to start and jitter only moves starts: 86400 / 60, whatever the
    # jitter (the old "interval + jitter / 2" period gave 1416 for 59 + 2 s).
    assert probes_per_day(60) == 1440
    assert probes_per_day(59) == pytest.approx(1464.4068)
    with pytest.raises(ValueError):
        probes_per_day(0)


def test_prober_budget_stretches_paid_targets_by_one_factor() -> None:
    # Two targets every 60 s at $0.001 a probe: 1440 probes × $0.001 = $1.44 a day each.
    targets = [
        BudgetInput("a", 60, 0.001),
        BudgetInput("b", 60, 0.001),
        BudgetInput("free", 60, 0.0),
        BudgetInput("unknown", 60, None),
    ]
    plan = {p.name: p for p in plan_intervals(targets, daily_budget_usd=1.44)}
    # $2.88 against $1.44: every paid interval doubles, the total lands on the budget.
    assert plan["a"].effective_interval_s == pytest.approx(120)
    assert plan["b"].effective_interval_s == pytest.approx(120)
    assert plan["a"].daily_cost_usd == pytest.approx(0.72)
    assert plan["a"].stretched and "x2.00" in plan["a"].note and "prober budget" in plan["a"].note
    assert plan["free"].effective_interval_s == 60 and not plan["free"].stretched
    assert plan["unknown"].effective_interval_s == 60
    assert "budget not enforced" in plan["unknown"].note
    # Within budget nothing changes.
    easy = plan_intervals(targets, daily_budget_usd=10.0)
    assert all(not p.stretched for p in easy) and easy[0].note == ""


def test_target_budget() -> None:
    # $0.001 a probe within $0.72 a day needs one probe per 120 s, start to start.
    (p,) = plan_intervals(
        [BudgetInput("a", 60, 0.001, daily_budget_usd=0.72)], daily_budget_usd=None
    )
    assert p.effective_interval_s == pytest.approx(120)
    assert p.daily_cost_usd == pytest.approx(0.72)
    assert "target budget $0.72/day" in p.note
    # When the cost per probe falls, the interval comes back (never below the configured one).
    (cheaper,) = plan_intervals(
        [BudgetInput("a", 60, 0.0001, daily_budget_usd=0.72)], daily_budget_usd=None
    )
    assert cheaper.effective_interval_s == 60 and not cheaper.stretched


def test_paused_targets_do_not_count() -> None:
    targets = [BudgetInput("a", 60, 0.001), BudgetInput("b", 60, 0.001, paused=True)]
    plan = plan_intervals(targets, daily_budget_usd=1.44)
    # a alone costs $1.44 a day: within budget; b costs nothing while paused.
    assert plan[0].effective_interval_s == 60 and not plan[0].stretched
    assert plan[1].daily_cost_usd is None and plan[1].note == ""


def _targets(n: int, interval_s: float, **extra: object) -> list[ResolvedTarget]:
    lines = []
    for i in range(n):
        lines += [
            "[[targets]]",
            f'name = "t{i}"',
            'provider = "openai-compatible"',
            'base_url = "http://127.0.0.1:9/v1"',
            'model = "m"',
            f"interval_s = {interval_s}",
            *(f"{k} = {v}" for k, v in extra.items()),
        ]
    return parse_config("\n".join(lines)).resolved()


def _record(target: ResolvedTarget, cost: float | None) -> ProbeRecord:
    return ProbeRecord(
        started_at=iso(datetime.now(UTC)),
        target=target.name,
        provider="openai-compatible",
        model="m",
        status="ok",
        cost_usd=cost,
    )


async def test_scheduler_stretches_from_measured_cost() -> None:
    probed: list[str] = []

    async def probe(target: ResolvedTarget, client: httpx.AsyncClient) -> ProbeRecord:
        probed.append(target.name)
        return _record(target, 1.0)

    async def sink(record: ProbeRecord) -> None:
        if len(probed) >= 6:
            stop.set()

    stop = asyncio.Event()
    # Two targets every 10 ms at $1 a probe: 2 × 8.64M probes a day = $17.28M against a
    # $864k budget: a factor of 20, so each target waits 200 ms once its cost is known.
    scheduler = Scheduler(
        _targets(2, 0.01), sink, jitter_s=0.0, daily_budget_usd=864_000.0, probe=probe
    )
    assert not any(p.stretched for p in scheduler.plan.values())  # no cost measured yet
    await asyncio.wait_for(scheduler.run(stop), 5)
    for name in ("t0", "t1"):
        assert scheduler.cost_per_probe(name) == 1.0
        assert scheduler.effective_interval(name) == pytest.approx(0.2)
        assert "prober budget" in scheduler.plan[name].note


def test_scheduler_seeded_history_applies_the_budget_at_once() -> None:
    async def sink(record: ProbeRecord) -> None:
        return None

    targets = _targets(1, 30.0, daily_budget_usd=1.0)
    # $0.01 a probe within $1 a day: one probe per 864 s, start to start (jitter moves starts,
    # not the rate).
    scheduler = Scheduler(targets, sink, jitter_s=2.0, cost_history={"t0": [0.005, 0.015]})
    assert scheduler.cost_per_probe("t0") == pytest.approx(0.01)
    assert scheduler.effective_interval("t0") == pytest.approx(864)
    scheduler.record_cost("t0", None)  # unpriced probes do not move the mean
    assert scheduler.cost_per_probe("t0") == pytest.approx(0.01)


def _probe_row(target: str, when: datetime, cost: float | None) -> ProbeRecord:
    return ProbeRecord(
        started_at=iso(when),
        target=target,
        provider="openai-compatible",
        model="m",
        status="ok",
        cost_usd=cost,
    )


def test_monitoring_cost_per_target_and_total(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    config = parse_config(
        "[prober]\njitter_s = 0\ndaily_budget_usd = 5\n"
        + "\n".join(
            f'[[targets]]\nname = "{n}"\nprovider = "openai-compatible"\n'
            f'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"\ninterval_s = 60'
            for n in ("a", "b", "c", "d")
        )
    )
    db = open_db(tmp_path / "m.db")
    control.publish_targets(db, published(config))
    control.heartbeat(db, pid=1, paused=False, config_path="x")
    for minutes, cost in ((50, 0.001), (40, 0.003), (30, None), (300, 9.0)):  # 300 m: outside
        insert_probe(db, _probe_row("a", now - timedelta(minutes=minutes), cost))
    insert_probe(db, _probe_row("b", now - timedelta(minutes=10), 0.002))
    insert_probe(db, _probe_row("c", now - timedelta(minutes=10), None))
    control.set_target_paused(db, "b", True)
    # d is stretched to 120 s by a budget.
    (plan_d,) = plan_intervals(
        [BudgetInput("d", 60, 0.0005, daily_budget_usd=0.36)], daily_budget_usd=None
    )
    control.publish_schedule(db, [plan_d], daily_budget_usd=5.0)

    report = monitoring_report(db, 3600, now)
    by = {c.target: c for c in report.targets}
    a = by["a"]
    # mean of $0.001 and $0.003 = $0.002 a probe, 1440 probes a day: $2.88 a day, $86.40 a month
    assert a.cost_per_probe_usd == pytest.approx(0.002)
    assert (a.priced_probes, a.unpriced_probes) == (2, 1)
    assert a.per_day_usd == pytest.approx(2.88) and a.per_month_usd == pytest.approx(86.4)
    assert by["b"].per_day_usd == 0 and not by["b"].active  # paused costs nothing now
    assert by["c"].per_day_usd is None  # price unknown, not $0
    # d: no probes in the window, the scheduler's $0.0005 at 720 probes a day = $0.36
    assert by["d"].effective_interval_s == pytest.approx(120)
    assert by["d"].per_day_usd == pytest.approx(0.36) and "target budget" in by["d"].budget_note
    assert report.per_day_usd == pytest.approx(3.24)
    assert report.per_month_usd == pytest.approx(97.2)
    assert report.unpriced == ["c"] and not report.complete
    assert report.daily_budget_usd == 5.0
    # The dashboard's summary carries the stretched interval and does not call d stale.
    summary = {s.name: s for s in summarize(db, 3600, now)}
    assert summary["d"].effective_interval_s == pytest.approx(120)
    assert "target budget" in summary["d"].budget_note
    assert recent_costs(db, ["a", "c"]) == {"a": [9.0, 0.001, 0.003], "c": []}
    db.close()


async def test_prober_publishes_a_stretched_interval(tmp_path: Path) -> None:
    profile = SimProfile("cheap", ttft_ms=20, tps=2000, ttft_sigma=0, tps_sigma=0, output_tokens=8)
    db_path = tmp_path / "p.db"
    with SimulatorProcess([profile]) as sim:
        config = parse_config(
            "[prober]\njitter_s = 0\ndaily_budget_usd = 0.01\n"
            "[[targets]]\n"
            'name = "sim"\nprovider = "openai-compatible"\n'
            f'base_url = "{sim.base_url("cheap")}"\nmodel = "m"\ninterval_s = 0.2\n'
            "input_usd_per_mtok = 2.5\noutput_usd_per_mtok = 10\n"
        )
        stop = asyncio.Event()
        seen: list[ProbeRecord] = []

        async def stop_once_published() -> None:
            # Poll the database as the dashboard would, until the stretched plan shows up.
            for _ in range(100):
                await asyncio.sleep(0.1)
                if not db_path.exists():
                    continue
                reader = open_db(db_path, migrate=False)
                try:
                    rows = control.published_targets(reader)
                finally:
                    reader.close()
                if rows and rows[0].stretched:
                    break
            stop.set()

        watcher = asyncio.create_task(stop_once_published())
        await asyncio.wait_for(run_prober(config, db_path, stop=stop, on_record=seen.append), 15)
        await watcher
    assert len(seen) == 1, "the budget must stretch the 0.2 s interval at once"
    cost = seen[0].cost_usd
    assert cost is not None and cost > 0
    db = open_db(db_path, migrate=False)
    (target,) = control.published_targets(db)
    # $0.01 a day at `cost` a probe: one probe every cost × 86400 / 0.01 seconds.
    assert target.effective_interval_s == pytest.approx(cost * 86400 / 0.01, rel=1e-3)
    assert target.stretched and "prober budget $0.01/day" in target.budget_note
    assert control.prober_status(db) is not None
    assert control.prober_status(db).daily_budget_usd == 0.01  # type: ignore[union-attr]
    db.close()


def test_planner_matches_the_plan_after_every_change() -> None:
    # The incremental planner must give what plan_intervals gives for the same inputs, after
    # any sequence of costs, pauses and resumes (hand-checked rules above; here, sameness).
    import random

    from probes.budget import BudgetPlanner

    rng = random.Random(3)
    inputs = [
        BudgetInput(
            f"t{i}",
            rng.choice([10.0, 30.0, 60.0]),
            daily_budget_usd=rng.choice([None, None, 0.5, 2.0]),
        )
        for i in range(40)
    ]
    for prober_budget in (None, 3.0):
        planner = BudgetPlanner(inputs, daily_budget_usd=prober_budget)
        costs: dict[str, list[float]] = {t.name: [] for t in inputs}
        paused: set[str] = set()
        for step in range(600):
            name = f"t{rng.randrange(40)}"
            roll = rng.random()
            if roll < 0.05:
                planner.set_paused(name, name not in paused)
                paused ^= {name}
            else:
                cost = rng.choice([0.0, 0.0001, 0.001, 0.01, None])
                planner.record_cost(name, cost)
                if cost is not None:
                    costs[name] = (costs[name] + [cost])[-20:]
            if step % 50 == 0:
                expected = plan_intervals(
                    [
                        BudgetInput(
                            t.name,
                            t.interval_s,
                            sum(costs[t.name]) / len(costs[t.name]) if costs[t.name] else None,
                            t.daily_budget_usd,
                            t.name in paused,
                        )
                        for t in inputs
                    ],
                    daily_budget_usd=prober_budget,
                )
                got = planner.plans()
                for e, g in zip(expected, got, strict=True):
                    assert g.effective_interval_s == pytest.approx(e.effective_interval_s)
                    assert g.note == e.note
                    assert g.cost_per_probe_usd == pytest.approx(e.cost_per_probe_usd)

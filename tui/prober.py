"""The prober process: the scheduler wired to the database (``inferwatch run --headless``).

Probes run on this process's event loop; every database write goes through one writer thread
so an SQLite commit never stalls the loop while other probes are mid-stream. Once a second
the prober heartbeats and picks up dashboard commands (pause, resume, probe now), and
publishes the interval plan whenever a probing budget stretches (or releases) an interval.

Each stored probe also advances the outage state machines (``store.history.HistoryWriter``,
in the same transaction as the row). Every few seconds the maintenance loop rolls probes up,
prunes expired rows and vacuums, one small step per writer call, so a probe's insert never
waits for more than one step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from probes.config import Config
from probes.record import ProbeRecord
from probes.scheduler import Scheduler
from store import control
from store.costs import recent_costs
from store.db import insert_probe, open_db
from store.history import HistoryWriter, MonitoredTarget, host_of
from store.outage import OutageRules
from store.rollups import Retention, maintenance_steps
from tui.oncall import OnCall, under_maintenance

T = TypeVar("T")

_CONTROL_PERIOD_S = 0.5
#: Heartbeat writes are rarer than command polls: each commit wakes every reader.
_HEARTBEAT_PERIOD_S = 2.0
#: Seconds between two maintenance passes (rollups, retention, vacuum).
MAINTENANCE_PERIOD_S = 5.0


def _set_paused(
    history: HistoryWriter, db: sqlite_utils.Database, *, name: str | None, paused: bool
) -> None:
    """Publish a pause/resume and record it in the outage history (writer thread)."""
    control.set_target_paused(db, name, paused)
    history.set_paused(name, paused, datetime.now(UTC))


class DbWriter:
    """Owns the prober's database connection on a single dedicated thread."""

    def __init__(self, path: Path) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inferwatch-db")
        self._db: sqlite_utils.Database | None = None
        self._path = path

    def _get(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = open_db(self._path)
        return self._db

    async def call(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn(db)`` on the writer thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._get()))

    def close(self) -> None:
        """Close the connection and stop the thread."""

        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._pool.submit(_close).result()
        self._pool.shutdown()


def published(config: Config) -> list[control.PublishedTarget]:
    """The config's enabled targets as the dashboard will list them."""
    return [
        control.PublishedTarget(
            name=t.name,
            provider=t.config.provider,
            model=t.config.model,
            group_name=t.config.group,
            interval_s=t.settings.interval_s,
            configured=t.is_configured(),
            paused=False,
            jitter_s=config.prober.jitter_s,
            effective_interval_s=t.settings.interval_s,
            daily_budget_usd=t.settings.daily_budget_usd,
        )
        for t in config.resolved()
    ]


def _next_step(steps: Iterator[str], db: sqlite_utils.Database) -> str | None:
    return next(steps, None)


def monitored(config: Config, now: datetime | None = None) -> list[MonitoredTarget]:
    """The config's enabled targets with their hosts, outage rules and maintenance now."""
    maintenance = under_maintenance(config, now or datetime.now(UTC))
    return [
        MonitoredTarget(
            name=t.name,
            host=host_of(t.base_url),
            rules=OutageRules.from_settings(t.settings),
            configured=t.is_configured(),
            maintenance=t.name in maintenance,
        )
        for t in config.resolved()
    ]


async def run_prober(
    config: Config,
    db_path: Path,
    *,
    config_label: str = "",
    stop: asyncio.Event | None = None,
    on_record: Callable[[ProbeRecord], None] | None = None,
    parent_pid: int | None = None,
    metrics_listen: str | None = None,
) -> None:
    """Probe on schedule, writing to ``db_path``, until ``stop`` is set or SIGTERM/SIGINT.

    Args:
        config: the validated config.
        db_path: the database file (created and migrated if needed).
        config_label: shown by the dashboard as where the targets came from.
        stop: set it to stop; created (and wired to SIGTERM/SIGINT) when None.
        on_record: optional callback for each record (e.g. a log line).
        parent_pid: stop when this process (the dashboard that started us) is gone, so a
            killed dashboard never leaves an orphan prober behind.
        metrics_listen: ``HOST:PORT`` of ``/metrics`` (default: ``[metrics] listen``).

    Raises:
        OSError: the metrics port cannot be bound.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    oncall = OnCall(config, db_path, metrics_listen=metrics_listen)  # alerts and /metrics
    writer = DbWriter(db_path)
    targets = published(config)
    await writer.call(lambda db: control.publish_targets(db, targets))
    watched = monitored(config)
    history = await writer.call(lambda db: HistoryWriter(db, watched, datetime.now(UTC)))
    await writer.call(lambda db: oncall.attach(history))
    retention = Retention(config.history.raw_retention_days, config.history.rollup_retention_days)
    names = [t.name for t in targets]
    cost_history = await writer.call(lambda db: recent_costs(db, names))

    async def sink(record: ProbeRecord) -> None:
        oncall.on_record(record)
        await writer.call(lambda db: history.store_probe(record))
        if on_record is not None:
            on_record(record)

    scheduler = Scheduler(
        config.resolved(),
        sink,
        max_concurrency=config.prober.max_concurrency,
        jitter_s=config.prober.jitter_s,
        daily_budget_usd=config.prober.daily_budget_usd,
        cost_history=cost_history,
    )
    pid = os.getpid()
    published_plan: dict[str, tuple[float, str, float | None]] = {}

    async def control_loop() -> None:
        last_beat: tuple[float, bool] | None = None
        nonlocal published_plan
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                stop.set()
                break
            all_paused = bool(scheduler.targets) and len(scheduler.paused) >= len(scheduler.targets)
            now = loop.time()
            if (
                last_beat is None
                or last_beat[1] != all_paused
                or (now - last_beat[0] >= _HEARTBEAT_PERIOD_S)
            ):
                await writer.call(lambda db: history.heartbeat(datetime.now(UTC)))
                await writer.call(
                    functools.partial(
                        control.heartbeat, pid=pid, paused=all_paused, config_path=config_label
                    )
                )
                last_beat = (now, all_paused)
            plans = list(scheduler.plan.values())
            shown = {
                p.name: (round(p.effective_interval_s, 1), p.note, p.cost_per_probe_usd)
                for p in plans
            }
            if shown != published_plan:
                await writer.call(
                    functools.partial(
                        control.publish_schedule,
                        plans=plans,
                        daily_budget_usd=config.prober.daily_budget_usd,
                    )
                )
                published_plan = shown
            for cmd in await writer.call(control.take_commands):
                if cmd.command in ("pause", "resume"):
                    pause = cmd.command == "pause"
                    if pause:
                        scheduler.pause(cmd.target)
                    else:
                        scheduler.resume(cmd.target)
                    await writer.call(
                        functools.partial(_set_paused, history, name=cmd.target, paused=pause)
                    )
                elif cmd.command == "probe_now":
                    scheduler.probe_now(cmd.target)
            await writer.call(lambda db: oncall.tick())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CONTROL_PERIOD_S)

    async def maintenance_loop() -> None:
        while not stop.is_set():
            steps: Iterator[str] = await writer.call(
                lambda db: maintenance_steps(db, datetime.now(UTC), retention)
            )
            # One step per writer call: queued probe inserts run in between.
            while not stop.is_set():
                if await writer.call(functools.partial(_next_step, steps)) is None:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MAINTENANCE_PERIOD_S)

    try:
        await asyncio.gather(scheduler.run(stop), control_loop(), maintenance_loop())
    finally:
        oncall.close()
        writer.close()


async def probe_once(config: Config, db_path: Path | None) -> list[ProbeRecord]:
    """One round over every configured target; records are stored when ``db_path`` is given."""
    writer = DbWriter(db_path) if db_path else None
    try:
        if writer is not None:
            targets = published(config)
            await writer.call(lambda db: control.publish_targets(db, targets))

        vantage = config.prober.vantage_name()

        async def sink(record: ProbeRecord) -> None:
            record.vantage = record.vantage or vantage
            if writer is not None:
                await writer.call(lambda db: insert_probe(db, record))

        scheduler = Scheduler(
            config.resolved(), sink, max_concurrency=config.prober.max_concurrency
        )
        return await scheduler.run_once()
    finally:
        if writer is not None:
            writer.close()

"""The prober process: probing workers wired to the database (``inferwatch run --headless``).

One prober per database, seen by the dashboard and ``status`` as one process (one heartbeat
row, one pid to signal). Inside it:

* Worker processes (``tui.prober_worker``) probe, each on its own event loop, so probing runs
  on every core and a measurement never waits for a database commit. Targets are sharded
  round-robin over them; phases are assigned here over the whole fleet, so starts are spread
  evenly however the targets are sharded. A worker that dies is restarted (and said so on the
  status line and in the log); commands (pause, resume, probe now) go to the worker that owns
  the target.
* This process plans probing budgets (:class:`~probes.budget.BudgetPlanner`, it sees every
  target's cost) and tells the workers about intervals that changed.
* One writer thread (:class:`tui.prober_writer.DbWriter`) owns the database connection.
  Probes are stored in batches, each with its effect on outage state
  (``store.history.HistoryWriter``) in the same transaction. When the database cannot take
  them (disk full, locked), probes are held in a bounded buffer and retried with backoff;
  probing never stops and the status line says so.
* The prober holds its database's lock (``tui.prober_lock``) for its whole life, and stops
  when the database is deleted or replaced under it, or the dashboard that started it is
  gone. Its log has a line per state change, monitor gap and start/stop (``tui.prober_log``).
* Once a second the control loop heartbeats, picks up dashboard commands and publishes the
  interval plan, skipped ticks and loop errors; every few seconds the maintenance loop rolls
  probes up, prunes and vacuums, one small step per writer call.

Hooks: every stored probe, with the state changes it caused, passes through one place,
:meth:`Prober.stored` (on this process's event loop, after its commit); alert delivery and
metrics attach there, and must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from probes.budget import BudgetInput, BudgetPlanner
from probes.cache_check import CacheCheckResult
from probes.config import Config, ResolvedTarget
from probes.official_status import OfficialStatus, StatusPoller, config_sources
from probes.record import ProbeRecord
from probes.scheduler import Phase, Scheduler, assign_phases
from probes.timestamps import parse_iso
from store import control
from store.cache_checks import save_cache_check
from store.costs import recent_costs
from store.db import insert_probe
from store.history import (
    HistoryWriter,
    MonitoredTarget,
    StoredProbe,
    host_of,
    last_probe_starts,
    steady_clock,
)
from store.inflight import InFlightBoard, publish_in_flight
from store.official_status import save_statuses
from store.outage import Event, OutageRules, Transition, network_path
from store.rollups import Retention, maintenance_steps
from tui.oncall import OnCall, under_maintenance
from tui.prober_fleet import Worker, default_workers, describe_exit
from tui.prober_log import log, log_events, log_gap
from tui.prober_problems import (
    NOTICE_S,
    OVERLOAD_NOTICE_S,
    OVERLOADED_LAG_MS,
    Problems,
    clock_text,
    overload_text,
)
from tui.prober_worker import WorkerInit
from tui.prober_writer import DbWriter

_CONTROL_PERIOD_S = 0.5
#: Heartbeat writes are rarer than command polls: each commit wakes every reader.
_HEARTBEAT_PERIOD_S = 2.0
#: Seconds between two maintenance passes (rollups, retention, vacuum).
MAINTENANCE_PERIOD_S = 5.0
#: A probe that read more token events than this (a canary asks for tens of tokens), or hit a
#: stream cap, held its worker's event loop for long: its target moves to a quarantine worker
#: so that it stops delaying the stamps of the targets it shared a loop with.
HEAVY_EVENTS = 2_000
#: A worker that sends nothing for this long is killed and restarted (it reports every 2 s).
WORKER_SILENT_S = 30.0
#: Seconds a stopping worker gets before it is killed.
_WORKER_STOP_S = 5.0


def _set_paused(
    history: HistoryWriter, db: sqlite_utils.Database, *, name: str | None, paused: bool
) -> list[Event]:
    """Publish a pause/resume and record it in the outage history (writer thread); returns
    what it changed."""
    control.set_target_paused(db, name, paused)
    return history.set_paused(name, paused, datetime.now(UTC))


# ---- clocks ------------------------------------------------------------------------------


class SteadyWallClock:
    """UTC time that cannot run ahead of the steady clock: the wall time at construction plus
    the steady time since, or the wall clock when that is earlier.

    Retention measures ages from it (and from the newest stored probe, ``store.rollups``):
    a wall clock stepped ahead by days while the prober runs deletes nothing early.

    Args:
        wall: the current UTC time (inject for tests).
        steady: a clock that never jumps, seconds (``store.history.steady_clock``).
    """

    def __init__(
        self,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        steady: Callable[[], float] = steady_clock,
    ) -> None:
        self._wall, self._steady = wall, steady
        self._anchor = (wall(), steady())

    def now(self) -> datetime:
        """The current UTC time, at most as far from the start as the steady clock went."""
        wall_at, steady_at = self._anchor
        return min(self._wall(), wall_at + timedelta(seconds=self._steady() - steady_at))


class Prober:
    """The prober's state on its event loop: workers, plan, problems, the writer.

    Use :func:`run_prober`; this class exists so each part has a name.
    """

    def __init__(
        self,
        config: Config,
        writer: DbWriter,
        stop: asyncio.Event,
        *,
        config_label: str,
        on_record: Callable[[ProbeRecord], None] | None,
        parent_pid: int | None,
        oncall: OnCall | None = None,
    ) -> None:
        self.config = config
        self.oncall = oncall
        self.writer = writer
        self.stop = stop
        self.config_label = config_label
        self.on_record = on_record
        self.parent_pid = parent_pid
        self.loop = asyncio.get_running_loop()
        self.problems = Problems()
        self.resolved = config.resolved()
        self.targets = [t for t in self.resolved if t.is_configured()]
        self.by_name = {t.name: t for t in self.targets}
        self.paused: set[str] = set()
        self.skipped: dict[str, int] = {}
        self.in_flight = InFlightBoard()
        self.loop_errors: dict[str, str] = {}
        self._health_dirty: set[str] = set()
        self._plan_dirty: set[str] = set()
        self.last_start: dict[str, float] = {}
        self.workers: list[Worker] = []
        self.owner: dict[str, Worker] = {}
        self.history: HistoryWriter | None = None
        self.planner: BudgetPlanner | None = None
        self.phases: dict[str, Phase] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._config_json: str | None = None
        self.clock = SteadyWallClock()
        self.ended: str | None = None
        """Why the prober stopped on its own (its database deleted or replaced, its
        dashboard gone), None when asked to stop."""

    # ---- start ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Publish targets, load outage state and costs, plan budgets and phases."""
        writer, config = self.writer, self.config
        count = config.prober.workers or default_workers(self.targets)
        count = min(count, len(self.targets))
        self.workers = [Worker(i, []) for i in range(count)]
        for i, t in enumerate(self.targets):
            w = self.workers[i % count]
            w.names.append(t.name)
            self.owner[t.name] = w
        resolved = self.resolved
        targets = published(config, resolved)
        await writer.call(lambda db: control.publish_targets(db, targets))
        watched = monitored(config, resolved=resolved)
        self.history = await writer.call(lambda db: HistoryWriter(db, watched, datetime.now(UTC)))
        history = self.history
        if history.start_gap is not None:
            gap = history.start_gap
            log_gap(gap.started_at, gap.ended_at, gap.message)
        oncall = self.oncall
        if oncall is not None:
            await writer.call(lambda db: oncall.attach(history))
        # The dashboard sees this prober from now on (the gap since the last one is recorded).
        await self.beat()
        writer.store_fn = lambda db, records: history.store_probes(records)
        writer.recover = history.reload
        writer.on_stored = lambda items: self.loop.call_soon_threadsafe(self.stored, items)
        writer.on_drop = lambda record, exc: self.loop.call_soon_threadsafe(
            self._dropped, record, exc
        )
        names = [t.name for t in self.targets]
        cost_history = await writer.call(lambda db: recent_costs(db, names))
        starts = await writer.call(lambda db: last_probe_starts(db, names))
        self.planner = BudgetPlanner(
            [
                BudgetInput(
                    t.name, t.settings.interval_s, daily_budget_usd=t.settings.daily_budget_usd
                )
                for t in self.targets
            ],
            daily_budget_usd=config.prober.daily_budget_usd,
            cost_history=cost_history,
        )
        self._plan_dirty.update(self.planner.take_changed())
        now_wall, now = time.time(), self.loop.time()
        for name, started_at in starts.items():
            with contextlib.suppress(ValueError):
                self.last_start[name] = now - (now_wall - parse_iso(started_at).timestamp())
        self.phases = assign_phases([(t.name, t.settings.interval_s) for t in self.targets])

    def _init_for(self, w: Worker) -> WorkerInit:
        assert self.planner is not None
        names = set(w.names)
        now = self.loop.time()
        intervals = {n: self.planner.effective_interval(n) for n in w.names}
        not_before = {}
        for n in w.names:
            last = self.last_start.get(n)
            if last is not None and last + intervals[n] > now:
                not_before[n] = last + intervals[n] - now
        if self._config_json is None:
            self._config_json = self.config.model_dump_json()
        return WorkerInit(
            index=w.index,
            config=self._config_json,
            names=list(w.names),
            jitter_s=self.config.prober.jitter_s,
            # The cap is for the whole prober: each worker gets its share.
            max_concurrency=None
            if self.config.prober.max_concurrency is None
            else math.ceil(self.config.prober.max_concurrency / len(self.workers)),
            intervals=intervals,
            phases={n: [self.phases[n].phase_s, self.phases[n].slot_s] for n in w.names},
            not_before=not_before,
            paused=sorted(self.paused & names),
        )

    # ---- workers -------------------------------------------------------------------------

    async def supervise(self, w: Worker) -> None:
        """Run worker ``w`` until stop, restarting it when it dies."""
        delay = 1.0
        while not self.stop.is_set():
            started = self.loop.time()
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tui.prober_worker",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=1 << 26,
                )
            except OSError as exc:
                self._worker_problem(w, f"worker {w.index} could not start: {exc}")
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            w.proc, w.pid = proc, proc.pid
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(self._init_for(w).to_json().encode() + b"\n")
            hung = False
            while True:
                try:
                    # A worker reports at least every couple of seconds; silence this long
                    # means its event loop is stuck (and so is every probe on it).
                    line = await asyncio.wait_for(proc.stdout.readline(), WORKER_SILENT_S)
                except TimeoutError:
                    hung = True
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    break
                if not line:
                    break
                try:
                    self._message(w, json.loads(line))
                except Exception as exc:  # a bad line must not end the reader
                    log(f"worker {w.index}: unreadable message ({exc!r})")
            code = await proc.wait()
            w.proc = None
            if self.stop.is_set():
                break
            w.restarts += 1
            why = (
                f"silent for {WORKER_SILENT_S:g} s, its event loop stuck"
                if hung
                else describe_exit(code)
            )
            self._worker_problem(
                w, f"worker {w.index} (pid {w.pid}) died ({why}) at {clock_text()}, restarted"
            )
            if self.loop.time() - started > 60:
                delay = 1.0
            await self._sleep(delay)
            delay = min(delay * 2, 30.0)

    def _background(self, work: Awaitable[Any], what: str) -> None:
        """Run ``work`` (a database call) without waiting for it; a failure is logged as
        ``what`` failing."""

        async def run() -> None:
            try:
                await work
            except Exception as exc:
                log(f"{what} failed: {exc!r}")

        task = self.loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def poll_status(self) -> None:
        """Read the providers' official status pages on their own slow schedule (own task,
        own client: a hanging page never delays a probe) and store each round."""
        status = self.config.status
        sources = config_sources(self.config) if status.enabled else []
        if not sources:
            return

        async def sink(readings: Sequence[tuple[OfficialStatus, tuple[str, ...]]]) -> None:
            try:
                await self.writer.call(lambda db: save_statuses(db, readings))
            except Exception as exc:
                log(f"storing official status failed: {exc!r}")

        poller = StatusPoller(sources, sink, status.interval_s, status.timeout_s)
        try:
            await poller.run(self.stop)
        except Exception as exc:  # the status pages are a side show: never take the prober down
            log(f"official status poller stopped: {exc!r}")

    def _worker_problem(self, w: Worker, text: str) -> None:
        log(text)
        self.problems.set(f"worker:{w.index}", text, NOTICE_S)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _message(self, w: Worker, msg: dict[str, Any]) -> None:
        kind = msg.get("k")
        if kind == "rec":
            self._record(ProbeRecord(**msg["r"]))
        elif kind == "stats":
            w.lag_ms = msg.get("lag_ms")
            if w.lag_ms is not None and w.lag_ms >= OVERLOADED_LAG_MS:
                # Is it us or them: a late loop puts our own wait into the latencies.
                self.problems.set("overload", overload_text(w.lag_ms), OVERLOAD_NOTICE_S)
            w.in_flight = int(msg.get("in_flight") or 0)
            for key, count in (msg.get("skipped_by") or {}).items():
                self.skipped[key] = int(count)
                self._health_dirty.add(key.split("#", 1)[0])
            # Probes in flight, for "probing 12s" instead of stale (store/inflight.py).
            if rows := self.in_flight.changes(w.names, msg.get("in_flight_since") or {}):
                self._background(
                    self.writer.call(lambda db: publish_in_flight(db, rows)),
                    "publishing probes in flight",
                )
        elif kind == "err":
            target, error = str(msg.get("target")), str(msg.get("error"))
            text = f"probe loop of {target!r} hit {error} at {clock_text()} (it carried on)"
            log(text)
            self.problems.set("loop", text, NOTICE_S)
            if target in self.by_name:
                self.loop_errors[target] = f"{clock_text()} {error}"
                self._health_dirty.add(target)
        elif kind == "cache":
            result = CacheCheckResult(**msg["r"])
            self._background(
                self.writer.call(lambda db: save_cache_check(db, result)), "storing a cache check"
            )
        elif kind == "ready":
            w.pid = int(msg["pid"])
            log(f"worker {w.index} probing {len(w.names)} targets (pid {w.pid})")

    def _record(self, record: ProbeRecord) -> None:
        assert self.planner is not None
        self.last_start[record.target] = self.loop.time() - (record.total_ms or 0.0) / 1000
        if self.oncall is not None:
            self.oncall.on_record(record)  # vantage stamp and metrics, before it is stored
        if record.cost_usd is not None and record.kind == "canary":
            # Budgets stretch the canary's interval from the canary's cost: a workload's long
            # prompt is not what one canary probe costs.
            self.planner.record_cost(record.target, record.cost_usd)
            self._replan()
        self.writer.store(record)
        heavy = record.error_kind == "too_large" or record.token_events > HEAVY_EVENTS
        owner = self.owner.get(record.target)
        if heavy and owner is not None and not owner.quarantine and len(owner.names) > 1:
            why = record.error_kind if record.error_kind else f"{record.token_events} events"
            self.quarantine(record.target, why)

    def quarantine(self, name: str, why: str) -> None:
        """Move ``name`` to the quarantine worker (started on first use): a target whose
        streams take its loop for long must not delay the others' stamps. It stays there
        until the prober restarts."""
        assert self.planner is not None
        old = self.owner[name]
        worker = next((w for w in self.workers if w.quarantine), None)
        if worker is None:
            worker = Worker(len(self.workers), [], quarantine=True)
            self.workers.append(worker)
            task = self.loop.create_task(self.supervise(worker))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        old.names.remove(name)
        worker.names.append(name)
        self.owner[name] = worker
        old.send({"k": "drop", "target": name})
        interval = self.planner.effective_interval(name)
        last = self.last_start.get(name)
        phase = self.phases[name]
        worker.send(
            {
                "k": "add",
                "target": name,
                "interval_s": interval,
                "phase": [phase.phase_s, phase.slot_s],
                "not_before_s": 0.0 if last is None else last + interval - self.loop.time(),
                "paused": name in self.paused,
            }
        )
        text = (
            f"{name!r} moved to a quarantine worker at {clock_text()}: "
            f"its streams are heavy ({why})"
        )
        log(text)
        self.problems.set(f"worker:quarantine:{name}", text, NOTICE_S)

    def _replan(self) -> None:
        assert self.planner is not None
        changed = self.planner.take_changed()
        if not changed:
            return
        self._plan_dirty.update(changed)
        per_worker: dict[int, dict[str, float]] = {}
        for name in changed:
            w = self.owner.get(name)
            if w is not None:
                per_worker.setdefault(w.index, {})[name] = self.planner.effective_interval(name)
        for index, intervals in per_worker.items():
            self.workers[index].send({"k": "intervals", "s": intervals})

    def stored(self, items: list[StoredProbe]) -> None:
        """Every stored probe passes here, with the state changes it caused (on the loop,
        after its commit). Metrics hook in here; nothing may block."""
        transitions: list[Transition] = []
        for item in items:
            if self.on_record is not None:
                self.on_record(item.record)
            transitions += item.transitions
            # The network gaps they opened or closed (state changes are logged below).
            log_events([e for e in item.events if not isinstance(e, Transition)])
        if transitions:
            self.state_changed(transitions)

    def state_changed(self, transitions: list[Transition]) -> None:
        """Every committed state change passes here: those probes caused (via
        :meth:`stored`) and pauses and resumes. Each is one log line (``tui.prober_log``);
        alert delivery hooks in here too; nothing may block."""
        log_events(transitions)

    def _dropped(self, record: ProbeRecord, exc: BaseException) -> None:
        text = f"a probe of {record.target!r} could not be stored ({exc!r})"
        self.problems.set("storage:refused", text, NOTICE_S)

    async def stop_workers(self) -> None:
        """Ask every worker to stop; kill the ones that do not within a few seconds."""
        for w in self.workers:
            w.send({"k": "stop"})
            if w.proc is not None and w.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    w.proc.stdin.close()
        deadline = self.loop.time() + _WORKER_STOP_S
        for w in self.workers:
            proc = w.proc
            if proc is None:
                continue
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - self.loop.time()))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    # ---- commands and publishing -----------------------------------------------------------

    def command(self, cmd: control.Command) -> None:
        """Apply a dashboard command: to the owning worker, or to all for every target."""
        assert self.planner is not None
        if cmd.command in ("pause", "resume"):
            pause = cmd.command == "pause"
            names = [cmd.target] if cmd.target else list(self.by_name)
            if pause:
                self.paused.update(n for n in names if n in self.by_name)
            else:
                self.paused.difference_update(names)
            self.planner.set_paused(cmd.target, pause)
            self._replan()
        if cmd.target is None:
            workers = self.workers
        elif cmd.target in self.owner:
            workers = [self.owner[cmd.target]]
        else:
            workers = []  # an unknown or unconfigured target: nothing probes it
        for w in workers:
            w.send({"k": cmd.command, "target": cmd.target})

    def all_paused(self) -> bool:
        """True when every probed target is paused."""
        return bool(self.targets) and len(self.paused) >= len(self.targets)

    def storage_problem(self) -> None:
        """Say on the status line whether probes are waiting for the database."""
        status = self.writer.status()
        if status.failing_since is None:
            self.problems.clear("storage")
            return
        since = datetime.now(UTC).timestamp() - (time.monotonic() - status.failing_since)
        when = datetime.fromtimestamp(since, UTC).strftime("%H:%M:%SZ")
        dropped = f", {status.dropped} dropped" if status.dropped else ""
        self.problems.set(
            "storage",
            f"storage failing since {when} ({status.error}): {status.held} probes held"
            f"{dropped}, retrying",
        )

    def stats_json(self) -> str:
        """The prober's own figures, for the heartbeat row."""
        status = self.writer.status()
        return json.dumps(
            {
                "workers": [
                    {"pid": w.pid, "targets": len(w.names), "lag_ms": w.lag_ms}
                    | {"in_flight": w.in_flight, "restarts": w.restarts}
                    | {"quarantine": w.quarantine}
                    for w in self.workers
                ],
                "held": status.held,
                "dropped": status.dropped,
            },
            separators=(",", ":"),
        )

    async def publish(self) -> None:
        """Publish the plan and target health that changed since the last call."""
        assert self.planner is not None
        if self._plan_dirty:
            names, self._plan_dirty = self._plan_dirty, set()
            plans = [self.planner.plan(n) for n in names]
            await self.writer.call(
                functools.partial(
                    control.publish_schedule,
                    plans=plans,
                    daily_budget_usd=self.config.prober.daily_budget_usd,
                )
            )
        if self._health_dirty:
            names, self._health_dirty = self._health_dirty, set()
            rows = [(n, self.skipped.get(n, 0), self.loop_errors.get(n)) for n in names]
            await self.writer.call(lambda db: control.publish_target_health(db, rows))

    async def beat(self) -> None:
        """Heartbeat: record a gap if we were stalled, then say we are alive and how."""
        assert self.history is not None
        history = self.history
        gap = await self.writer.call(lambda db: history.heartbeat(datetime.now(UTC)))
        if gap is not None:
            log_gap(gap.started_at, gap.ended_at, gap.message)
        await self.writer.call(
            functools.partial(
                control.heartbeat,
                pid=os.getpid(),
                paused=self.all_paused(),
                config_path=self.config_label,
                workers=len(self.workers),
                problem=self.problems.text(),
                skipped_ticks=sum(self.skipped.values()),
                stats=self.stats_json(),
            )
        )

    async def control_loop(self) -> None:
        """Heartbeat, commands and publishing, about twice a second; survives any error."""
        last_beat: tuple[float, bool] | None = (self.loop.time(), self.all_paused())
        assert self.history is not None
        history = self.history
        while not self.stop.is_set():
            try:
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self.ended = "the dashboard that started this prober is gone"
                    log(f"{self.ended}: stopping", "lifecycle")
                    self.stop.set()
                    break
                gone = self.writer.gone()
                if gone is not None:
                    # Writing on would fill a file nobody can open again: stop, and say so
                    # (the dashboard says so too); a new start creates the database afresh.
                    self.ended = f"the database {self.writer.path} was {gone}"
                    self.writer.drop_sidecars()
                    log(
                        f"{self.ended} under the prober: stopping, nothing more is written to "
                        "it; start the prober again to probe into a new database",
                        "lifecycle",
                    )
                    self.stop.set()
                    break
                self.storage_problem()
                all_paused = self.all_paused()
                now = self.loop.time()
                if (
                    last_beat is None
                    or last_beat[1] != all_paused
                    or now - last_beat[0] >= _HEARTBEAT_PERIOD_S
                ):
                    last_beat = (now, all_paused)
                    await self.beat()
                await self.publish()
                if self.oncall is not None:
                    await self.writer.call(functools.partial(_tick, self.oncall))
                for cmd in await self.writer.call(control.take_commands):
                    self.command(cmd)
                    if cmd.command in ("pause", "resume"):
                        events = await self.writer.call(
                            functools.partial(
                                _set_paused, history, name=cmd.target, paused=cmd.command == "pause"
                            )
                        )
                        changed = [e for e in events if isinstance(e, Transition)]
                        if changed:
                            self.state_changed(changed)
            except Exception as exc:
                # A failing write (disk full, locked) or a bug: say so, keep going.
                log(f"control loop: {exc!r}")
            await self._sleep(_CONTROL_PERIOD_S)

    async def maintenance_loop(self, retention: Retention) -> None:
        """Rollups, retention and vacuum, one small step per writer call (none while storage
        fails: probes come first)."""
        while not self.stop.is_set():
            try:
                if self.writer.status().failing_since is not None:
                    await self._sleep(MAINTENANCE_PERIOD_S)
                    continue
                steps: Iterator[str] = await self.writer.call(
                    functools.partial(_maintenance, now=self.clock.now(), retention=retention)
                )
                # One step per writer call: queued probe inserts run in between.
                while not self.stop.is_set():
                    if await self.writer.call(functools.partial(_next_step, steps)) is None:
                        break
            except Exception as exc:
                log(f"maintenance: {exc!r}")
            await self._sleep(MAINTENANCE_PERIOD_S)


def published(
    config: Config, resolved: Sequence[ResolvedTarget] | None = None
) -> list[control.PublishedTarget]:
    """The config's enabled targets as the dashboard will list them (``resolved``: the
    config's :meth:`~probes.config.Config.resolved` targets, when already at hand)."""
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
            network_path=network_path(host_of(t.base_url)),
            api_key_env=t.config.api_key_env,
        )
        for t in (config.resolved() if resolved is None else resolved)
    ]


def _tick(oncall: OnCall, db: sqlite_utils.Database) -> None:
    oncall.tick()


def _maintenance(db: sqlite_utils.Database, now: datetime, retention: Retention) -> Iterator[str]:
    return maintenance_steps(db, now, retention)


def _next_step(steps: Iterator[str], db: sqlite_utils.Database) -> str | None:
    return next(steps, None)


def monitored(
    config: Config,
    now: datetime | None = None,
    resolved: Sequence[ResolvedTarget] | None = None,
) -> list[MonitoredTarget]:
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
        for t in (config.resolved() if resolved is None else resolved)
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
) -> str | None:
    """Probe on schedule, writing to ``db_path``, until ``stop`` is set or SIGTERM/SIGINT.

    Returns None when asked to stop, or why it stopped on its own: its database deleted or
    replaced (nothing more is written into the unlinked file), its dashboard gone.

    Args:
        config: the validated config.
        db_path: the database file (created and migrated if needed).
        config_label: shown by the dashboard as where the targets came from.
        stop: set it to stop; created (and wired to SIGTERM/SIGINT) when None.
        on_record: optional callback for each stored record (e.g. a log line).
        parent_pid: stop when this process (the dashboard that started us) is gone, so a
            killed dashboard never leaves an orphan prober behind.
        metrics_listen: ``HOST:PORT`` of ``/metrics`` (default: ``[metrics] listen``).

    Raises:
        OSError: the metrics port cannot be bound.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
            continue  # started under nohup: a closed terminal must not stop it
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    oncall = OnCall(config, db_path, metrics_listen=metrics_listen)  # alerts and /metrics
    writer = DbWriter(db_path)
    prober = Prober(
        config,
        writer,
        stop,
        config_label=config_label,
        on_record=on_record,
        parent_pid=parent_pid,
        oncall=oncall,
    )
    retention = Retention(config.history.raw_retention_days, config.history.rollup_retention_days)
    try:
        await prober.prepare()
        # This process does not measure: a plain freeze keeps start-up objects out of its
        # collections, the default thresholds stay.
        gc.collect()
        gc.freeze()
        tasks = [
            asyncio.create_task(prober.control_loop()),
            asyncio.create_task(prober.maintenance_loop(retention)),
            asyncio.create_task(prober.poll_status()),
            *(asyncio.create_task(prober.supervise(w)) for w in prober.workers),
        ]
        await stop.wait()
        log(f"stopping ({prober.ended or 'asked to'})", "lifecycle")
        await prober.stop_workers()
        await asyncio.gather(*tasks, *prober._tasks, return_exceptions=True)
    finally:
        oncall.close()
        # Held probes are stored before exit, unless the file is gone: then not one more.
        flush_s = 0.0 if writer.gone() else 10.0
        await loop.run_in_executor(None, functools.partial(writer.close, flush_s))
    return prober.ended


async def probe_once(
    config: Config,
    db_path: Path | None,
    on_record: Callable[[ProbeRecord], None] | None = None,
) -> list[ProbeRecord]:
    """One round over every configured target; records are stored when ``db_path`` is given
    and handed to ``on_record`` as each probe ends (``probe --once`` prints them then, so an
    interrupted round still shows what finished)."""
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
            if on_record is not None:
                on_record(record)

        scheduler = Scheduler(
            config.resolved(), sink, max_concurrency=config.prober.max_concurrency
        )
        return await scheduler.run_once()
    finally:
        if writer is not None:
            writer.close()

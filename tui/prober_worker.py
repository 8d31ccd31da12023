"""A prober worker process: one event loop probing a shard of the targets.

``tui.prober`` starts one or more of these (``python -m tui.prober_worker``) so that probing
runs on every core while one process owns the database. A worker never touches the database:
it measures and reports.

Protocol (JSON, one object per line):

* stdin, first line: :class:`WorkerInit` as a dict; then commands ``{"k": "pause" | "resume"
  | "probe_now", "target": name or null}``, ``{"k": "intervals", "s": {name: seconds}}``,
  ``{"k": "drop", "target": name}`` and ``{"k": "add", "target": name, "interval_s": s,
  "phase": [phase_s, slot_s], "not_before_s": s, "paused": bool}`` (a target moving between
  workers), ``{"k": "stop"}``. End of input (the prober died) stops the worker too.
* stdout: ``{"k": "ready", "pid": n}`` once probing; ``{"k": "rec", "r": record}`` per probe;
  ``{"k": "err", "target": name, "error": text}`` when a probe loop hit an exception (also on
  stderr, which is the prober's log); ``{"k": "stats", ...}`` every couple of seconds with
  skipped ticks (``skipped_by``: per schedule, the ones that changed), loop lag and probes in
  flight.

Anything else the process prints goes to stderr: stdout is the protocol only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from probes.arrival import new_stamping_loop
from probes.coldstart import IdleTracker
from probes.config import Config, ResolvedTarget
from probes.questions import CheckSchedule, QuestionChecks
from probes.record import ProbeRecord
from probes.scheduler import Phase, Schedule, Scheduler, report_to_stderr

#: Seconds between two stats messages.
STATS_PERIOD_S = 2.0
#: Collector thresholds once start-up is done (see :func:`settle_gc`): young collections
#: stay small (under a millisecond); the oldest generation is never collected on its own.
GC_THRESHOLDS = (2_000, 10, 1_000_000_000)
#: Seconds between two full collections (see :func:`settle_gc`).
GC_FULL_EVERY_S = 60.0


@dataclass
class WorkerInit:
    """What a worker needs to start.

    Attributes:
        index: worker number (0-based), for messages.
        config: the whole config as JSON (``Config.model_dump_json``).
        names: the targets this worker probes (its shard).
        jitter_s: the scheduler's jitter, seconds.
        max_concurrency: probes in flight at once in this worker, None for no cap.
        intervals: effective interval per target name (budgets are planned by the prober).
        phases: ``[phase_s, slot_s]`` per target name, assigned over the whole fleet.
        not_before: seconds before which a target must not be probed (it was just probed
            by the worker this one replaces), per target name.
        paused: names paused now.
    """

    index: int
    config: str
    names: list[str] = field(default_factory=list)
    jitter_s: float = 0.0
    max_concurrency: int | None = None
    intervals: dict[str, float] = field(default_factory=dict)
    phases: dict[str, list[float]] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)
    paused: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self), separators=(",", ":"))


def settle_gc() -> None:
    """Keep the collector out of the measurements once start-up is done.

    Everything alive now (config, targets, modules) lives as long as the process:
    ``gc.freeze()`` moves it out of the collector's reach, so a full collection no longer
    walks it (a 70-120 ms pause at a thousand targets before, landing in every TTFT in
    flight). Young collections stay small and frequent. A probe's objects outlive many young
    collections (it runs for a second or more) and so reach the oldest generation; the
    runner unbinds httpx's response stream (the one reference cycle each probe left, ~60
    objects), so they are freed by reference counting and a full collection has little to
    find: :func:`collect_old` runs one a minute (about 10 ms at 500 targets per worker: the
    schedules' timers and the probes in flight are what it walks) instead of whenever the
    collector's own counters say, which at the default settings meant one every second or so.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def collect_old(stop: asyncio.Event, every_s: float = GC_FULL_EVERY_S) -> None:
    """A full collection every ``every_s`` seconds until ``stop`` (a few ms each: only the
    garbage of the last period and the probes in flight are left to walk)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        gc.collect()


class Channel:
    """The worker's side of the pipes: batched non-blocking writes, line reads."""

    def __init__(self, out: asyncio.WriteTransport, reader: asyncio.StreamReader) -> None:
        self.out = out
        self.reader = reader
        self._queued: list[bytes] = []

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message; what is queued in one turn of the loop goes out in one write
        (the transport never blocks the loop)."""
        if not self._queued:
            asyncio.get_running_loop().call_soon(self.flush)
        self._queued.append(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def flush(self) -> None:
        """Write what is queued now."""
        data, self._queued = b"".join(self._queued), []
        if data and not self.out.is_closing():
            self.out.write(data)


async def _channel() -> Channel:
    loop = asyncio.get_running_loop()
    # The protocol gets its own copy of stdout; fd 1 then points at stderr so that a stray
    # print() anywhere cannot corrupt the protocol.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(out_fd, "wb", buffering=0)
    )
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return Channel(transport, reader)


async def serve(init: WorkerInit) -> None:
    """Probe the shard until told to stop or until stdin ends."""
    channel = await _channel()
    config = Config.model_validate_json(init.config)
    shard = set(init.names)
    targets = [t for t in config.resolved() if t.name in shard]
    stop = asyncio.Event()

    async def sink(record: ProbeRecord) -> None:
        channel.send({"k": "rec", "r": record.to_dict()})

    def on_error(name: str, exc: BaseException) -> None:
        report_to_stderr(name, exc)
        channel.send({"k": "err", "target": name, "error": f"{type(exc).__name__}: {exc}"[:300]})

    scheduler = Scheduler(
        targets,
        sink,
        max_concurrency=init.max_concurrency,
        jitter_s=init.jitter_s,
        plan_budgets=False,
        intervals=init.intervals,
        phases={name: Phase(p[0], p[1]) for name, p in init.phases.items()},
        not_before=init.not_before,
        paused=init.paused,
        on_error=on_error,
    )
    questions = Questions(config, channel)
    scheduler.probe = questions.tracker.wrap(scheduler.probe)
    for target in list(scheduler.targets):
        for extra in questions.schedules_for(target):
            scheduler.add_schedule(extra)
    resolved = {t.name: t for t in config.resolved()}

    async def commands() -> None:
        while True:
            line = await channel.reader.readline()
            if not line:
                break  # the prober is gone
            try:
                cmd = json.loads(line)
                kind, target = cmd.get("k"), cmd.get("target")
                if kind == "stop":
                    break
                if kind == "pause":
                    scheduler.pause(target)
                elif kind == "resume":
                    scheduler.resume(target)
                elif kind == "probe_now":
                    scheduler.probe_now(target)
                elif kind == "intervals":
                    for name, seconds in cmd["s"].items():
                        scheduler.set_interval(name, float(seconds))
                elif kind == "drop":  # the target moves to another worker
                    await scheduler.remove_target(target)
                elif kind == "add":  # a target moved here
                    t = resolved[target]
                    scheduler.add_target(
                        t,
                        [Schedule(t, float(cmd["interval_s"])), *questions.schedules_for(t)],
                        phases={target: Phase(*cmd["phase"])},
                        not_before_s=float(cmd.get("not_before_s") or 0.0),
                        paused=bool(cmd.get("paused")),
                    )
            except Exception as exc:  # a malformed command must not end the worker
                on_error("(command)", exc)
        stop.set()

    async def stats() -> None:
        reported: dict[str, int] = {}
        frozen_again = False
        started = asyncio.get_running_loop().time()
        longest = max((s.interval_s for s in scheduler.schedules), default=0.0)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATS_PERIOD_S)
            skipped = (
                {s.key: s.skipped for s in scheduler.schedules if s.skipped != reported.get(s.key)}
                if scheduler.skipped_total != sum(reported.values())
                else {}
            )
            reported.update(skipped)
            lag = scheduler.lag.take_worst() if scheduler.lag is not None else None
            channel.send(
                {
                    "k": "stats",
                    "skipped_by": skipped,
                    "lag_ms": None if lag is None else round(lag * 1000, 2),
                    "in_flight_since": scheduler.in_flight_since(),
                    **scheduler.stats(),
                }
            )
            if not frozen_again and asyncio.get_running_loop().time() - started > longest + 5:
                # Every target has probed once: its client, pool and connection now live as
                # long as the process too.
                gc.collect()
                gc.freeze()
                frozen_again = True

    settle_gc()
    channel.send({"k": "ready", "pid": os.getpid()})
    await asyncio.gather(scheduler.run(stop), commands(), stats(), collect_old(stop))
    channel.flush()
    channel.out.close()


class Questions:
    """Issue #13's extra schedules for this worker's targets (docs/questions.md): the
    prompt-caching check, long-prompt workloads and the deliberately cold schedule, each on
    its own interval beside the canary; one idle tracker marks every probe's cold start."""

    def __init__(self, config: Config, channel: Channel) -> None:
        self.tracker = IdleTracker()
        self.checks = QuestionChecks(config, tracker=self.tracker)
        self.channel = channel
        self.by_target: dict[str, list[CheckSchedule]] = {}
        for check in self.checks.schedules():
            self.by_target.setdefault(check.target, []).append(check)

    def schedules_for(self, target: ResolvedTarget) -> list[Schedule]:
        """The extra schedules of ``target`` (none for most targets)."""
        out = []
        for check in self.by_target.get(target.name, []):

            async def run(t: ResolvedTarget, client: Any, check: CheckSchedule = check) -> Any:
                outcome = await self.checks.run(check, t, client)
                if outcome.cache_check is not None:
                    self.channel.send({"k": "cache", "r": asdict(outcome.cache_check)})
                return list(outcome.records)

            kind = check.kind if check.workload is None else f"{check.kind}:{check.workload}"
            out.append(Schedule(target, check.interval_s, kind=kind, probe=run))
        return out


def main() -> None:
    """Entry point: read the init line, then probe."""
    # Ctrl-C in a terminal reaches the whole process group: the prober stops its workers
    # itself (after taking what they measured), so the worker does not die on it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    line = sys.stdin.buffer.readline()
    if not line:
        return
    init = WorkerInit(**json.loads(line))
    # A stamping loop: each token's time is the poll that found its bytes, not when this
    # worker's queue got round to them (probes/arrival.py).
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=new_stamping_loop) as runner,
    ):
        runner.run(serve(init))


if __name__ == "__main__":
    main()

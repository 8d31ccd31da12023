"""The prober's worker processes as its main process sees them: how many, and each one's
process, targets and latest report (``tui.prober`` supervises them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.config import ResolvedTarget

#: Default share of probes one worker takes: probes per second (targets / interval).
PROBES_PER_S_PER_WORKER = 20.0


def default_workers(targets: Sequence[ResolvedTarget], cores: int | None = None) -> int:
    """Worker processes for ``targets``: one per :data:`PROBES_PER_S_PER_WORKER` probes a
    second (a core's precise share), at most one per core, at least one."""
    rate = sum(1.0 / t.settings.interval_s for t in targets)
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, len(targets), math.ceil(rate / PROBES_PER_S_PER_WORKER)))


def describe_exit(code: int | None) -> str:
    """How a worker ended: ``signal SIGKILL``, ``exit status 1``."""
    if code is None:
        return "no exit status"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit status {code}"


@dataclass(eq=False)
class Worker:
    """One worker process as the prober sees it.

    Attributes:
        index: worker number.
        names: the targets it probes.
        pid: its process id while running.
        restarts: times it was restarted.
        lag_ms: worst loop lag in its latest report, ms.
        in_flight: probes in flight in its latest report.
        quarantine: it probes targets whose streams were too heavy to share a loop.
    """

    index: int
    names: list[str]
    quarantine: bool = False
    pid: int | None = None
    restarts: int = 0
    lag_ms: float | None = None
    in_flight: int = 0
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a command (lost if the worker is restarting: its next start gets the state)."""
        proc = self.proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

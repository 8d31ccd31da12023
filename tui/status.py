"""``inferwatch status``: every target's current state from the database, for scripts.

The states are the dashboard's (``store.summary``, ``store.health``), read once; the exit
code follows the Nagios plugin convention so cron, systemd timers and monitoring agents can
act on it without parsing: 0 every probed target up, 1 a warning (degraded, config error, no
data yet, first probe in flight), 2 critical (down, stale, or the monitor blind), 3 unknown
(no database, or a schema this inferwatch cannot read yet). Paused, not configured and
maintenance targets are listed but do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.health import State
from store.summary import TargetSummary
from tui import format as fmt

#: States that make the exit code 1 (a warning) and 2 (critical).
WARNING_STATES = frozenset({State.DEGRADED, State.CONFIG_ERROR, State.NO_DATA, State.IN_FLIGHT})
CRITICAL_STATES = frozenset({State.DOWN, State.STALE})
#: States that do not count toward the exit code (nobody asked for them to be probed).
NOT_COUNTED = frozenset({State.PAUSED, State.NOT_CONFIGURED, State.MAINTENANCE})


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What ``inferwatch status`` prints.

    Attributes:
        targets: every published target's summary (config order), with its verdict.
        blind_since: UTC ISO 8601 time the monitor went blind, or None.
        blind_reason: why ("prober not running", "no network: ...").
        problem: why nothing could be read ("" when it could).
    """

    targets: tuple[TargetSummary, ...] = ()
    blind_since: str | None = None
    blind_reason: str = ""
    problem: str = ""

    @property
    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical, 3 unknown (see the module docstring)."""
        if self.problem:
            return 3
        if self.blind_since is not None:
            return 2
        states = {_state(s) for s in self.targets} - NOT_COUNTED
        if states & CRITICAL_STATES:
            return 2
        if states & WARNING_STATES:
            return 1
        return 0

    def summary(self) -> str:
        """The one-line summary (``5 up · 1 degraded · 1 down``)."""
        return fmt.summary_line(_state(s) for s in self.targets)

    def lines(self) -> list[str]:
        """The human report: summary, blindness, then one line per target."""
        if self.problem:
            return [f"unknown: {self.problem}"]
        out = [self.summary()]
        if self.blind_since is not None:
            out.append(f"MONITOR BLIND since {self.blind_since}: {self.blind_reason}")
        width = max((len(s.name) for s in self.targets), default=0)
        for s in self.targets:
            reason = s.verdict.reason if s.verdict else ""
            out.append(f"{s.name:<{width}}  {fmt.STATE_LABELS[_state(s)]:<16}  {reason}".rstrip())
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document: exit code, summary, blindness and one object per target."""
        return {
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "problem": self.problem or None,
            "blind_since": self.blind_since,
            "blind_reason": self.blind_reason or None,
            "targets": [
                {
                    "target": s.name,
                    "provider": s.provider,
                    "model": s.model,
                    "group": s.group_name,
                    "state": _state(s).value,
                    "since": s.verdict.since if s.verdict else None,
                    "cause_kind": s.verdict.cause_kind if s.verdict else None,
                    "reason": s.verdict.reason if s.verdict else "",
                    "last_probe_at": s.last_started_at,
                    "last_status": s.last_status,
                    "uptime_24h_pct": s.uptime["24h"].pct if "24h" in s.uptime else None,
                }
                for s in self.targets
            ],
        }


def _state(s: TargetSummary) -> State:
    return s.verdict.state if s.verdict else State.NO_DATA


def read_status(db_path: Path) -> StatusReport:
    """Read every target's state from ``db_path`` (never raises for a missing or unready
    database: the report then says why, exit code 3)."""
    from store.db import SchemaNotReady
    from store.reader import SnapshotReader

    if not db_path.exists():
        return StatusReport(problem=f"no database at {db_path}")
    reader = SnapshotReader(db_path)
    try:
        if reader.connection() is None:
            return StatusReport(problem=f"{db_path}: {reader.waiting}")
        snap = reader.read(900.0)
    except SchemaNotReady as exc:
        return StatusReport(problem=f"{db_path}: {exc}")
    finally:
        reader.close()
    return StatusReport(snap.targets, snap.blind_since, snap.blind_reason)

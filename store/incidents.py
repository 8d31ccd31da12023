"""Incidents as the dashboard lists them: open and recent degraded/down periods, and one
target's state history (rows of ``incidents``, written by :mod:`store.history`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from probes.timestamps import iso
from store.health import State

#: States that make an incident worth listing in the incidents panel.
PROBLEM_STATES: tuple[State, ...] = (State.DEGRADED, State.DOWN)


@dataclass(frozen=True, slots=True)
class Incident:
    """One state change of a target (a row of ``incidents``).

    Attributes:
        id: row id.
        target: target name.
        from_state: state before.
        to_state: state entered (the incident's state).
        started_at: UTC ISO 8601 time it began.
        ended_at: when the target left that state; None while it is the current state.
        duration_s: seconds in that state once ended.
        cause_kind: machine-readable cause (error kind, ``rate_limited``, ``recovered``...).
        cause_message: human text.
        probes: probes accounted to that state.
        failures: failed probes among them.
    """

    id: int
    target: str
    from_state: State
    to_state: State
    started_at: str
    ended_at: str | None
    duration_s: float | None
    cause_kind: str | None
    cause_message: str
    probes: int
    failures: int

    @property
    def open(self) -> bool:
        """True while the target is still in this state."""
        return self.ended_at is None


_COLUMNS = (
    "id, target, from_state, to_state, started_at, ended_at, duration_s, cause_kind, "
    "cause_message, probes, failures"
)


def _incident(row: Sequence[Any]) -> Incident:
    return Incident(
        int(row[0]),
        str(row[1]),
        State(row[2]),
        State(row[3]),
        str(row[4]),
        row[5],
        row[6],
        row[7],
        row[8] or "",
        int(row[9] or 0),
        int(row[10] or 0),
    )


def recent_incidents(
    db: sqlite_utils.Database,
    now: datetime,
    window_s: float,
    limit: int = 50,
    states: Collection[State] = PROBLEM_STATES,
) -> list[Incident]:
    """Open and recent incidents across targets, newest first.

    An incident is a period in one of ``states`` (degraded or down by default). Listed:
    every open one (the target is still in it), and every one that began or ended within
    the window ``[now - window_s, now]``.

    Args:
        db: an open database.
        now: the current UTC time.
        window_s: how far back "recent" reaches, seconds.
        limit: at most this many rows.
        states: the states that count as incidents.

    Returns:
        Incidents ordered by start time, newest first (open ones before all closed ones, so
        the limit never drops an open one).
    """
    if not states:
        return []
    lo = iso(now - timedelta(seconds=window_s))
    marks = ",".join("?" * len(states))
    # Three indexed parts, not one OR (which made SQLite walk the whole table in time order):
    # open ones via target_state, those that began in the window (started_at index), and those
    # that began up to 30 days earlier and ended in the window.
    lookback = iso(now - timedelta(seconds=window_s) - timedelta(days=30))
    states_in = f"to_state IN ({marks})"
    values = [State(s).value for s in states]
    # Open ones first within the limit: a flaky target's many short incidents must never
    # push an open outage out of the list (issue 11); the caller orders them for display.
    rows = db.conn.execute(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM incidents WHERE {states_in} AND id IN "
        "(SELECT incident_id FROM target_state WHERE incident_id IS NOT NULL) "
        f"UNION SELECT {_COLUMNS} FROM incidents WHERE {states_in} AND started_at >= ? "
        f"UNION SELECT {_COLUMNS} FROM incidents WHERE {states_in} "
        "AND started_at >= ? AND started_at < ? AND ended_at >= ?) "
        "ORDER BY ended_at IS NULL DESC, started_at DESC, id DESC LIMIT ?",
        [*values, *values, lo, *values, lookback, lo, lo, limit],
    ).fetchall()
    return [_incident(r) for r in rows]


def target_incidents(db: sqlite_utils.Database, name: str, limit: int = 20) -> list[Incident]:
    """One target's state changes of every state, newest first (its state history)."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE target = ? ORDER BY started_at DESC, id DESC "
        "LIMIT ?",
        [name, limit],
    ).fetchall()
    return [_incident(r) for r in rows]

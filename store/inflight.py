"""Probes in flight: which targets have a probe running, and since when.

A probe is stored only when it ends, so a provider that accepts the connection and never
answers would look like a monitor that stopped probing ("stale") for up to its whole
``timeout_s``. The prober publishes each target's running probe start in
``targets.in_flight_since`` (from its workers' periodic reports, every few seconds) and the
dashboard shows "probing 12s" instead (docs/uptime.md, "Stale and in flight").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


class InFlightBoard:
    """What the prober last published, so it writes only what changed.

    Each worker reports the probes running on it; a target of that worker that is not in
    its report has nothing in flight.
    """

    def __init__(self) -> None:
        self._published: dict[str, str | None] = {}

    def changes(
        self, names: Iterable[str], since: Mapping[str, str]
    ) -> list[tuple[str, str | None]]:
        """The ``(target, started_at or None)`` rows to write for one worker's report.

        Args:
            names: the targets the reporting worker probes.
            since: target -> UTC ISO 8601 start of its probe in flight, as reported.
        """
        out: list[tuple[str, str | None]] = []
        for name in names:
            value = since.get(name)
            if self._published.get(name) != value:
                self._published[name] = value
                out.append((name, value))
        return out


def publish_in_flight(db: sqlite_utils.Database, rows: Iterable[tuple[str, str | None]]) -> None:
    """Write ``(target, started_at or None)`` rows into ``targets.in_flight_since``."""
    with db.atomic():
        db.conn.executemany(
            "UPDATE targets SET in_flight_since = ? WHERE name = ?",
            [(since, name) for name, since in rows],
        )


def in_flight(db: sqlite_utils.Database) -> dict[str, str]:
    """Target name -> UTC ISO 8601 start of its probe in flight, as last published.

    A start older than the target's newest stored probe means that probe has ended
    (:meth:`store.summary.States.in_flight_s` compares them).
    """
    return {
        name: since
        for name, since in db.conn.execute(
            "SELECT name, in_flight_since FROM targets WHERE in_flight_since IS NOT NULL"
        )
    }

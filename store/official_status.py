"""Official status pages in the database, and the line on-call reads beside the measured state.

The status poller (:class:`probes.official_status.StatusPoller`) hands its readings to
:func:`save_statuses` (one row per page and component, table ``official_status``, m010);
the dashboard reads them with :func:`official_by_target` and shows
:func:`status_line`: ``measured ✖ down · official ✔ operational``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlite_utils

from probes.official_status import OfficialIncident, OfficialStatus
from probes.timestamps import parse_iso
from store.db import write_transaction
from store.health import STATE_LABELS, State

#: Word plus symbol for each official state (meaning never rests on colour alone).
OFFICIAL_LABELS: dict[str, str] = {
    "operational": "✔ operational",
    "degraded": "▲ degraded",
    "partial_outage": "▲ partial outage",
    "major_outage": "✖ major outage",
    "maintenance": "‖ maintenance",
    "unknown": "? unknown",
}
#: A reading older than this many poll intervals is shown as unknown (the poller stopped).
STALE_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class StoredOfficial:
    """One stored official status.

    Attributes:
        key: source key (URL and component).
        url: the machine-readable URL read.
        page_url: the human page, for links.
        component: the component that counts, or None.
        state: normalised state (``unknown`` when the page could not be read).
        description: the provider's words, or why it is unknown.
        incidents: open incidents.
        checked_at: when it was last read (UTC ISO 8601).
        changed_at: when its state last changed (UTC ISO 8601).
    """

    key: str
    url: str
    page_url: str | None
    component: str | None
    state: str
    description: str
    incidents: tuple[OfficialIncident, ...]
    checked_at: str
    changed_at: str | None


def save_statuses(
    db: sqlite_utils.Database, readings: Sequence[tuple[OfficialStatus, Sequence[str]]]
) -> None:
    """Store one poll round: upsert each source's row, keeping ``changed_at`` while its state
    holds. ``targets`` are the names of the targets the source stands for."""
    with write_transaction(db):
        for status, targets in readings:
            key = status.source.key
            previous = list(
                db.query("SELECT state, changed_at FROM official_status WHERE key = ?", [key])
            )
            changed_at = status.checked_at
            if previous and previous[0]["state"] == status.state:
                changed_at = previous[0]["changed_at"] or status.checked_at
            db.execute(
                "INSERT OR REPLACE INTO official_status (key, url, format, component, targets, "
                "state, description, indicator, component_status, incidents, page_url, "
                "checked_at, changed_at, fetch_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    key,
                    status.source.url,
                    status.source.format,
                    status.source.component,
                    json.dumps(list(targets)),
                    status.state,
                    status.description,
                    status.indicator,
                    status.component_status,
                    json.dumps([_incident_dict(i) for i in status.incidents]),
                    status.source.page_url,
                    status.checked_at,
                    changed_at,
                    status.fetch_ms,
                ],
            )


def _incident_dict(incident: OfficialIncident) -> dict[str, str | None]:
    return {
        "title": incident.title,
        "url": incident.url,
        "status": incident.status,
        "impact": incident.impact,
        "started_at": incident.started_at,
    }


def _incidents(text: str | None) -> tuple[OfficialIncident, ...]:
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return ()
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("title"), str):

            def get(key: str, item: dict[str, object] = item) -> str | None:
                value = item.get(key)
                return value if isinstance(value, str) else None

            out.append(
                OfficialIncident(
                    item["title"], get("url"), get("status"), get("impact"), get("started_at")
                )
            )
    return tuple(out)


def official_by_target(
    db: sqlite_utils.Database,
    *,
    now: datetime | None = None,
    interval_s: float | None = None,
) -> dict[str, StoredOfficial]:
    """The latest official status per target name (targets without a page are absent).

    With ``now`` and ``interval_s``, a reading older than ``STALE_INTERVALS`` intervals is
    returned as ``unknown`` ("last read … ago"): an old "operational" must not stand in for
    a page nobody is reading any more.
    """
    out: dict[str, StoredOfficial] = {}
    for row in db.query("SELECT * FROM official_status ORDER BY key"):
        stored = StoredOfficial(
            key=row["key"],
            url=row["url"],
            page_url=row["page_url"],
            component=row["component"],
            state=row["state"],
            description=row["description"] or "",
            incidents=_incidents(row["incidents"]),
            checked_at=row["checked_at"],
            changed_at=row["changed_at"],
        )
        if now is not None and interval_s is not None:
            age_s = now - parse_iso(stored.checked_at)
            if age_s.total_seconds() > STALE_INTERVALS * interval_s:
                minutes = age_s.total_seconds() / 60
                stored = replace(
                    stored, state="unknown", description=f"last read {minutes:.0f} min ago"
                )
        try:
            targets = json.loads(row["targets"] or "[]")
        except ValueError:
            targets = []
        for name in targets:
            if isinstance(name, str):
                out[name] = stored
    return out


def official_label(state: str | None) -> str:
    """``✔ operational``, ``✖ major outage``, ``? unknown``, ... for a stored state."""
    return OFFICIAL_LABELS.get(state or "unknown", OFFICIAL_LABELS["unknown"])


def status_line(measured: State, official: StoredOfficial | None) -> str:
    """The one line beside a target: ``measured ✖ down · official ✔ operational``.

    Without an official page for the target: ``measured ✖ down · official –``. A page that
    could not be read: ``official ? unknown`` (never a guess).
    """
    left = f"measured {STATE_LABELS[measured]}"
    if official is None:
        return f"{left} · official –"
    return f"{left} · official {official_label(official.state)}"

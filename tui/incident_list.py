"""Which incidents the incidents panel and the ``i`` screen list, in what order.

On-call reads the panel at 80x24, where three or four lines fit. So that a flaky target's
5-second blips never push an open outage off it:

* open **down** incidents are pinned first (newest first);
* the rest follow newest first (``store.incidents`` reads open ones before closed ones only
  so that its row limit never drops an open one);
* a target's short closed incidents (each under :data:`BLIP_S`) are folded into one line
  ("12 blips in 15m") where the newest of them would be, when it has two or more;
* the ``i`` screen can show one severity only (:data:`SEVERITIES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.health import State

if TYPE_CHECKING:
    # store.incidents loads sqlite-utils: not before the dashboard's first paint.
    from store.incidents import Incident

#: A closed incident shorter than this, seconds, is a blip (folded per target).
BLIP_S = 60.0
#: Severity filters of the ``i`` screen, cycled by its ``f`` key: (id, label).
SEVERITIES: tuple[tuple[str, str], ...] = (
    ("all", "degraded and down"),
    ("down", "down only"),
    ("degraded", "degraded only"),
)


@dataclass(frozen=True, slots=True)
class IncidentEntry:
    """One line of the list: an incident, or a target's blips folded together.

    Attributes:
        incident: the incident (for a fold: the newest blip).
        blips: how many blips the line stands for (1: an ordinary incident).
        worst: the worst state among them (down if any blip was down).
    """

    incident: Incident
    blips: int = 1
    worst: State = State.DEGRADED

    @property
    def folded(self) -> bool:
        """True when the line stands for several blips."""
        return self.blips > 1


def _is_blip(i: Incident) -> bool:
    return not i.open and i.duration_s is not None and i.duration_s < BLIP_S


def arrange(incidents: Sequence[Incident], severity: str = "all") -> list[IncidentEntry]:
    """The lines to show for ``incidents`` (given newest first), per the module's rules.

    Args:
        incidents: open and recent incidents, newest first (``store.incidents``).
        severity: ``all``, ``down`` or ``degraded`` (:data:`SEVERITIES`).
    """
    if severity == "down":
        incidents = [i for i in incidents if i.to_state is State.DOWN]
    elif severity == "degraded":
        incidents = [i for i in incidents if i.to_state is State.DEGRADED]
    pinned = [
        IncidentEntry(i, worst=i.to_state) for i in incidents if i.open and i.to_state is State.DOWN
    ]
    rest = sorted(
        (i for i in incidents if not (i.open and i.to_state is State.DOWN)),
        key=lambda i: (i.started_at, i.id),
        reverse=True,
    )
    blips: dict[str, list[Incident]] = {}
    for i in rest:
        if _is_blip(i):
            blips.setdefault(i.target, []).append(i)
    out = list(pinned)
    folded: set[str] = set()
    for i in rest:
        group = blips.get(i.target, [])
        if _is_blip(i) and len(group) > 1:
            if i.target in folded:
                continue
            folded.add(i.target)
            worst = State.DOWN if any(b.to_state is State.DOWN for b in group) else State.DEGRADED
            out.append(IncidentEntry(group[0], blips=len(group), worst=worst))
        else:
            out.append(IncidentEntry(i, worst=i.to_state))
    return out

"""What the app hands its screens: one immutable view of everything they draw.

The app keeps the state (window, sort, filter, selection, the newest snapshot, commands in
flight) as reactive attributes; whenever one changes it publishes a new :class:`DashView`,
which every dashboard screen receives through data binding and draws if it is on top. Screens
never read the app's attributes or call its methods; they post messages up
(:mod:`tui.messages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.health import State
from tui.panels import StatusContext

if TYPE_CHECKING:
    from store.reader import Snapshot
    from tui.messages import CostReady


@dataclass(frozen=True, slots=True, eq=False)
class DashView:
    """Everything a dashboard screen draws.

    Attributes:
        snap: the newest snapshot, None before the first read.
        sort: the sort order's id (``tui.table.SORTS``).
        filter_text: the overview's filter ("" for none).
        status: what the status line shows beside the snapshot.
        styles: the Rich style of each state word (bold, in the theme's colour).
        cost: the newest cost reports, None before the cost screen read them.
    """

    snap: Snapshot | None
    sort: str
    filter_text: str
    status: StatusContext
    styles: Mapping[State, str]
    cost: CostReady | None = None

    def style(self, state: State) -> str:
        """The Rich style of a state word."""
        return self.styles.get(state, "bold")

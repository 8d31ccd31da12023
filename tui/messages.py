"""Typed messages of the dashboard: the reader thread's answers, and what screens tell the app.

Data flows down (the app hands its screens a :class:`~tui.view.DashView`), events flow up as
these messages; nothing below the app calls into it (docs/architecture.md, "The dashboard").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # the cost reports are only built by the reader when the cost screen opens
    from probes.config import Config
    from store.costs import MonitoringReport, ProjectionReport
    from store.fallback import FallbackFit
    from store.reader import Snapshot
    from store.summary import TargetSummary


class PreviewReady(Message):
    """The published targets, read for the first paint (no figures yet; empty when there are
    none or no database yet)."""

    def __init__(self, targets: tuple[TargetSummary, ...]) -> None:
        super().__init__()
        self.targets = targets
        """Summaries without figures (``computed_at`` None), in config order."""


class Prepared(Message):
    """The app's ``prepare`` hook ran on the reader's thread (database ready, prober started)."""

    def __init__(self, config: Config | None) -> None:
        super().__init__()
        self.config = config
        """The config it loaded, None when it loaded none."""


class PrepareFailed(Message):
    """The app's ``prepare`` hook failed: the dashboard closes and the command line reports
    the error."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        """What it raised."""


class SnapshotReady(Message):
    """A refresh finished reading the database. A newer one replaces a queued older one."""

    def __init__(self, snap: Snapshot, done_commands: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.snap = snap
        """What was read."""
        self.done_commands = done_commands
        """Ids of commands the prober has taken since they were sent."""

    def can_replace(self, message: Message) -> bool:
        """Coalesce: only the newest snapshot needs drawing (it takes over the commands the
        replaced one confirmed, which the reader reports only once)."""
        if not isinstance(message, SnapshotReady):
            return False
        self.done_commands |= message.done_commands
        return True


class ReadFailed(Message):
    """A refresh could not read the database (the next one tries again)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
        """What went wrong."""


class CommandFailed(Message):
    """A command could not be queued for the prober."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        """Human text (``pause chat-primary``)."""
        self.error = error
        """Why it failed."""


class FilterChanged(Message):
    """The overview's filter text changed (the app keeps it, every screen shows it)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        """The filter ("" for none)."""


class CommandSent(Message):
    """A command was queued for the prober."""

    def __init__(self, command_id: int, what: str) -> None:
        super().__init__()
        self.command_id = command_id
        """Its row id in ``commands``."""
        self.what = what
        """Human text (``pause chat-primary``)."""


class ExportFinished(Message):
    """An export written by the ``e`` key finished (or failed)."""

    def __init__(self, path: Path, rows: int, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        """The file written."""
        self.rows = rows
        """Rows written."""
        self.error = error
        """Why it failed, None on success."""


class CostReady(Message):
    """The cost screen's reports were read (only while that screen is open)."""

    def __init__(
        self,
        window_s: float,
        projections: ProjectionReport | None,
        monitoring: MonitoringReport | None,
        fallbacks: tuple[FallbackFit, ...] = (),
    ) -> None:
        super().__init__()
        self.window_s = window_s
        """The window the reports cover."""
        self.projections = projections
        """Feature projections (None without ``[[features]]`` or a config)."""
        self.monitoring = monitoring
        """Cost of monitoring (None before the prober published its targets)."""
        self.fallbacks = fallbacks
        """Whether each group's fallback takes its primary's load (empty without groups)."""

    def can_replace(self, message: Message) -> bool:
        """Coalesce: only the newest reports need drawing."""
        return isinstance(message, CostReady)

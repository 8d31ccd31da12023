"""Typed messages posted by the dashboard's workers (tui-style.md §4.2-4.3)."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from store.costs import MonitoringReport, ProjectionReport
from store.reader import Snapshot


class SnapshotReady(Message):
    """A refresh finished reading the database. A newer one replaces a queued older one."""

    def __init__(self, snap: Snapshot, done_commands: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.snap = snap
        """What was read."""
        self.done_commands = done_commands
        """Ids of commands the prober has taken since they were sent."""

    def can_replace(self, message: Message) -> bool:
        """Coalesce: only the newest snapshot needs drawing."""
        return isinstance(message, SnapshotReady)


class ReadFailed(Message):
    """A refresh could not read the database (the next one tries again)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
        """What went wrong."""


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
    ) -> None:
        super().__init__()
        self.window_s = window_s
        """The window the reports cover."""
        self.projections = projections
        """Feature projections (None without ``[[features]]`` or a config)."""
        self.monitoring = monitoring
        """Cost of monitoring (None before the prober published its targets)."""

    def can_replace(self, message: Message) -> bool:
        """Coalesce: only the newest reports need drawing."""
        return isinstance(message, CostReady)

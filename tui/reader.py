"""The dashboard's one database reader: a thread that owns the app's only connection.

The UI thread never touches SQLite. It hands the reader immutable requests (:meth:`submit`):
:class:`ReadRequest` (read a snapshot for this window, this detail, with or without the cost
reports) and :class:`SendCommand` (queue a pause / resume / probe-now for the prober). The
reader answers with messages posted to the app: :class:`~tui.messages.SnapshotReady`,
:class:`~tui.messages.CostReady`, :class:`~tui.messages.CommandSent`,
:class:`~tui.messages.ReadFailed`, :class:`~tui.messages.CommandFailed`.

Requests that pile up while a read runs are coalesced: commands are all sent, in order, and
only the newest read request is read, once. Reads therefore never overlap and a burst of key
presses costs one read. Which commands the prober has taken is tracked here, on the reader's
thread only (nothing is shared with the UI thread but the queue).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import sqlite_utils
from textual.message import Message

from probes.config import Config
from probes.text import printable_tree
from store import control
from store.reader import Snapshot, SnapshotReader
from tui.messages import CommandFailed, CommandSent, CostReady, ReadFailed, SnapshotReady

#: The cost reports are re-read at most this often while the cost screen is open, seconds.
COST_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Read a snapshot.

    Attributes:
        window_s: the window, seconds.
        detail: also read this target's detail (its screen is open).
        cost: also read the cost reports (the cost screen is open).
    """

    window_s: float
    detail: str | None = None
    cost: bool = False


@dataclass(frozen=True, slots=True)
class SendCommand:
    """Queue a command for the prober (``store.control.COMMANDS``), then read."""

    command: str
    target: str | None = None


class _Stop:
    """Ends the reader's loop."""


Request = ReadRequest | SendCommand | _Stop


class SnapshotSource(Protocol):
    """Where snapshots come from: :class:`store.reader.SnapshotReader` on the database, or
    :class:`tui.prometheus_source.PrometheusSource` (no connection: commands and the cost
    screen's measurements are then unavailable, and :attr:`waiting` says why)."""

    waiting: str

    def read(
        self, window_s: float, now: datetime | None = None, detail: str | None = None
    ) -> Snapshot:
        """Everything the dashboard shows now."""
        ...

    def connection(self) -> sqlite_utils.Database | None:
        """The database connection for commands and cost reports, None without one."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class DatabaseReader:
    """Serves the dashboard's requests on one thread with one connection.

    Args:
        db_path: the database the prober writes.
        post: posts a message to the app (thread-safe).
        clock: the current UTC time (tests inject a fixed one).
        config: the prober's config, for the cost screen's feature projections (None: the
            cost screen shows the cost of monitoring only).
        source: where snapshots come from (default: a ``SnapshotReader`` on ``db_path``).
    """

    def __init__(
        self,
        db_path: Path,
        post: Callable[[Message], object],
        clock: Callable[[], datetime],
        config: Config | None = None,
        *,
        source: SnapshotSource | None = None,
    ) -> None:
        self.snapshots: SnapshotSource = source or SnapshotReader(db_path)
        self._post = post
        self._clock = clock
        self._config = config
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._outstanding: set[int] = set()  # commands sent, not yet taken (this thread only)
        self._cost_read: tuple[float, int, float] | None = None  # (window, version, at)

    def submit(self, request: ReadRequest | SendCommand) -> None:
        """Hand the reader a request (any thread; never blocks)."""
        self._queue.put(request)

    def stop(self) -> None:
        """End :meth:`run` after the request in hand (any thread)."""
        self._queue.put(_Stop())

    def run(self) -> None:
        """Serve requests until :meth:`stop` (run it in a thread worker)."""
        try:
            while True:
                batch = [self._queue.get()]
                while True:  # coalesce what piled up meanwhile
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                for r in batch:  # a command sent just before quitting is still sent
                    if isinstance(r, SendCommand):
                        self._send(r)
                if any(isinstance(r, _Stop) for r in batch):
                    return
                reads = [r for r in batch if isinstance(r, ReadRequest)]
                if reads:
                    self._read(reads[-1])
        finally:
            self.snapshots.close()

    def _send(self, request: SendCommand) -> None:
        what = request.command.replace("_", " ") + (
            f" {request.target}" if request.target else " all"
        )
        try:
            db = self.snapshots.connection()
            if db is None:
                self._post(CommandFailed(what, self.snapshots.waiting))
                return
            command_id = control.send_command(db, request.command, request.target)
        except Exception as exc:  # shown on screen; the reader (and the dashboard) keep running
            self._post(CommandFailed(what, str(exc)))
            return
        self._outstanding.add(command_id)
        self._post(CommandSent(command_id, what))

    def _read(self, request: ReadRequest) -> None:
        try:
            now = self._clock()
            # Every string a provider or a config put in the database is made printable
            # here, once, so no panel can pass an escape sequence to the terminal.
            snap = printable_tree(self.snapshots.read(request.window_s, now, request.detail))
            if request.cost:
                self._read_cost(snap, now)
            done = frozenset(self._taken())
        except Exception as exc:  # shown on screen; the next request tries again
            self._post(ReadFailed(str(exc)))
            return
        self._outstanding -= done
        self._post(SnapshotReady(snap, done))

    def _taken(self) -> set[int]:
        db = self.snapshots.connection()
        if db is None or not self._outstanding:
            return set()
        return {cid for cid in self._outstanding if control.command_done(db, cid)}

    def _read_cost(self, snap: Snapshot, now: datetime) -> None:
        """Cost reports for the cost screen, when the data or the window changed."""
        last = self._cost_read
        mono = time.monotonic()
        if (
            last is not None
            and last[0] == snap.window_s
            and (last[1] == snap.version or mono - last[2] < COST_EVERY_S)
        ):
            return
        # Imported on first use: prices (genai-prices) are not needed to draw the overview.
        from store.costs import feature_projections, monitoring_report

        self._cost_read = (snap.window_s, snap.version, mono)
        db = self.snapshots.connection()
        projections = (
            feature_projections(db, self._config, snap.window_s, now)
            if self._config is not None and self._config.features
            else None
        )
        monitoring = monitoring_report(db, snap.window_s, now) if db is not None else None
        projections, monitoring = printable_tree((projections, monitoring))
        self._post(CostReady(snap.window_s, projections, monitoring))

"""The dashboard's one database reader: a thread that owns the app's only connection.

The UI thread never touches SQLite. It hands the reader immutable requests (:meth:`submit`):
:class:`PreviewRequest` (the published targets for the first paint), :class:`ReadRequest`
(read a snapshot for this window, this detail, with or without the cost reports) and
:class:`SendCommand` (queue a pause / resume / probe-now for the prober). The reader answers
with messages posted to the app: :class:`~tui.messages.PreviewReady`,
:class:`~tui.messages.SnapshotReady`, :class:`~tui.messages.CostReady`,
:class:`~tui.messages.CommandSent`, :class:`~tui.messages.ReadFailed`,
:class:`~tui.messages.CommandFailed`. Before its first read or command it runs the app's
``prepare`` hook, if any (creating the database, starting the prober, loading the config:
what the first paint does not wait for), and answers :class:`~tui.messages.Prepared` or
:class:`~tui.messages.PrepareFailed`.

Requests that pile up while a read runs are coalesced: commands are all sent, in order, and
only the newest read request is read, once. Reads therefore never overlap and a burst of key
presses costs one read. Which commands the prober has taken is tracked here, on the reader's
thread only (nothing is shared with the UI thread but the queue).
"""

from __future__ import annotations

import dataclasses
import operator
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from textual.message import Message

from probes.text import CleanMemo, printable_tree
from tui.messages import (
    CommandFailed,
    CommandSent,
    CostReady,
    Prepared,
    PrepareFailed,
    PreviewReady,
    ReadFailed,
    SnapshotReady,
)

if TYPE_CHECKING:
    # Loaded on the reader's thread, after the first paint (store/preview.py says why).
    import sqlite_utils

    from probes.config import Config
    from store.fallback import FallbackFit
    from store.reader import Snapshot
    from store.summary import TargetSummary

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
class PreviewRequest:
    """Read the published targets for the first paint (:mod:`store.preview`: no figures, nothing
    heavy loaded); answered with :class:`~tui.messages.PreviewReady`."""


@dataclass(frozen=True, slots=True)
class SendCommand:
    """Queue a command for the prober (``store.control.COMMANDS``), then read."""

    command: str
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Reopen:
    """The database file was replaced: drop the connection (and everything read from the
    old file) and open the path afresh at the next read."""


class _Stop:
    """Ends the reader's loop."""


Request = PreviewRequest | ReadRequest | SendCommand | Reopen | _Stop


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


class CleanSummaries:
    """Makes a snapshot's summaries printable (:func:`probes.text.printable_tree`), looking
    only at the ones whose content is new.

    Between two reads most summaries are copies that moved their age forward and share every
    other value with the one before (:meth:`store.summary.TargetSummary.restated`): when all
    of a target's values but ``last_age_s`` (a number) are the very objects found clean last
    time, the summary is clean as it is. Comparing identities is one C-level pass per
    summary, where walking its fields was the largest share of the reader's idle work at 200
    targets. The values compared are held here, so an identity cannot be reused meanwhile.
    Reader thread only.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[object, ...]] = {}
        self._content: Callable[[TargetSummary], tuple[object, ...]] | None = None

    def clean(self, snap: Snapshot, memo: CleanMemo) -> Snapshot:
        """``snap`` made printable: the same objects wherever nothing needed escaping."""
        content = self._content
        if content is None:
            from store.summary import TargetSummary

            names = [f.name for f in dataclasses.fields(TargetSummary) if f.name != "last_age_s"]
            content = self._content = operator.attrgetter(*names)
        values = [content(s) for s in snap.targets]
        seen = self._seen
        new = tuple(
            s
            for s, v in zip(snap.targets, values, strict=True)
            if (before := seen.get(s.name)) is None or not all(map(operator.is_, v, before))
        )
        # One call (the memo remembers per call): everything but the known summaries.
        rest, walked = printable_tree((dataclasses.replace(snap, targets=()), new), memo=memo)
        targets = snap.targets
        if any(a is not b for a, b in zip(walked, new, strict=True)):
            escaped = {id(a): b for a, b in zip(new, walked, strict=True) if a is not b}
            targets = tuple(escaped.get(id(s), s) for s in targets)
        # Escaped summaries are not remembered: they are looked at again next time.
        self._seen = {
            s.name: v for s, c, v in zip(snap.targets, targets, values, strict=True) if s is c
        }
        return dataclasses.replace(rest, targets=targets)


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
        prepare: Callable[[], Config | None] | None = None,
    ) -> None:
        self.db_path = db_path
        self._snapshots = source
        self._source = source
        self._prepare = prepare
        self._post = post
        self._clock = clock
        self._config = config
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._outstanding: set[int] = set()  # commands sent, not yet taken (this thread only)
        self._cost_read: tuple[float, int, float] | None = None  # (window, version, at)
        self._fallback_read: tuple[float, int, float] | None = None  # (window, version, at)
        self._fallbacks: Mapping[str, tuple[FallbackFit, ...]] = {}
        self._clean = CleanMemo()  # most of a snapshot was made printable a second ago
        self._clean_targets = CleanSummaries()

    @property
    def snapshots(self) -> SnapshotSource:
        """Where snapshots come from (a ``SnapshotReader`` on the database unless a source was
        given, made on first use: its modules load after the first paint)."""
        if self._snapshots is None:
            from store.reader import SnapshotReader

            reader = SnapshotReader(self.db_path)
            if self._config is not None:
                reader.official_interval_s = self._config.status.interval_s
            self._snapshots = reader
        return self._snapshots

    def submit(self, request: PreviewRequest | ReadRequest | SendCommand | Reopen) -> None:
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
                if any(isinstance(r, Reopen) for r in batch) and self._source is None:
                    if self._snapshots is not None:
                        self._snapshots.close()
                    self._snapshots = None
                    self._cost_read = None
                if any(isinstance(r, PreviewRequest) for r in batch):
                    self._preview()
                if any(isinstance(r, ReadRequest | SendCommand) for r in batch) and (
                    not self._run_prepare()
                ):
                    return
                for r in batch:  # a command sent just before quitting is still sent
                    if isinstance(r, SendCommand):
                        self._send(r)
                if any(isinstance(r, _Stop) for r in batch):
                    return
                reads = [r for r in batch if isinstance(r, ReadRequest)]
                if reads:
                    self._read(reads[-1])
        finally:
            if self._snapshots is not None:
                self._snapshots.close()

    def _preview(self) -> None:
        targets: tuple[TargetSummary, ...] = ()
        if self._source is None:
            from store.preview import published_summaries

            targets = printable_tree(published_summaries(self.db_path))
        self._post(PreviewReady(targets))

    def _run_prepare(self) -> bool:
        """Run the ``prepare`` hook once, before the first read or command; False when it
        failed (the app is told and closes)."""
        prepare, self._prepare = self._prepare, None
        if prepare is None:
            return True
        try:
            config = prepare()
        except Exception as exc:  # the app closes and the command line reports it
            self._post(PrepareFailed(exc))
            return False
        if config is not None:
            self._config = config
        self._post(Prepared(config))
        return True

    def _send(self, request: SendCommand) -> None:
        what = request.command.replace("_", " ") + (
            f" {request.target}" if request.target else " all"
        )
        try:
            from store import control

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
            snap = self.snapshots.read(request.window_s, now, request.detail)
            snap = self._with_fallbacks(snap, now)
            snap = self._clean_targets.clean(snap, self._clean)
            if request.cost:
                self._read_cost(snap, now)
            done = frozenset(self._taken())
        except Exception as exc:  # shown on screen; the next request tries again
            self._post(ReadFailed(str(exc)))
            return
        self._outstanding -= done
        self._post(SnapshotReady(snap, done))

    def _taken(self) -> set[int]:
        if not self._outstanding:
            return set()
        db = self.snapshots.connection()
        if db is None:
            return set()
        from store import control

        return {cid for cid in self._outstanding if control.command_done(db, cid)}

    def _with_fallbacks(self, snap: Snapshot, now: datetime) -> Snapshot:
        """The snapshot with each group's fallback fits for the group rows
        (:func:`store.fallback.fallback_report`), re-read as the cost reports are: when the
        data changed, at most every :data:`COST_EVERY_S`, or at once for a new window."""
        config = self._config
        if config is None or not config.features or self._source is not None:
            return snap
        last, mono = self._fallback_read, time.monotonic()
        if (
            last is None
            or last[0] != snap.window_s
            or (last[1] != snap.version and mono - last[2] >= COST_EVERY_S)
        ):
            from store.fallback import fallback_report  # loads prices: not for the first paint

            self._fallback_read = (snap.window_s, snap.version, mono)
            by_group: dict[str, tuple[FallbackFit, ...]] = {}
            for fit in fallback_report(self.snapshots.connection(), config, snap.window_s, now):
                by_group[fit.group] = (*by_group.get(fit.group, ()), fit)
            self._fallbacks = by_group
        if not self._fallbacks:
            return snap
        return dataclasses.replace(snap, fallbacks=self._fallbacks)

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
        from store.fallback import fallback_report

        self._cost_read = (snap.window_s, snap.version, mono)
        db = self.snapshots.connection()
        projections = (
            feature_projections(db, self._config, snap.window_s, now)
            if self._config is not None and self._config.features
            else None
        )
        monitoring = monitoring_report(db, snap.window_s, now) if db is not None else None
        fallbacks = (
            fallback_report(db, self._config, snap.window_s, now)
            if self._config is not None and db is not None
            else []
        )
        projections, monitoring, fallbacks = printable_tree((projections, monitoring, fallbacks))
        self._post(CostReady(snap.window_s, projections, monitoring, tuple(fallbacks)))

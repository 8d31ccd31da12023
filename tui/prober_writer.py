"""The prober's database writer: one thread owns the connection (``tui.prober`` uses it).

Probes are stored in batches, each with its effect on outage state in the same transaction
(the prober sets :attr:`DbWriter.store_fn`). When the database cannot take them (disk full,
locked), probes are held in a bounded buffer and retried with backoff; probing never stops
and the status line says so. A reserve file beside the database is given back when the disk
is full, so the heartbeat can still be written. The writer also says when its file was
deleted or replaced under it (:meth:`DbWriter.gone`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from probes.record import ProbeRecord
from store.db import insert_probe, open_db
from tui.prober_log import log

T = TypeVar("T")

#: Probes held in memory while the database cannot take them; beyond, the oldest are dropped.
HOLD_LIMIT = 20_000
#: Most probes stored in one transaction.
BATCH = 500
#: Backoff between two attempts to store held probes, seconds.
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
#: The writer's busy timeout: short, so a locked database shows on the status line within
#: seconds (the probes are held and retried, nothing is lost).
WRITER_BUSY_TIMEOUT_S = 5.0
#: Disk space kept aside next to the database (``<db>.reserve``) and given back when the disk
#: is full, so the prober can still write its heartbeat and say what is wrong (about 16
#: minutes of heartbeats, two WAL pages every 2 s).
RESERVE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WriterStatus:
    """What the writer is holding back.

    Attributes:
        held: probes waiting to be stored.
        dropped: probes dropped because more than :data:`HOLD_LIMIT` were held, or because
            the database refused them for good.
        failing_since: monotonic time storing began to fail, None while it works.
        error: the latest storage error, "" while it works.
    """

    held: int
    dropped: int
    failing_since: float | None
    error: str


class DbWriter:
    """Owns the prober's database connection on a single dedicated thread.

    :meth:`call` runs a function on the connection (control work, before any waiting
    probes); :meth:`store` hands over a probe without waiting. Probes are stored in batches
    by ``store_fn`` (default: a plain insert). A batch that fails with
    ``sqlite3.OperationalError`` (disk full, database locked, I/O error) stays held and is
    retried with backoff after ``recover`` (which must forget in-memory effects of the failed
    transaction); a probe the database refuses for any other reason is reported and dropped
    alone, so one bad record never blocks the others.

    Args:
        path: the database file.
        busy_timeout_s: how long one attempt waits for a lock.
    """

    def __init__(self, path: Path, busy_timeout_s: float = WRITER_BUSY_TIMEOUT_S) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._db: sqlite_utils.Database | None = None
        self._identity: tuple[int, int] | None = None
        self._sidecar_ids: dict[Path, tuple[int, int]] = {}
        self._cond = threading.Condition()
        self._calls: deque[tuple[Callable[[sqlite_utils.Database], Any], Future[Any]]] = deque()
        self._records: deque[ProbeRecord] = deque()
        self._in_batch = 0
        self._closing = False
        self._flush_until = 0.0
        self._dropped = 0
        self._failing_since: float | None = None
        self._error = ""
        self._full = False
        self.store_fn: Callable[[sqlite_utils.Database, Sequence[ProbeRecord]], list[Any]] = (
            lambda db, records: [insert_probe(db, r) for r in records]
        )
        self.recover: Callable[[], None] | None = None
        self.on_stored: Callable[[list[Any]], object] | None = None
        self.on_drop: Callable[[ProbeRecord, BaseException], object] | None = None
        self._thread = threading.Thread(target=self._run, name="inferwatch-db", daemon=True)
        self._thread.start()

    def _get(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = open_db(self._path)
            self._db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            st = os.stat(self._path)
            self._identity = (st.st_dev, st.st_ino)
            for side in self._sidecars():
                with contextlib.suppress(OSError):
                    st = os.stat(side)
                    self._sidecar_ids[side] = (st.st_dev, st.st_ino)
            self._make_reserve()
        return self._db

    def _sidecars(self) -> list[Path]:
        return [self._path.with_name(self._path.name + s) for s in ("-wal", "-shm")]

    def drop_sidecars(self) -> None:
        """Unlink this connection's ``-wal`` and ``-shm`` files when the database was
        deleted or replaced under it, if they are still the ones it opened: SQLite pairs a
        WAL with whatever main file has its name, so the next process to open the path would
        read the old database's pages into the new one."""
        for side, identity in self._sidecar_ids.items():
            with contextlib.suppress(OSError):
                st = os.stat(side)
                if (st.st_dev, st.st_ino) == identity:
                    side.unlink()

    def gone(self) -> str | None:
        """Why the file the connection writes is no longer the database at its path
        ("deleted", "replaced"), or None while it is (or before it is opened). Any thread."""
        identity = self._identity
        if identity is None:
            return None
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None  # unreadable for a moment (a busy NFS server): look again later
        return None if (st.st_dev, st.st_ino) == identity else "replaced"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def reserve_path(self) -> Path:
        """The file holding :data:`RESERVE_BYTES` for a full disk."""
        return self._path.with_name(self._path.name + ".reserve")

    def _make_reserve(self) -> None:
        path = self.reserve_path
        try:
            if path.exists() and path.stat().st_size >= RESERVE_BYTES:
                return
            with open(path, "wb") as f:
                # Real blocks, not a sparse file: freeing them must free space.
                os.posix_fallocate(f.fileno(), 0, RESERVE_BYTES)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()

    def _release_reserve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.reserve_path.unlink()
            log(f"disk full: freed {self.reserve_path.name} so the prober can still say so")

    def _room_to_retry(self) -> bool:
        """After a full disk, store again only once there is room beyond the reserve (so the
        heartbeat keeps what the reserve freed)."""
        if not self._full:
            return True
        try:
            st = os.statvfs(self._path.parent)
        except OSError:
            return True
        return st.f_bavail * st.f_frsize >= 2 * RESERVE_BYTES

    async def call(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn(db)`` on the writer thread and await its result (exceptions included)."""
        fut: Future[T] = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("database writer closed")
            self._calls.append((fn, fut))
            self._cond.notify()
        return await asyncio.wrap_future(fut)

    def store(self, record: ProbeRecord) -> None:
        """Queue a probe for storing (never blocks)."""
        with self._cond:
            self._records.append(record)
            if len(self._records) > HOLD_LIMIT:
                # Drop the oldest probe not being stored right now.
                del self._records[self._in_batch]
                self._dropped += 1
            self._cond.notify()

    def status(self) -> WriterStatus:
        """Held and dropped probes and the current storage error."""
        with self._cond:
            return WriterStatus(len(self._records), self._dropped, self._failing_since, self._error)

    def close(self, flush_s: float = 10.0) -> None:
        """Store what is held (trying for up to ``flush_s``), close the connection, stop."""
        with self._cond:
            self._closing = True
            self._flush_until = time.monotonic() + flush_s
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        retry_at = 0.0
        delay = 0.0
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._calls:
                        break
                    if self._records and now >= retry_at:
                        break
                    if self._closing and (not self._records or now >= self._flush_until):
                        break
                    wait = None
                    if self._records:
                        wait = retry_at - now
                    if self._closing:
                        wait = min(wait if wait is not None else 0.1, self._flush_until - now)
                    self._cond.wait(None if wait is None else max(0.0, wait))
                calls = list(self._calls)
                self._calls.clear()
                batch: list[ProbeRecord] = []
                if self._records and time.monotonic() >= retry_at and self._room_to_retry():
                    batch = list(itertools.islice(self._records, BATCH))
                self._in_batch = len(batch)
                done = (
                    self._closing
                    and not calls
                    and (not self._records or time.monotonic() >= self._flush_until)
                )
            if done:
                self._finish()
                return
            for fn, fut in calls:
                if fut.set_running_or_notify_cancel():
                    try:
                        result = fn(self._get())
                    except BaseException as exc:
                        self._recover()
                        if isinstance(exc, sqlite3.OperationalError):
                            self._failed(exc)  # the heartbeat is a write like the others
                        fut.set_exception(exc)
                    else:
                        if self._failing_since is not None and not self._records:
                            self._works_again(0)  # nothing held: nothing left to store
                        fut.set_result(result)
            if not batch:
                if self._records and time.monotonic() >= retry_at:
                    delay = min(RETRY_MAX_S, max(RETRY_FIRST_S, delay * 2))
                    retry_at = time.monotonic() + delay  # no room yet: look again later
                continue
            ok, stored = self._store_batch(batch)
            with self._cond:
                self._in_batch = 0
                if ok:
                    for _ in range(len(batch)):
                        self._records.popleft()
            if ok:
                delay = 0.0
                if self._failing_since is not None:
                    self._works_again(len(stored))
                if stored and self.on_stored is not None:
                    with contextlib.suppress(Exception):
                        self.on_stored(stored)
            else:
                delay = min(RETRY_MAX_S, max(RETRY_FIRST_S, delay * 2))
                retry_at = time.monotonic() + delay

    def _store_batch(self, batch: list[ProbeRecord]) -> tuple[bool, list[Any]]:
        """Store ``batch``; False when it must be retried later (it stays held)."""
        try:
            return True, self.store_fn(self._get(), batch)
        except sqlite3.OperationalError as exc:
            self._recover()
            self._failed(exc)
            return False, []
        except Exception:
            self._recover()
        # Something in the batch is refused for good: store one by one, drop the culprits.
        stored: list[Any] = []
        for record in batch:
            try:
                stored += self.store_fn(self._get(), [record])
            except sqlite3.OperationalError as exc:
                self._recover()
                self._failed(exc)
                # Keep what is left for the retry: drop from the queue only what was done.
                done = batch.index(record)
                with self._cond:
                    for _ in range(done):
                        self._records.popleft()
                if stored and self.on_stored is not None:
                    with contextlib.suppress(Exception):
                        self.on_stored(stored)
                return False, []
            except Exception as exc:
                self._recover()
                with self._cond:
                    self._dropped += 1
                log(f"probe of {record.target!r} at {record.started_at} not stored: {exc!r}")
                if self.on_drop is not None:
                    with contextlib.suppress(Exception):
                        self.on_drop(record, exc)
        return True, stored

    def _works_again(self, stored: int) -> None:
        log(f"storage works again: stored {stored} held probes, {len(self._records)} to go")
        with self._cond:
            self._failing_since, self._error = None, ""
        if self._full:
            self._full = False
            self._make_reserve()

    def _note_full(self, exc: BaseException) -> None:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            self._full = True
            self._release_reserve()

    def _failed(self, exc: BaseException) -> None:
        self._note_full(exc)
        with self._cond:
            first = self._failing_since is None
            if first:
                self._failing_since = time.monotonic()
            self._error = str(exc) or type(exc).__name__
            held = len(self._records)
        if first:
            log(f"storage failing ({exc}); holding {held} probes and retrying, probing goes on")

    def _recover(self) -> None:
        if self._db is not None and self._db.conn.in_transaction:
            with contextlib.suppress(Exception):
                self._db.conn.rollback()
        if self.recover is not None:
            try:
                self.recover()
            except Exception as exc:  # the database may not even be readable: try later
                log(f"could not reload outage state after a failed write: {exc!r}")

    def _finish(self) -> None:
        with self._cond:
            left = len(self._records)
        if left:
            log(f"stopping with {left} probes that could not be stored")
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

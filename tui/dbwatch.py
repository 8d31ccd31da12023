"""The dashboard's watch on its files: the database (deleted? replaced?) and the prober lock.

SQLite keeps reading a deleted or replaced database file through the connection it has, so
without a look at the path the dashboard would go on showing an unlinked file's last
seconds as if they were live. Once a second, on a thread (a ``stat`` on a network file system
can block), the app's watcher compares the path's device and inode with the file it saw
first, and asks the prober lock (:mod:`tui.prober_lock`) whether a prober is alive and where
its log is. What changed is posted to the app as :class:`FilesChanged`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from textual.message import Message

from tui.prober_lock import LockInfo, is_held, read_info

DbState = Literal["ok", "missing", "deleted", "replaced"]

#: Seconds between two looks.
WATCH_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class Files:
    """What the watcher saw.

    Attributes:
        db: ``ok``; ``missing`` (not created yet); ``deleted`` (it existed and is gone);
            ``replaced`` (another file is at the path now: reported once, then ``ok`` again
            for the new file).
        prober_alive: a process holds the prober lock.
        prober: what the lock file says about the (last) prober, None without one.
    """

    db: DbState
    prober_alive: bool
    prober: LockInfo | None


class FilesChanged(Message):
    """The database file or the prober's liveness changed (posted from the watcher thread)."""

    def __init__(self, files: Files) -> None:
        super().__init__()
        self.files = files


class FileWatch:
    """Compares the database path with the file first seen there, and reads the lock.

    Args:
        db: the database path.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._identity: tuple[int, int] | None = None

    def look(self) -> Files:
        """One look (blocking file system calls: run it off the UI thread)."""
        state: DbState
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            state = "missing" if self._identity is None else "deleted"
        except OSError:
            state = "ok"  # unreadable for a moment: say nothing new
        else:
            identity = (st.st_dev, st.st_ino)
            same = self._identity is None or identity == self._identity
            state = "ok" if same else "replaced"
            self._identity = identity
        return Files(state, is_held(self.db), read_info(self.db))

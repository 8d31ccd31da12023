"""One prober per database: an OS lock on a sidecar file next to the database.

The prober holds ``fcntl.flock(LOCK_EX)`` on ``<db>.lock`` for its whole life. The kernel
drops the lock when the process ends, however it ends (SIGKILL, a crash, a power cut of the
process), so a stale lock cannot exist and nothing has to be cleaned up. A second prober
fails to take the lock at once and refuses to start (or, with ``--takeover``, signals the
holder and waits for the lock); ``inferwatch`` without a command asks the lock whether a
prober is alive to decide between attaching to it and starting one.

The lock file also holds, as one JSON object, who holds it (pid, host, since when, where its
log goes, how to start it again): the refusal message and the dashboard's "prober not
running" line read it. It is written after the lock is taken and kept after the holder
exits (deleting a lock file races with the next holder), so once the lock is free it
describes the last prober.

``flock`` is per machine: on a network file system two hosts may not see each other's lock
(the heartbeat row still shows the other prober; docs/architecture.md, "Processes").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

#: Seconds a takeover waits for the old prober to stop after SIGTERM before SIGKILL.
TAKEOVER_TERM_S = 20.0
#: Seconds it waits after SIGKILL.
TAKEOVER_KILL_S = 5.0
#: Seconds :meth:`ProberLock.acquire` keeps trying before it says the lock is held.
_ACQUIRE_S = 0.3


def lock_path(db: Path) -> Path:
    """The lock file of database ``db``: ``<db>.lock`` beside it."""
    return db.with_name(db.name + ".lock")


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or last held) a database's prober lock.

    Attributes:
        pid: the prober's process id.
        host: the host name it runs on.
        since: UTC ISO 8601 time it took the lock.
        log: where its log goes (a file path), or "" when it logs to a terminal or journald.
        restart: a command line that starts it again ("" when unknown).
    """

    pid: int
    host: str
    since: str
    log: str = ""
    restart: str = ""

    def where(self) -> str:
        """``pid 123 on host h since 2026-12-07T17:40:00Z``."""
        return f"pid {self.pid} on host {self.host} since {self.since}"


def read_info(db: Path) -> LockInfo | None:
    """What the lock file says about its (last) holder; None when there is no readable one."""
    try:
        data = json.loads(lock_path(db).read_text(encoding="utf-8"))
        return LockInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            since=str(data["since"]),
            log=str(data.get("log") or ""),
            restart=str(data.get("restart") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_held(db: Path) -> bool:
    """True while a live process holds ``db``'s prober lock (a prober is running on it)."""
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock taken just to look
    return False


def _stderr_log() -> str:
    """The file this process's stderr goes to ("" for a terminal, a pipe or journald)."""
    with contextlib.suppress(OSError):
        if not os.isatty(2):
            target = os.readlink("/proc/self/fd/2")
            if target.startswith("/") and Path(target).is_file():
                return target
    return ""


class ProberBusy(Exception):
    """Another prober holds the database's lock.

    Attributes:
        db: the database.
        info: what the lock file says about the holder (None if unreadable).
    """

    def __init__(self, db: Path, info: LockInfo | None, why: str = "") -> None:
        self.db = db
        self.info = info
        who = info.where() if info else "a process that did not say who it is"
        super().__init__(why or f"another prober is probing into {db}: {who}")


class ProberLock:
    """The lock a prober holds on its database for its whole life.

    Args:
        db: the database file (its directory is created).
        restart: the command line that starts this prober, stored for the dashboard.
    """

    def __init__(self, db: Path, restart: str = "") -> None:
        self.db = db
        self.path = lock_path(db)
        self.restart = restart
        self._fd: int | None = None
        self.info: LockInfo | None = None

    def acquire(self) -> LockInfo:
        """Take the lock without waiting and write who holds it.

        Raises:
            ProberBusy: another process holds it.
            OSError: the lock file cannot be created.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + _ACQUIRE_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A dashboard's is_held() holds a shared lock for microseconds: a real
                # holder is still there a moment later.
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise ProberBusy(self.db, read_info(self.db)) from None
                time.sleep(0.02)
        info = LockInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            log=_stderr_log(),
            restart=self.restart,
        )
        data = json.dumps(asdict(info)).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        self._fd, self.info = fd, info
        return info

    def release(self) -> None:
        """Drop the lock (the kernel drops it anyway when the process ends)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ProberLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _looks_like_inferwatch(pid: int) -> bool:
    """False only when /proc shows ``pid`` is some other program (a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc here: trust the lock file
    return b"inferwatch" in cmdline or b"tui.cli" in cmdline


def take_over(
    db: Path,
    *,
    term_s: float = TAKEOVER_TERM_S,
    kill_s: float = TAKEOVER_KILL_S,
) -> LockInfo | None:
    """End the prober that holds ``db``'s lock (SIGTERM, SIGKILL after ``term_s``) and wait
    until the lock is free. Returns who held it, None when nobody did.

    Raises:
        ProberBusy: the holder is on another host, cannot be identified, or outlived SIGKILL.
    """
    if not is_held(db):
        return None
    info = read_info(db)
    deadline = time.monotonic() + 2.0
    while info is None or info.pid == os.getpid():
        # The holder writes who it is just after taking the lock.
        if time.monotonic() > deadline:
            raise ProberBusy(db, info, f"cannot tell which process holds {lock_path(db)}")
        time.sleep(0.05)
        info = read_info(db)
    if info.host != socket.gethostname():
        raise ProberBusy(
            db, info, f"the prober on {db} runs on host {info.host}: stop it there ({info.where()})"
        )
    if not _looks_like_inferwatch(info.pid):
        raise ProberBusy(db, info, f"pid {info.pid} holding {lock_path(db)} is not inferwatch")
    for sig, wait_s in ((signal.SIGTERM, term_s), (signal.SIGKILL, kill_s)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not is_held(db):
                return info
            time.sleep(0.05)
    raise ProberBusy(db, info, f"the prober on {db} did not stop ({info.where()})")

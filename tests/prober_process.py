"""A real ``inferwatch run --headless`` process for tests, and what it wrote.

The prober under test is the one users run: its own process, its worker processes, a real
SQLite file; tests read the database the way the dashboard does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def config_toml(
    targets: Sequence[tuple[str, str]],
    interval_s: float,
    prober: dict[str, Any] | None = None,
    *,
    priced: bool = False,
) -> str:
    """A config with one openai-compatible target per ``(name, base_url)`` (with prices, so
    every probe is priced, when ``priced``)."""
    lines = ["[prober]"] + [f"{k} = {json.dumps(v)}" for k, v in (prober or {}).items()]
    lines += ["[defaults]", f"interval_s = {interval_s}", "timeout_s = 10"]
    for name, url in targets:
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            'provider = "openai-compatible"',
            f'base_url = "{url}"',
            'model = "m"',
        ]
        if priced:
            lines += ["input_usd_per_mtok = 0.5", "output_usd_per_mtok = 1.5"]
    return "\n".join(lines) + "\n"


class ProberProcess:
    """``python -m tui.cli run --headless`` on ``db`` with the config text given.

    Args:
        tmp: a directory for the config and the log.
        config: the config's TOML text.
        db: the database path (as the prober sees it).
        wrap: argv prefix (e.g. ``unshare ...``), with ``{cmd}`` replaced by the prober's
            command line as one shell string when given.
        pythonpath: extra directories on PYTHONPATH (before the repository).
        args: more arguments for ``run`` (``--takeover``, ``--log-format json``).
    """

    def __init__(
        self,
        tmp: Path,
        config: str,
        db: Path,
        *,
        wrap: Sequence[str] | None = None,
        pythonpath: Sequence[Path] = (),
        args: Sequence[str] = (),
        log_name: str = "prober.log",
    ) -> None:
        self.tmp = tmp
        self.db = db
        self.log = tmp / log_name
        cfg = tmp / "prober.toml"
        cfg.write_text(config)
        cmd = [sys.executable, "-m", "tui.cli", "run", "--headless", "--config", str(cfg)]
        cmd += ["--db", str(db), *args]
        if wrap is not None:
            shell = " ".join(f"'{c}'" for c in cmd)
            cmd = [w.replace("{cmd}", shell) for w in wrap]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(ROOT)])}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait; kill on timeout. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ProberProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (from /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on a fresh read-only connection ([] while the table is missing)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc) or "no such column" in str(exc):
            return []
        raise
    finally:
        conn.close()


def scalar(db: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first cell of ``sql``'s first row; None when there is none (yet)."""
    rows = query(db, sql, params)
    return rows[0][0] if rows else None


def counts(db: Path) -> dict[str, int]:
    """Probes stored per target."""
    return dict(query(db, "SELECT target, count(*) FROM probes GROUP BY target"))  # type: ignore[arg-type]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something true; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(sqlite3.OperationalError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def prober_row(db: Path) -> dict[str, Any] | None:
    """The heartbeat row as a dict, None before the first heartbeat."""
    rows = query(db, "SELECT pid, heartbeat_at, workers, problem, skipped_ticks, stats FROM prober")
    if not rows:
        return None
    pid, beat, workers, problem, skipped, stats = rows[0]
    return {
        "pid": pid,
        "heartbeat_at": beat,
        "workers": workers,
        "problem": problem or "",
        "skipped_ticks": skipped,
        "stats": json.loads(stats) if stats else {},
    }

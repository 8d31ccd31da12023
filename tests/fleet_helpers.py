"""Real processes for the alert and fleet tests: probers, Prometheus, Alertmanager."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(*names: str) -> str:
    """The first of ``names`` on PATH, or skip the test saying which package provides it."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"{names[0]} not installed (Debian package {names[-1]}); .ci/run installs it")


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError, ValueError, KeyError, IndexError, sqlite3.Error):
            pass
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s (last: {last!r})")


class Proc:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def prober(config: Path, db: Path, log: Path, metrics: str | None = None) -> Proc:
    argv = [sys.executable, "-m", "tui.cli", "run", "--headless", "--config", str(config)]
    argv += ["--db", str(db)]
    if metrics:
        argv += ["--metrics", metrics]
    return Proc(argv, log)

"""The dashboard ends, and its prober with it (issue #11): real processes in a real terminal
(a private tmux server).

``tmux kill-session`` 2–3 s after launch left the dashboard stuck in Textual's shutdown in 3
of 14 tries while its prober child kept probing (and spending). Here a closed session,
SIGHUP and SIGTERM each end the dashboard and its prober within seconds; ``inferwatch``
without a command attaches to a prober already running instead of starting a second one,
and leaves it running when it quits.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prober_process import (
    ROOT,
    ProberProcess,
    config_toml,
    pid_alive,
    prober_row,
    wait_for,
)
from tests.servers import ReplayServer, Script
from tui.prober_lock import is_held

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

FAST = Script(
    headers_at=0.0,
    reads=[
        (
            0.005,
            b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n',
        ),
        (0.006, b"data: [DONE]\n\n"),
    ],
)
_sockets = itertools.count()


class Tmux:
    """A private tmux server (its own socket): nothing touches the user's sessions."""

    def __init__(self) -> None:
        self.socket = f"iw-test-{os.getpid()}-{next(_sockets)}"

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        ).stdout

    def start(self, argv: list[str], width: int = 200) -> int:
        """Run ``argv`` in a new session's pane; returns its pid (the command's own)."""
        env = f"PYTHONPATH={shlex.quote(str(ROOT))}"
        cmd = f"cd {shlex.quote(str(ROOT))} && exec env {env} {shlex.join(argv)}"
        out = self.run(
            "new-session", "-d", "-s", "dash", "-x", str(width), "-y", "30", "-P", "-F",
            "#{pane_pid}", cmd,
        )  # fmt: skip
        return int(out.strip())

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "dash")

    def kill(self) -> None:
        self.run("kill-server")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    try:
        yield t
    finally:
        t.kill()


def dashboard(tmux: Tmux, tmp: Path, db: Path, url: str, *argv: str) -> tuple[int, int]:
    """``inferwatch run`` in tmux; returns (dashboard pid, its prober's pid)."""
    cfg = tmp / "dash.toml"
    cfg.write_text(config_toml([("a", url)], 0.5))
    pid = tmux.start(
        [sys.executable, "-m", "tui.cli", *argv, "--db", str(db), "--config", str(cfg)]
    )
    row = wait_for(
        "the prober's heartbeat", lambda: (r := prober_row(db)) and r["pid"] != pid and r
    )
    return pid, int(row["pid"])


@pytest.mark.parametrize("how", ["kill-session", "SIGHUP", "SIGTERM"])
def test_the_dashboard_and_its_prober_end_within_seconds(
    tmp_path: Path, replay: ReplayServer, tmux: Tmux, how: str
) -> None:
    url = replay.add("ending", FAST)
    db = tmp_path / "e.db"
    dash, prober = dashboard(tmux, tmp_path, db, url, "run")
    time.sleep(0.5)  # the dashboard drawing, the prober probing: mid-flight, as users quit
    try:
        if how == "kill-session":
            tmux.run("kill-session", "-t", "dash")
        else:
            os.kill(dash, getattr(signal, how))
        wait_for("the dashboard gone", lambda: not pid_alive(dash), timeout=7, every=0.1)
        wait_for("its prober gone", lambda: not pid_alive(prober), timeout=8, every=0.1)
    finally:
        for pid in (dash, prober):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("attempt", range(3))
def test_kill_session_during_start_ends_both(
    tmp_path: Path, replay: ReplayServer, tmux: Tmux, attempt: int
) -> None:
    """The reported case: the session killed 2–3 s after launch, while the dashboard paints
    its first frames and starts its prober (Textual's own driver hung in about 1 of 12 such
    tries here, none in 20 with ``tui.driver``'s)."""
    url = replay.add("ending-early", FAST)
    db = tmp_path / "s.db"
    cfg = tmp_path / "s.toml"
    cfg.write_text(config_toml([("a", url)], 0.5))
    dash = tmux.start(
        [sys.executable, "-m", "tui.cli", "run", "--db", str(db), "--config", str(cfg)]
    )
    time.sleep(2.0 + 0.4 * attempt)
    try:
        tmux.run("kill-session", "-t", "dash")
        wait_for("the dashboard gone", lambda: not pid_alive(dash), timeout=7, every=0.1)
        wait_for("no prober left", lambda: not is_held(db), timeout=8, every=0.1)
    finally:
        if pid_alive(dash):
            os.kill(dash, signal.SIGKILL)


def test_inferwatch_attaches_to_the_running_prober_and_leaves_it_running(
    tmp_path: Path, replay: ReplayServer, tmux: Tmux
) -> None:
    url = replay.add("attach", FAST)
    db = tmp_path / "a.db"
    with ProberProcess(tmp_path, config_toml([("a", url)], 0.5), db) as headless:
        wait_for("the prober's heartbeat", lambda: (r := prober_row(db)) and r["pid"])
        cfg = tmp_path / "prober.toml"
        dash = tmux.start([sys.executable, "-m", "tui.cli", "--db", str(db), "--config", str(cfg)])
        wait_for("the prober's state drawn", lambda: "prober up since" in tmux.screen())
        time.sleep(1.5)  # time enough for a second prober to start and heartbeat, if any did
        assert not db.with_suffix(".prober.log").exists(), "no second prober was started"
        row = prober_row(db)
        assert row is not None and row["pid"] == headless.proc.pid
        tmux.run("send-keys", "-t", "dash", "q")
        wait_for("the dashboard gone", lambda: not pid_alive(dash), timeout=7, every=0.1)
        time.sleep(1.0)
        assert headless.alive(), "quitting an attached dashboard leaves the prober running"


def test_run_refuses_beside_a_running_prober(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add("refuse", FAST)
    db = tmp_path / "r.db"
    with ProberProcess(tmp_path, config_toml([("a", url)], 0.5), db) as headless:
        wait_for("the prober's heartbeat", lambda: (r := prober_row(db)) and r["pid"])
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli", "run", "--db", str(db)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 3
        assert f"pid {headless.proc.pid}" in out.stderr and "--takeover" in out.stderr

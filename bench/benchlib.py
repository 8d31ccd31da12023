"""Shared parts of the prober benchmarks (``scale.py``, ``hostile.py``): scripted servers in
their own processes, the bare-client floor, a real headless prober process, its CPU time, RSS
and garbage-collector pauses, and the probes it stored.

Nothing here is imported by the product.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def iso(ts: float) -> str:
    """Epoch seconds as the stored UTC ISO format."""
    when = datetime.fromtimestamp(ts, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Server:
    """``bench/faultserver.py`` in its own process."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "faultserver.py"), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.port = int(line.split()[1])

    def url(self, mode: str) -> str:
        """Base URL of a mode."""
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def close(self) -> None:
        """Stop the server (it exits when its stdin closes)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def servers(count: int) -> Iterator[list[Server]]:
    """``count`` servers, closed at exit."""
    started = [Server() for _ in range(count)]
    try:
        yield started
    finally:
        for s in started:
            s.close()


class Floor:
    """``bench/floorclient.py`` sampling one server for ``seconds``."""

    def __init__(self, port: int, seconds: float, every: float = 0.25) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "floorclient.py"),
                "--port",
                str(port),
                "--seconds",
                str(seconds),
                "--every",
                str(every),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )

    def result(self, start: float, end: float) -> list[float]:
        """Errors (ms) of the samples taken between epoch ``start`` and ``end``."""
        out, _ = self.proc.communicate(timeout=600)
        data = json.loads(out)
        return [e for e, at in zip(data["errors_ms"], data["at"], strict=True) if start <= at < end]


def targets_toml(
    urls: Sequence[tuple[str, str]], interval_s: float, prober: dict[str, object]
) -> str:
    """A config with one target per ``(name, base_url)``."""
    lines = ["[prober]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in prober.items()]
    lines += ["", "[defaults]", f"interval_s = {interval_s}", "timeout_s = 30", "max_tokens = 64"]
    lines += ["stall_timeout_s = 10", "temperature = 0.0", ""]
    for name, url in urls:
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            'provider = "openai-compatible"',
            f'base_url = "{url}"',
            'model = "bench"',
            "input_usd_per_mtok = 0.5",
            "output_usd_per_mtok = 1.5",
            "",
        ]
    return "\n".join(lines)


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` (threads included)."""
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def rss_mb(pids: Sequence[int]) -> float:
    """Resident memory of ``pids``, MB."""
    total = 0
    for p in pids:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / 1e6


@dataclass
class ProberRun:
    """A real ``inferwatch run --headless`` process on a fresh database."""

    config: str
    root: Path = ROOT
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="iw-bench-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "bench.db"

    @property
    def gc_dir(self) -> Path:
        return self.workdir / "gc"

    def start(self) -> None:
        cfg = self.workdir / "bench.toml"
        cfg.write_text(self.config)
        self.gc_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": f"{self.root}{os.pathsep}{BENCH / '_gcprobe'}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "IW_BENCH_GC_DIR": str(self.gc_dir),
        }
        log = open(self.workdir / "prober.log", "wb")  # noqa: SIM115 (lives with the process)
        argv = ["run", "--headless", "--config", str(cfg), "--db", str(self.db)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *argv],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=log,
        )

    def pids(self) -> list[int]:
        assert self.proc is not None
        return tree(self.proc.pid)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            for p in self.pids():
                os.kill(p, signal.SIGKILL)
            return self.proc.wait()

    def gc_pauses(self, start: float, end: float) -> list[tuple[int, float]]:
        """(generation, pause ms) of every collection in the prober's processes in the window."""
        out = []
        for path in self.gc_dir.glob("*.json"):
            data = json.loads(path.read_text())
            out += [(g, ms) for at, g, ms in data["pauses"] if start <= at < end]
        return out

    def gc_spans(self, start: float, end: float) -> list[tuple[float, float, int, bool]]:
        """Every collection in the window: (began, ended) epoch seconds, generation, and whether
        it paused a process that probes: a worker (``tui.prober_worker``), or the prober itself
        when it has no workers (a checkout from before them)."""
        out = []
        dumps = [json.loads(path.read_text()) for path in self.gc_dir.glob("*.json")]
        has_workers = any("prober_worker" in str(a) for d in dumps for a in d["argv"])
        for data in dumps:
            worker = not has_workers or any("prober_worker" in str(a) for a in data["argv"])
            out += [
                (at - ms / 1000.0, at, g, worker)
                for at, g, ms in data["pauses"]
                if start <= at < end
            ]
        return out

    def rows(self, start: float, end: float) -> list[dict[str, object]]:
        """Stored probes that started in the window, as dicts."""
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute(
                "SELECT * FROM probes WHERE started_at >= ? AND started_at < ?",
                [iso(start), iso(end)],
            ).fetchall()
            return [dict(r) for r in rows]
        finally:
            conn.close()

    def log_tail(self, lines: int = 20) -> str:
        text = (self.workdir / "prober.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Sampler:
    """Samples RSS of a process tree over time."""

    def __init__(self) -> None:
        self.rss: list[tuple[float, float]] = []

    def sample(self, pids: Sequence[int]) -> None:
        self.rss.append((time.time(), rss_mb(pids)))

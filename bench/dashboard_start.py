"""Time from launch to the first table on screen: ``inferwatch view`` beside htop and btop.

Run: .venv/bin/python bench/dashboard_start.py [--targets 200] [--runs 7]

Builds a database of N targets with an hour of probes (one every 30 s, through the prober's
own ``HistoryWriter``, so states and incidents are real), then starts each program in a
detached tmux pane (120x40) and polls ``tmux capture-pane`` until its table is on screen:

* ``inferwatch view --db DB`` (no prober: the dashboard over an existing database): "table"
  is the overview's header and the first target's row; "figures" is that row with its P50
  filled in (the first snapshot drawn);
* ``htop`` and ``btop`` (if installed): their process table's header and first row.

Each program is started by ``exec`` from a shell already running in the pane, so the time
is from the ``exec`` to the screen, with no tmux start-up in it. The checkout's modules are
byte-compiled first (``compileall``, into the ignored ``__pycache__``): a launch after the
first one, or from a pip install, reads them compiled, while an environment with
``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile ~100 ms of our source on every launch
(``--no-compile`` measures that case). Prints the median and the
spread of the runs, and the CPU time (user + system) the program had used when its table
appeared.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.record import ProbeRecord
from probes.timestamps import iso, utc_now
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget

TICKS = os.sysconf("SC_CLK_TCK")
WIDTH, HEIGHT = 120, 40
ROOT = str(Path(__file__).resolve().parents[1])
_SESSIONS = itertools.count()


def build_db(path: Path, targets: int, minutes: int = 60, step_s: float = 30.0) -> None:
    """N published targets with ``minutes`` of probes each, ending now."""
    db = open_db(path)
    names = [f"target-{i:03d}" for i in range(targets)]
    published = [
        control.PublishedTarget(n, f"prov-{i % 7}", f"model-{i % 13}", None, step_s, True, False)
        for i, n in enumerate(names)
    ]
    control.publish_targets(db, published)
    now = utc_now()
    start = now - timedelta(minutes=minutes)
    writer = HistoryWriter(db, [MonitoredTarget(n, f"{n}.example") for n in names], start)
    steps = int(minutes * 60 / step_s)
    for k in range(steps):
        for i, name in enumerate(names):
            at = start + timedelta(seconds=k * step_s + i * step_s / targets)
            fail = (k * 7 + i) % 31 == 0
            writer.store_probe(
                ProbeRecord(
                    started_at=iso(at),
                    target=name,
                    provider=f"prov-{i % 7}",
                    model=f"model-{i % 13}",
                    status="error" if fail else "ok",
                    error_kind="server_error" if fail else None,
                    error_message="HTTP 500: internal error" if fail else None,
                    ttft_ms=None if fail else 200.0 + (i * 37 + k * 11) % 400,
                    total_ms=900.0,
                    decode_tps=None if fail else 80.0 + i % 50,
                    input_tokens=20,
                    output_tokens=48,
                    cost_usd=0.0001,
                    token_events=48,
                    usage_source="reported",
                )
            )
    writer.heartbeat(now)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (its threads included), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


@dataclass
class Start:
    """One launch: seconds to each awaited screen, and CPU seconds used by then."""

    seconds: dict[str, float]
    cpu_s: float


def launch(command: str, waits: dict[str, re.Pattern[str]], timeout_s: float = 20.0) -> Start:
    """Exec ``command`` in a fresh pane; seconds until each pattern matches the screen."""
    session = f"iw-start-{os.getpid()}-{next(_SESSIONS)}"
    for attempt in range(5):  # a tmux server that is just exiting refuses the first one
        try:
            tmux("new", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), "-c", ROOT, "sh")
            break
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            time.sleep(0.2)
    try:
        pid = int(tmux("display", "-p", "-t", session, "#{pane_pid}"))
        time.sleep(0.3)  # the shell is ready
        t0 = time.perf_counter()
        tmux("send-keys", "-t", session, f"exec {command}", "Enter")
        seen: dict[str, float] = {}
        cpu = 0.0
        while len(seen) < len(waits):
            screen = tmux("capture-pane", "-p", "-t", session)
            elapsed = time.perf_counter() - t0
            for label, pattern in waits.items():
                if label not in seen and pattern.search(screen):
                    seen[label] = elapsed
                    if label == next(iter(waits)):
                        cpu = cpu_seconds(pid)
            if elapsed > timeout_s:
                missing = set(waits) - set(seen)
                raise RuntimeError(f"{command}: no {missing} in {timeout_s} s:\n{screen}")
            time.sleep(0.005)
        return Start(seen, cpu)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def report(name: str, starts: list[Start]) -> None:
    labels = list(starts[0].seconds)
    parts = []
    for label in labels:
        values = sorted(s.seconds[label] for s in starts)
        parts.append(
            f"{label} median {statistics.median(values):.3f} s "
            f"(min {values[0]:.3f}, max {values[-1]:.3f})"
        )
    cpu = statistics.median(s.cpu_s for s in starts)
    print(f"{name:<16} " + "; ".join(parts) + f"; CPU by the table {cpu:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--no-compile", action="store_true", help="leave the checkout's modules uncompiled"
    )
    args = ap.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tmux is needed (apt-get install tmux)")
    exe = f"{sys.executable} -m tui.cli"  # this checkout's code, whatever is installed
    print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f} at start")
    if not args.no_compile:
        for package in ("probes", "store", "tui"):
            compileall.compile_dir(str(Path(ROOT) / package), quiet=1)
    print("modules: " + ("not compiled" if args.no_compile else "byte-compiled"))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        build_db(db, args.targets)
        print(f"database: {args.targets} targets, 1 h of probes ({time.perf_counter() - t0:.0f} s)")
        programs: list[tuple[str, str, dict[str, re.Pattern[str]]]] = [
            (
                "inferwatch view",
                f"env INFERWATCH_CONFIG={tmp}/none.toml {exe} view --db {db}",
                {
                    "table": re.compile(r"P50ms.*\n.*target-000"),
                    "figures": re.compile(r"target-000\s+\d"),
                },
            )
        ]
        if shutil.which("htop"):
            programs.append(("htop", "htop", {"table": re.compile(r"PID USER.*\n\s*\d+ ")}))
        if shutil.which("btop"):
            programs.append(("btop", "btop", {"table": re.compile(r"Pid:.*\n.*\d+ \S")}))
        results: dict[str, list[Start]] = {name: [] for name, _, _ in programs}
        for _ in range(args.runs):  # interleaved, so load changes hit every program alike
            for name, command, waits in programs:
                results[name].append(launch(command, waits))
        print(f"{args.runs} runs each, {WIDTH}x{HEIGHT} tmux pane:")
        for name, starts in results.items():
            report(name, starts)
    print(f"load {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()

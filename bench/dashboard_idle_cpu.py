"""Idle CPU of the dashboard with N targets, in a real terminal (tmux), beside htop and btop.

Run: .venv/bin/python bench/dashboard_idle_cpu.py [--targets 200] [--seconds 60] [--compare]

Starts the demo simulators, a config of N targets probed every 30 s, and ``inferwatch run``
(dashboard + prober subprocess) inside a detached tmux session (80x24 unless ``--size``);
after a 10 s warm-up it samples the dashboard process's CPU time (user + system, /proc, all
its threads) for the given time and prints the share of one core. The prober's own CPU is
reported separately. With ``--compare``, htop and btop (if installed) run in panes of the same
size over the same seconds, so the three figures share the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.simulator import DEMO_PROFILES, SimulatorProcess

TICKS = os.sysconf("SC_CLK_TCK")
ROOT = str(Path(__file__).resolve().parents[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (its threads included), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the prober and its workers)."""
    out = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def pane(session: str, command: str, size: tuple[int, int]) -> int:
    """Start ``command`` in a new detached tmux session; returns the pane's process id."""
    width, height = size
    subprocess.run(
        [
            "tmux",
            "new",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            ROOT,
            command,
        ],
        check=True,
    )
    return int(
        subprocess.run(
            ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def write_config(path: Path, sim: SimulatorProcess, targets: int, interval_s: float) -> None:
    lines = ["[defaults]", f"interval_s = {interval_s:g}", "[prober]", "jitter_s = 5"]
    for i in range(targets):
        profile = DEMO_PROFILES[i % len(DEMO_PROFILES)].name
        lines += [
            "[[targets]]",
            f'name = "target-{i:03d}"',
            'provider = "openai-compatible"',
            f'base_url = "{sim.base_url(profile)}"',
            f'model = "{profile}"',
        ]
    path.write_text("\n".join(lines))


def main(targets: int, seconds: float, compare: bool, size: tuple[int, int]) -> None:
    if not shutil.which("tmux"):
        sys.exit("tmux is needed (apt-get install tmux)")
    print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f} at start")
    sessions: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess() as sim:
        config = Path(tmp) / "c.toml"
        write_config(config, sim, targets, 30.0)
        db = Path(tmp) / "bench.db"
        exe = f"{sys.executable} -m tui.cli"  # this checkout's code, whatever is installed
        base = f"iw-idle-{os.getpid()}"
        try:
            sessions.append(base)
            dash = pane(base, f"{exe} run --config {config} --db {db}", size)
            others: dict[str, int] = {}
            if compare:
                for tool in ("htop", "btop"):
                    if shutil.which(tool):
                        sessions.append(f"{base}-{tool}")
                        others[tool] = pane(f"{base}-{tool}", tool, size)
            time.sleep(3)
            prober = descendants(dash)
            time.sleep(7)
            pids = {"dashboard": [dash], "prober": prober} | {k: [v] for k, v in others.items()}
            before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
            time.sleep(seconds)
            after = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", base], capture_output=True, text=True
            ).stdout
        finally:
            for s in sessions:
                subprocess.run(["tmux", "kill-session", "-t", s], check=False)
        width, height = size
        print(
            f"{targets} targets every 30 s, {width}x{height} tmux panes, refresh 1 s, "
            f"{seconds:.0f} s after a 10 s warm-up:"
        )
        for name in pids:
            print(f"  {name:<10} {100 * (after[name] - before[name]) / seconds:5.2f} % of one core")
        print(f"load {os.getloadavg()[0]:.2f} at end; last screen:\n{screen}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--compare", action="store_true", help="also measure htop and btop")
    parser.add_argument("--size", default="80x24", help="pane size, WIDTHxHEIGHT (80x24)")
    args = parser.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    main(args.targets, args.seconds, args.compare, (w, h))

"""Idle CPU of the dashboard with 20 targets, in a real terminal (tmux, 80x24).

Run: .venv/bin/python bench/dashboard_idle_cpu.py [--seconds 60]

Starts the demo simulators, a config of 20 targets probed every 30 s, and
``inferwatch run`` (dashboard + prober subprocess) inside a detached tmux session; after a
10 s warm-up it samples the dashboard process's CPU time (user + system, /proc) for the given
time and prints the share of one core. The prober's own CPU is reported separately.
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

from probes.simulator import DEMO_PROFILES, SimulatorProcess

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def main(seconds: float) -> None:
    if not shutil.which("tmux"):
        sys.exit("tmux is needed (apt-get install tmux)")
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess() as sim:
        config = Path(tmp) / "c.toml"
        lines = ["[defaults]", "interval_s = 30", "[prober]", "jitter_s = 5"]
        for i in range(20):
            profile = DEMO_PROFILES[i % len(DEMO_PROFILES)].name
            lines += [
                "[[targets]]",
                f'name = "target-{i:02d}"',
                'provider = "openai-compatible"',
                f'base_url = "{sim.base_url(profile)}"',
                f'model = "{profile}"',
            ]
        config.write_text("\n".join(lines))
        db = Path(tmp) / "bench.db"
        exe = Path(sys.executable).parent / "inferwatch"
        session = f"iw-bench-{os.getpid()}"
        subprocess.run(
            [
                "tmux",
                "new",
                "-d",
                "-s",
                session,
                "-x",
                "80",
                "-y",
                "24",
                f"{exe} run --config {config} --db {db}",
            ],
            check=True,
        )
        try:
            time.sleep(3)
            pane_pid = int(
                subprocess.run(
                    ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            prober = children(pane_pid)
            time.sleep(7)
            a0, p0 = cpu_seconds(pane_pid), sum(cpu_seconds(p) for p in prober)
            time.sleep(seconds)
            a1, p1 = cpu_seconds(pane_pid), sum(cpu_seconds(p) for p in prober)
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        print(
            f"dashboard: {100 * (a1 - a0) / seconds:.2f} % of one core over {seconds:.0f} s "
            f"(20 targets, 80x24 tmux pane, refresh 1 s)"
        )
        print(f"prober:    {100 * (p1 - p0) / seconds:.2f} % of one core")
        print(f"machine: {os.cpu_count()} cores; last screen:\n{screen}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    main(parser.parse_args().seconds)

"""Where a probing worker's CPU goes: a sampling profile of a real headless prober, by layer.

Run from the repository root (py-spy is in the bench extra: pip install -e '.[bench]'):

    .venv/bin/python bench/prober_profile.py [--targets 100] [--seconds 30]

It starts one scripted server (``bench/faultserver.py``: first token at 300 ms, 50 tokens 20 ms
apart) and ``inferwatch run --headless`` with N targets at 15 s, waits one interval, then
samples the first probing worker with py-spy (200 Hz, without stopping it) and prints each
layer's share of the samples taken while the worker was on a CPU (own time of the innermost
frame), then the frames that hold the most samples inclusively.

The "poll" layer is the event loop's ``epoll_wait``: a process that sleeps between tokens pays
the kernel to wake it once per token; on a VM that wake-up is most of a probe's CPU (see
``probe_cpu.py``'s blocking-recv and raw-asyncio floors).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ProberRun, load, servers, targets_toml

#: The first part of a frame's file (py-spy prints ``func (package/module.py:line)``) -> layer.
LAYERS = {
    "selectors.py": "poll (epoll_wait: waiting to be woken)",
    "probes": "inferwatch probes/",
    "tui": "inferwatch tui/ (worker plumbing)",
    "httpx_sse": "httpx-sse",
    "httpx": "httpx",
    "httpcore": "httpcore",
    "h11": "h11",
    "asyncio": "asyncio (event loop)",
    "json": "json",
}


def layer(frame: str) -> str:
    top = frame.rpartition("(")[2].split(":")[0].split("/")[0]
    return LAYERS.get(top, "other (built-ins, stdlib)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    out = Path(tempfile.mkdtemp(prefix="iw-profile-")) / "worker.txt"
    print(f"# {args.targets} targets at 15 s, load {load()}", flush=True)
    with servers(1) as srv:
        urls = [(f"t{i:05d}", srv[0].url("ok")) for i in range(args.targets)]
        run = ProberRun(targets_toml(urls, 15.0, {}))
        run.start()
        try:
            time.sleep(20)  # one interval and start-up
            worker = run.pids()[-1]
            argv = [spy, "record", "-p", str(worker), "-d", str(args.seconds), "-r", "200"]
            subprocess.run(
                [*argv, "-f", "raw", "-o", str(out), "--nonblocking"],
                check=True,
                capture_output=True,
            )
        finally:
            run.stop()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[layer(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples on a CPU in {args.seconds} s; own time by layer:")
    for name, n in own.most_common():
        print(f"  {name:<40} {n / total:6.1%}")
    print("frames holding the most samples (inclusive):")
    for frame, n in inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {frame[:120]}")
    print(f"# load at the end {load()}")


if __name__ == "__main__":
    main()

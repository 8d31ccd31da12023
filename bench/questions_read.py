"""What issue 13's answers cost the dashboard's reader thread per refresh.

Run: .venv/bin/python bench/questions_read.py [--reads 2000]

Builds the deterministic questions fixture (tests/questions_fixture.py: 7 targets, 1 h of
canaries, workloads, cache checks, two official status pages) and measures, in CPU time of
this process:

* an idle refresh (``SnapshotReader.read`` with nothing new: the once-a-second case; every
  15th re-summarises every target, as the dashboard does), and of it the official status
  check (one small query a refresh, the readings re-read when the poller wrote or once a
  minute);
* a detail refresh of chat-fallback after a new probe (its cache verdict and cold starts read);
* one recompute of the group rows' fallback fits (``fallback_report``; the dashboard does it
  at most every 10 s, and only when the data changed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.db import open_db
from store.fallback import fallback_report
from store.reader import SnapshotReader
from tests import dashboard_fixture, questions_fixture
from tests.dashboard_fixture import NOW


def cpu_us(fn: object, n: int) -> float:
    """Mean CPU time of ``fn()`` over ``n`` calls, microseconds."""
    call = fn  # type: ignore[assignment]
    start = time.process_time()
    for _ in range(n):
        call()  # type: ignore[operator]
    return (time.process_time() - start) / n * 1e6


def main(reads: int) -> None:
    print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        path = questions_fixture.build(Path(tmp) / "q.db")
        reader = SnapshotReader(path)
        reader.official_interval_s = 300.0
        clock = [NOW]

        def idle() -> None:
            clock[0] += timedelta(seconds=1)
            reader.read(3600, clock[0])

        reader.read(3600, NOW)
        idle_us = cpu_us(idle, reads)
        conn = reader.connection()
        assert conn is not None

        def official() -> None:
            clock[0] += timedelta(seconds=1)
            reader._read_official(conn, clock[0])

        official_us = cpu_us(official, reads)
        db = open_db(path)

        def detail() -> None:
            reader._detail_key = None  # as after a new probe
            clock[0] += timedelta(seconds=1)
            reader.read(3600, clock[0], detail="chat-fallback")

        detail_us = cpu_us(detail, max(reads // 10, 10))
        config = dashboard_fixture.config()
        fits_us = cpu_us(lambda: fallback_report(db, config, 3600, NOW), max(reads // 10, 10))
        reader.close()
        db.close()
    print(f"idle refresh (7 targets, 1 h window):  {idle_us:8.0f} µs CPU")
    print(f"  of it, the official status check:    {official_us:8.0f} µs CPU")
    print(f"detail refresh (cache, cold starts):   {detail_us:8.0f} µs CPU")
    print(f"fallback fits for the group rows:      {fits_us:8.0f} µs CPU")
    print(f"load {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    main(parser.parse_args().reads)

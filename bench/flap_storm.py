"""Flap storm: what a storm of flapping probes produces in notifications, compressed time.

20 targets probed every 30 s for 6 hours of simulated time (720 probes each) through the real
outage machines, alert engine and notifications table on a real SQLite file. Targets fail
at random with rates from 5 % to 60 %; 4 of them also have two hard outages; two pairs form
primary/fallback groups. Delivery goes to a `bell` channel (recorded, no network), so the
count is exactly what a webhook would receive.

    .venv/bin/python bench/flap_storm.py
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.config import parse_config
from tests.alert_helpers import Core

TARGETS = 20
HOURS = 6
STEP_S = 30


def main() -> None:
    lines = ["[defaults]", "interval_s = 30", "[[channels]]", 'name = "bell"', 'type = "bell"']
    for i in range(TARGETS):
        lines += [
            "[[targets]]",
            f'name = "t{i:02d}"',
            'provider = "openai-compatible"',
            f'base_url = "http://127.0.0.1:9/{i}/v1"',
            'model = "m"',
        ]
        if i < 4:
            lines.append(f'group = "g{i // 2}"')
    config = parse_config("\n".join(lines))
    rng = random.Random(12)
    rates = {f"t{i:02d}": 0.05 + 0.55 * i / (TARGETS - 1) for i in range(TARGETS)}
    outages = {f"t{i:02d}" for i in (0, 2, 5, 9)}
    start = datetime(2026, 11, 2, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "storm.db"
        core = Core(config, path, start)
        flips = 0
        last: dict[str, bool] = {}
        t0 = time.perf_counter()
        steps = HOURS * 3600 // STEP_S
        for step in range(steps):
            for name, rate in rates.items():
                minute = step * STEP_S / 60
                hard = name in outages and (60 <= minute < 75 or 200 <= minute < 230)
                ok = not hard and rng.random() >= rate
                flips += int(name in last and last[name] != ok)
                last[name] = ok
                core.probe(name, ok, step_s=STEP_S / TARGETS)
        elapsed = time.perf_counter() - t0
        core.wait_delivered()
        db = core.db
        probes = db.execute("SELECT count(*) FROM probes").fetchone()[0]
        changes = db.execute(
            "SELECT count(*) FROM incidents WHERE from_state != 'no data'"
        ).fetchone()[0]
        down = db.execute("SELECT count(*) FROM incidents WHERE to_state = 'down'").fetchone()[0]
        sent = db.execute(
            "SELECT event, count(*) FROM notifications GROUP BY event ORDER BY event"
        ).fetchall()
        core.close()
    total = sum(n for _, n in sent)
    print(f"{TARGETS} targets, {HOURS} h simulated at {STEP_S} s: {probes} probes")
    print(f"probe outcome flips (ok<->failed between consecutive probes): {flips}")
    print(f"outage state changes (incidents after the first state): {changes}, into down: {down}")
    print(f"notifications: {total} ({', '.join(f'{e} {n}' for e, n in sent)})")
    print(f"run time {elapsed:.1f} s ({probes / elapsed:.0f} probes/s through state + alerts)")


if __name__ == "__main__":
    main()

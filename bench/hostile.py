"""Hostile neighbours: do 20 misbehaving targets disturb 10 healthy ones?

Run from the repository root:

    .venv/bin/python bench/hostile.py                 # 2 runs of 3 minutes
    .venv/bin/python bench/hostile.py --seconds 60    # shorter

Two runs of a real headless prober (``inferwatch run --headless``), each after a short
warm-up:

* quiet: 10 healthy targets on a scripted server (``bench/faultserver.py`` mode ``ok``: first
  token 300 ms after the request, 50 tokens 20 ms apart), every ``--interval`` seconds;
* hostile: the same 10, plus 20 hostile targets on a second server process: 4 that hang
  (request read, no answer), 4 that stall (three tokens, then silence), 3 that dribble
  (20,000 tokens, one per write), 3 that send 50 MB, 3 slowloris (headers one byte a second)
  and 3 that reset the connection mid-stream.

For the healthy targets of each run it prints TTFT error (``ttft_ms`` - 300) p50 / p99 / max
beside the bare-client floor on the same server, start-to-start spacing (how far from the
interval, p99 and max), start lateness, loop lag, and the prober's RSS after the warm-up and
at the end; for the hostile targets, how their probes ended.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from benchlib import ROOT, Floor, ProberRun, Sampler, cpu_seconds, load, pct, servers, targets_toml

TTFT_MS = 300.0
HOSTILE = {"hang": 4, "stall": 4, "dribble": 3, "big": 3, "slowloris": 3, "reset": 3}


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(hostile: bool, args: argparse.Namespace) -> dict[str, object]:
    with servers(2 if hostile else 1) as srv:
        urls = [(f"healthy{i}", srv[0].url("ok")) for i in range(10)]
        if hostile:
            for mode, n in HOSTILE.items():
                urls += [(f"{mode}{i}", srv[1].url(mode)) for i in range(n)]
        prober = {"jitter_s": args.jitter}
        run = ProberRun(targets_toml(urls, args.interval, prober), root=Path(args.root))
        load_before = load()
        run.start()
        floor = Floor(srv[0].port, args.warmup + args.seconds + 2, every=0.5)
        sampler = Sampler()
        time.sleep(args.warmup)
        w0 = time.time()
        cpu0 = cpu_seconds(run.pids())
        while time.time() < w0 + args.seconds:
            sampler.sample(run.pids())
            time.sleep(min(10.0, max(0.0, w0 + args.seconds - time.time())))
        sampler.sample(run.pids())
        w1 = time.time()
        cpu1 = cpu_seconds(run.pids())
        load_after = load()
        code = run.stop()
        floor_errors = floor.result(w0, w1)
    rows = run.rows(w0, w1)
    healthy = [r for r in rows if str(r["target"]).startswith("healthy")]
    ok = [r for r in healthy if r["status"] == "ok" and r["ttft_ms"] is not None]
    err = [float(r["ttft_ms"]) - TTFT_MS for r in ok]  # type: ignore[arg-type]
    starts: dict[str, list[float]] = defaultdict(list)
    for r in healthy:
        starts[str(r["target"])].append(ts(str(r["started_at"])))
    spacing = []
    for values in starts.values():
        values.sort()
        spacing += [abs(b - a - args.interval) for a, b in itertools.pairwise(values)]
    late = [float(r["start_late_ms"]) for r in healthy if r.get("start_late_ms") is not None]  # type: ignore[arg-type]
    lag = [float(r["loop_lag_ms"]) for r in healthy if r.get("loop_lag_ms") is not None]  # type: ignore[arg-type]
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        name = str(r["target"])
        if not name.startswith("healthy"):
            kind = name.rstrip("0123456789")
            outcomes[kind][str(r["error_kind"] or "ok")] += 1
    expected = 10 * (w1 - w0) / args.interval
    return {
        "run": "hostile" if hostile else "quiet",
        "healthy_probes": len(healthy),
        "healthy_expected": expected,
        "healthy_failed": sum(1 for r in healthy if r["status"] != "ok"),
        "err_p50": pct(err, 50),
        "err_p99": pct(err, 99),
        "err_max": max(err) if err else None,
        "floor_p50": pct(floor_errors, 50),
        "floor_p99": pct(floor_errors, 99),
        "spacing_p99": pct(spacing, 99),
        "spacing_max": max(spacing) if spacing else None,
        "late_p99": pct(late, 99),
        "lag_p99": pct(lag, 99),
        "lag_max": max(lag) if lag else None,
        "rss_first": sampler.rss[0][1] if sampler.rss else None,
        "rss_last": sampler.rss[-1][1] if sampler.rss else None,
        "rss_max": max(v for _, v in sampler.rss) if sampler.rss else None,
        "cpu_pct": 100 * (cpu1 - cpu0) / (w1 - w0),
        "hostile": {k: dict(v) for k, v in outcomes.items()},
        "load": f"{load_before} → {load_after}",
        "exit": code,
        "workdir": str(run.workdir),
    }


def fmt(value: object, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--jitter", type=float, default=0.0, help="[prober] jitter_s")
    parser.add_argument("--root", default=str(ROOT), help="checkout to run the prober from")
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"prober from {args.root}, interval {args.interval:g} s, jitter {args.jitter:g} s, "
        f"window {args.seconds:g} s per run",
        flush=True,
    )
    results = [run(False, args), run(True, args)]
    print(
        "| run | healthy probes vs expected | TTFT error p50 / p99 / max ms | floor p50 / p99 ms "
        "| spacing - interval p99 / max s | start late p99 ms | loop lag p99 / max ms "
        "| RSS MB after warm-up → end (max) | prober CPU | load |"
    )
    print("|" + " --- |" * 10)
    for r in results:
        print(
            f"| {r['run']} | {r['healthy_probes']} / {r['healthy_expected']:.0f}"  # type: ignore[str-format]
            f"{' (' + str(r['healthy_failed']) + ' failed)' if r['healthy_failed'] else ''} "
            f"| {fmt(r['err_p50'])} / {fmt(r['err_p99'])} / {fmt(r['err_max'])} "
            f"| {fmt(r['floor_p50'])} / {fmt(r['floor_p99'])} "
            f"| {fmt(r['spacing_p99'], '.2f')} / {fmt(r['spacing_max'], '.2f')} "
            f"| {fmt(r['late_p99'])} | {fmt(r['lag_p99'])} / {fmt(r['lag_max'])} "
            f"| {fmt(r['rss_first'], '.0f')} → {fmt(r['rss_last'], '.0f')} "
            f"({fmt(r['rss_max'], '.0f')}) "
            f"| {r['cpu_pct']:.1f} % | {r['load']} |",  # type: ignore[str-format]
            flush=True,
        )
    print()
    for kind, outcome in results[1]["hostile"].items():  # type: ignore[attr-defined]
        print(f"- {kind}: {', '.join(f'{k} ×{n}' for k, n in sorted(outcome.items()))}")


if __name__ == "__main__":
    main()

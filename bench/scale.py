"""Scale: N targets at one interval against scripted servers, measured beside a bare client.

Run from the repository root:

    .venv/bin/python bench/scale.py                       # N = 100, 500, 1000, 2000
    .venv/bin/python bench/scale.py --targets 1000 --seconds 120

For each N it starts scripted servers in their own processes (``bench/faultserver.py``: first
token 300 ms after the request, 50 tokens 20 ms apart), a real headless prober
(``inferwatch run --headless``) with N targets on those servers, and a bare raw-socket client
(``bench/floorclient.py``) sampling the same servers at the same time. After one interval of
warm-up it measures for ``--seconds`` and prints, per N:

* prober CPU (all its processes, % of one core; in brackets the main process alone, the
  rest is the workers') and CPU time per probe (ms; load disturbs it less than the
  percentage), RSS (MB, all processes, at the end);
* probes stored per second against N / interval;
* start lateness p50 / p99 (``start_late_ms``, when the prober records it);
* TTFT error p50 / p99 (``ttft_ms`` - 300) and the floor's; the prober's minus the floor's;
* ``loop_lag_ms`` p99 and max (when recorded), collector pauses in the window (count, max).

A second table says what the TTFT tail is made of: the collections that paused a probing
worker (count, longest), how many probes had one inside their TTFT window (request sent to
first token; any worker's, so an upper bound), and the error over the floor at p99 without
those probes, and without the probes the prober itself flagged as measured on a late loop
(``loop_lag_ms`` over 5 ms).

``--root`` runs the prober from another checkout (e.g. a copy of ``main`` for a before/after
table); ``--prober key=value`` adds ``[prober]`` settings (``max_concurrency=256``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime
from pathlib import Path

from benchlib import ROOT, Floor, ProberRun, Sampler, cpu_seconds, load, pct, servers, targets_toml

TTFT_MS = 300.0
#: A probe measured on a loop this late is one the prober flags rather than trusts.
LATE_LOOP_MS = 5.0


def epoch(stamp: str) -> float:
    """The stored UTC ISO 8601 ``started_at`` as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def tail(
    ok: list[dict[str, object]], spans: list[tuple[float, float, int, bool]], floor_p99: float
) -> dict[str, object]:
    """What the TTFT tail is made of: worker collections inside a probe's TTFT window, and
    probes the prober flagged as measured on a late loop (see the module docstring)."""
    pauses = [(b, e) for b, e, _, worker in spans if worker]
    hit, clean, calm = 0, [], []
    for r in ok:
        t0 = epoch(str(r["started_at"]))
        t1 = t0 + float(r["ttft_ms"]) / 1000.0  # type: ignore[arg-type]
        err = float(r["ttft_ms"]) - TTFT_MS  # type: ignore[arg-type]
        if any(b < t1 and e > t0 for b, e in pauses):
            hit += 1
        else:
            clean.append(err)
        lag = r.get("loop_lag_ms")
        if lag is None or float(lag) <= LATE_LOOP_MS:  # type: ignore[arg-type]
            calm.append(err)
    p_clean, p_calm = pct(clean, 99), pct(calm, 99)
    return {
        "worker_gc_n": len(pauses),
        "worker_gc_max_ms": max(((e - b) * 1000 for b, e in pauses), default=None),
        "in_pause": hit,
        "d99_without_pauses": None if p_clean is None else p_clean - floor_p99,
        "late_loop": len(ok) - len(calm),
        "d99_without_late_loop": None if p_calm is None else p_calm - floor_p99,
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def run_one(n: int, args: argparse.Namespace) -> dict[str, object]:
    n_servers = max(1, min(4, -(-n // 500)))
    with servers(n_servers) as srv:
        urls = [(f"t{i:05d}", srv[i % n_servers].url("ok")) for i in range(n)]
        prober_cfg: dict[str, object] = {}
        for item in args.prober:
            key, _, value = item.partition("=")
            prober_cfg[key] = json.loads(value)
        run = ProberRun(targets_toml(urls, args.interval, prober_cfg), root=Path(args.root))
        load_before = load()
        run.start()
        total = args.warmup + args.seconds
        floors = [Floor(s.port, total + 2, every=args.floor_every) for s in srv]
        sampler = Sampler()
        t_start = time.time()
        time.sleep(args.warmup)
        w0 = time.time()
        main_pid = run.pids()[0]
        cpu0 = cpu_seconds(run.pids())
        main0 = cpu_seconds([main_pid])
        while time.time() < w0 + args.seconds:
            time.sleep(min(5.0, max(0.0, w0 + args.seconds - time.time())))
            sampler.sample(run.pids())
        w1 = time.time()
        cpu1 = cpu_seconds(run.pids())
        main1 = cpu_seconds([main_pid])
        load_after = load()
        code = run.stop()
        floor = [e for f in floors for e in f.result(w0, w1)]
    rows = run.rows(w0, w1)
    ok = [r for r in rows if r["status"] == "ok" and r["ttft_ms"] is not None]
    err = [float(r["ttft_ms"]) - TTFT_MS for r in ok]  # type: ignore[arg-type]
    late = [float(r["start_late_ms"]) for r in rows if r.get("start_late_ms") is not None]  # type: ignore[arg-type]
    lag = [float(r["loop_lag_ms"]) for r in rows if r.get("loop_lag_ms") is not None]  # type: ignore[arg-type]
    errors: dict[str, int] = {}
    for r in rows:
        if r["status"] != "ok":
            errors[str(r["error_kind"])] = errors.get(str(r["error_kind"]), 0) + 1
    gcs = run.gc_pauses(w0, w1)
    floor_p99 = pct(floor, 99)
    why = tail(ok, run.gc_spans(w0, w1), floor_p99) if floor_p99 is not None else {}
    expected = n / args.interval * (w1 - w0)
    cpu = cpu1 - cpu0
    result = {
        "targets": n,
        "servers": n_servers,
        "seconds": round(w1 - w0, 1),
        "startup_s": round(w0 - t_start, 1),
        "cpu_pct": 100 * cpu / (w1 - w0),
        "cpu_ms_per_probe": 1000 * cpu / len(rows) if rows else None,
        "cpu_main_pct": 100 * (main1 - main0) / (w1 - w0),
        "rss_mb": sampler.rss[-1][1] if sampler.rss else None,
        "rss_mb_first": sampler.rss[0][1] if sampler.rss else None,
        "probes": len(rows),
        "expected": expected,
        "share": len(rows) / expected,
        "errors": errors,
        "late_p50": pct(late, 50),
        "late_p99": pct(late, 99),
        "err_p50": pct(err, 50),
        "err_p99": pct(err, 99),
        "floor_p50": pct(floor, 50),
        "floor_p99": pct(floor, 99),
        "floor_n": len(floor),
        "lag_p99": pct(lag, 99),
        "lag_max": max(lag) if lag else None,
        "gc_n": len(gcs),
        "gc_full": sum(1 for g, _ in gcs if g == 2),
        "gc_max_ms": max((ms for _, ms in gcs), default=None),
        **why,
        "load_before": load_before,
        "load_after": load_after,
        "exit": code,
        "workdir": str(run.workdir),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", default="100,500,1000,2000", help="comma-separated N")
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=None, help="default: interval + 5 s")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--floor-every", type=float, default=0.25)
    parser.add_argument("--root", default=str(ROOT), help="checkout to run the prober from")
    parser.add_argument("--prober", action="append", default=[], help="[prober] key=value")
    parser.add_argument("--json", action="store_true", help="one JSON object per N")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = args.interval + 5.0
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"prober from {args.root}, interval {args.interval:g} s, window {args.seconds:g} s, "
        f"[prober] {' '.join(args.prober) or 'defaults'}",
        flush=True,
    )
    if not args.json:
        print(
            "| targets | prober CPU, % of one core (main process) | CPU ms/probe | RSS MB "
            "| probes/s vs expected "
            "| start late p50 / p99 ms | TTFT error p50 / p99 ms | floor p50 / p99 ms "
            "| error - floor p50 / p99 ms | loop lag p99 / max ms | GC pauses (full) max ms "
            "| load before → after |",
            flush=True,
        )
        print("|" + " --- |" * 12, flush=True)
    results = []
    for n in (int(x) for x in args.targets.split(",")):
        r = run_one(n, args)
        results.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        d50 = None if r["err_p50"] is None else r["err_p50"] - r["floor_p50"]  # type: ignore[operator]
        d99 = None if r["err_p99"] is None else r["err_p99"] - r["floor_p99"]  # type: ignore[operator]
        errs = f" ({r['errors']})" if r["errors"] else ""
        print(
            f"| {n:,} | {r['cpu_pct']:.1f} % ({r['cpu_main_pct']:.1f}) "  # type: ignore[str-format]
            f"| {fmt(r['cpu_ms_per_probe'], '.2f')} "  # type: ignore[arg-type]
            f"| {fmt(r['rss_mb'], '.0f')} "  # type: ignore[arg-type]
            f"| {r['share']:.0%}{errs} "
            f"| {fmt(r['late_p50'])} / {fmt(r['late_p99'])} "  # type: ignore[arg-type]
            f"| {fmt(r['err_p50'])} / {fmt(r['err_p99'])} "  # type: ignore[arg-type]
            f"| {fmt(r['floor_p50'])} / {fmt(r['floor_p99'])} "  # type: ignore[arg-type]
            f"| {fmt(d50)} / {fmt(d99)} "
            f"| {fmt(r['lag_p99'])} / {fmt(r['lag_max'])} "  # type: ignore[arg-type]
            f"| {r['gc_n']} ({r['gc_full']}) {fmt(r['gc_max_ms'])} "  # type: ignore[arg-type]
            f"| {r['load_before']} → {r['load_after']} |",
            flush=True,
        )
    if args.json:
        return
    print(
        "\n| targets | worker collections (longest ms) | probes with one in their TTFT window "
        "| error - floor p99 without them ms | probes on a late loop (> 5 ms) "
        "| error - floor p99 without them ms |"
    )
    print("|" + " --- |" * 6)
    for r in results:
        print(
            f"| {r['targets']:,} | {r.get('worker_gc_n', 'n/a')} "
            f"({fmt(r.get('worker_gc_max_ms'))}) "  # type: ignore[arg-type]
            f"| {r.get('in_pause', 'n/a')} / {r['probes']} "
            f"| {fmt(r.get('d99_without_pauses'))} "  # type: ignore[arg-type]
            f"| {r.get('late_loop', 'n/a')} "
            f"| {fmt(r.get('d99_without_late_loop'))} |",  # type: ignore[arg-type]
            flush=True,
        )


if __name__ == "__main__":
    main()

"""History at scale: generate N probe rows and print the figures of issue #4 (not a test).

    python bench/history_bench.py --rows 10000000 --targets 100 --days 70 --db /tmp/iw-bench.db

Steps: bulk-generate probes (executemany in big transactions, time order), roll them all up,
prune raw rows past 30 days in small batches, then measure the dashboard refresh (1 h and
24 h windows, what ``snapshot()`` runs every second), the 7 d / 30 d views from rollups,
single-probe insert throughput through the prober's real path (``HistoryWriter``), CSV
export speed and peak memory (in a child process, for 1/4 and all of the raw rows: memory
must not grow with the row count), and database bytes per row.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.record import ProbeRecord
from probes.timestamps import iso, parse_iso
from store.control import PublishedTarget, publish_targets
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget
from store.reader import SnapshotReader, snapshot
from store.rollups import (
    ROLLUP_BATCH,
    VACUUM_PAGES,
    Retention,
    incremental_vacuum,
    prune,
    rollup_pending,
)

KINDS = ["server_error", "rate_limited", "first_token_timeout", "overloaded", "stall"]
MESSAGES = [
    'HTTP 500: {"error": {"message": "internal error, retry"}}',
    "HTTP 429: rate limit reached for requests",
    "no token within 30 s",
    "overloaded_error: Overloaded",
    "no token for 15 s after the first one",
]
# ``kind`` = canary: the dashboard and the rollups read canary probes only (a row without a kind
# is neither rolled up nor summarised, and every target's newest-canary lookup would walk its
# whole history).
COLUMNS = (
    "started_at, target, provider, model, status, error_kind, http_status, error_message, "
    "ttfb_ms, ttft_ms, ttfat_ms, total_ms, decode_tps, e2e_output_tps, itl_ms, itl_p50_ms, "
    "itl_max_ms, token_events, input_tokens, cache_read_tokens, output_tokens, usage_source, "
    "finish_reason, cost_usd, cost_source, request_id, conn_reused, buffered, "
    "reasoning_hidden, no_visible_output, usage_inconsistent, kind"
)


def generate(db_path: Path, rows: int, targets: int, days: float, end: datetime) -> float:
    """Insert ``rows`` probes evenly over ``days`` ending at ``end``; returns rows/s."""
    db = open_db(db_path)
    names = [f"target-{i:03d}" for i in range(targets)]
    publish_targets(
        db,
        [
            PublishedTarget(n, f"prov-{i % 7}", f"model-{i % 13}", None, 60.0, True, False)
            for i, n in enumerate(names)
        ],
    )
    rng = random.Random(42)
    per_target = rows // targets
    step = days * 86400 / per_target
    start = end - timedelta(days=days)
    base = {n: rng.uniform(150, 900) for n in names}
    sql = f"INSERT INTO probes ({COLUMNS}) VALUES ({', '.join('?' * 32)})"
    conn = db.conn
    t0 = time.perf_counter()
    batch: list[tuple[object, ...]] = []
    done = 0
    for k in range(per_target):
        when = start + timedelta(seconds=k * step)
        stamp = iso(when)
        for i, name in enumerate(names):
            if rng.random() < 0.03:
                j = rng.randrange(len(KINDS))
                batch.append(
                    (
                        stamp,
                        name,
                        f"prov-{i % 7}",
                        f"model-{i % 13}",
                        "error",
                        KINDS[j],
                        500,
                        MESSAGES[j],
                        80.0,
                        None,
                        None,
                        120.0,
                        None,
                        None,
                        None,
                        None,
                        None,
                        0,
                        None,
                        None,
                        None,
                        "none",
                        None,
                        None,
                        None,
                        f"req-{done}",
                        1,
                        0,
                        0,
                        0,
                        0,
                        "canary",
                    )
                )
            else:
                ttft = base[name] * rng.lognormvariate(0, 0.35)
                total = ttft + rng.uniform(300, 1500)
                tps = rng.uniform(30, 250)
                batch.append(
                    (
                        stamp,
                        name,
                        f"prov-{i % 7}",
                        f"model-{i % 13}",
                        "ok",
                        None,
                        200,
                        None,
                        ttft * 0.8,
                        ttft,
                        ttft,
                        total,
                        tps,
                        64000 / total,
                        1000 / tps,
                        1000 / tps,
                        5000 / tps,
                        64,
                        24,
                        0,
                        64,
                        "reported",
                        "stop",
                        0.00004,
                        "genai-prices 0.2.3",
                        f"req-{done}",
                        1,
                        0,
                        0,
                        0,
                        0,
                        "canary",
                    )
                )
            done += 1
        if len(batch) >= 200_000:
            with db.atomic():
                conn.executemany(sql, batch)
            batch.clear()
    if batch:
        with db.atomic():
            conn.executemany(sql, batch)
    rate = done / (time.perf_counter() - t0)
    db.execute(
        "INSERT OR REPLACE INTO maintenance (key, value) VALUES ('bench_end', ?)", [iso(end)]
    )
    db.close()
    return rate


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo ("?" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def load() -> str:
    """The 1/5/15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


class LockTimer:
    """Measures how long each write transaction on ``db`` holds the write lock (from
    ``BEGIN IMMEDIATE`` to ``COMMIT``), through the connection's trace callback."""

    def __init__(self, db: object) -> None:
        self.conn = db.conn  # type: ignore[attr-defined]
        self.worst = 0.0
        self._began: float | None = None

    def __enter__(self) -> LockTimer:
        self.conn.set_trace_callback(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.set_trace_callback(None)

    def _trace(self, sql: str) -> None:
        if sql.startswith("BEGIN IMMEDIATE"):
            self._began = time.perf_counter()
        elif sql.startswith("COMMIT") and self._began is not None:
            self.worst = max(self.worst, time.perf_counter() - self._began)
            self._began = None


def timed(fn, runs: int = 7) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(median, max) wall time and median CPU time (this process, all threads) in ms of
    ``fn()`` over ``runs`` runs after one warm-up."""
    fn()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), max(times), statistics.median(cpu)


def export_child(db: Path, since: str, out: Path) -> tuple[int, float, float, float]:
    """Run ``inferwatch export`` in a child; returns (rows, seconds, CPU seconds, peak RSS
    MiB), the seconds from the export's start (not the interpreter's).

    Peak RSS is the child's own VmHWM (ru_maxrss would include the parent's, inherited
    across fork and exec)."""
    code = (
        "import time; from tui.cli import main; t=time.perf_counter(); c=time.process_time(); "
        f"rc=main(['export','--db',{str(db)!r},'--since',{since!r},'-o',{str(out)!r}]); "
        "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print(time.perf_counter()-t, time.process_time()-c, hwm)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    seconds, cpu_s, rss_kb = res.stdout.split()
    rows = int(res.stderr.split("wrote ")[1].split()[0])
    return rows, float(seconds), float(cpu_s), int(rss_kb) / 1024


def sqlite3_csv(db: Path, since: str, out: Path) -> tuple[float, float]:
    """The same rows and columns through the ``sqlite3`` shell's ``-csv`` mode (the speed to
    compare with); returns (seconds, CPU seconds of the shell)."""
    from probes.record import FIELD_NAMES

    sql = (
        f"SELECT {', '.join(FIELD_NAMES)} FROM probes WHERE started_at >= '{since}' "
        "ORDER BY started_at, id"
    )
    before = os.times()
    t0 = time.perf_counter()
    with open(out, "wb") as handle:
        subprocess.run(["sqlite3", "-csv", "-header", str(db), sql], stdout=handle, check=True)
    seconds = time.perf_counter() - t0
    after = os.times()
    cpu = after.children_user - before.children_user + after.children_system
    return seconds, cpu - before.children_system


def main() -> None:
    """Parse arguments, run every step, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--days", type=float, default=70.0)
    ap.add_argument("--db", type=Path, default=Path("/tmp/inferwatch-bench.db"))
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="skip generation, rollup and pruning if the db exists (measure again)",
    )
    args = ap.parse_args()
    end = datetime.now(UTC).replace(microsecond=0)
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {sys.version.split()[0]}, "
        f"SQLite {__import__('sqlite3').sqlite_version}; {load()} at start"
    )
    if not (args.reuse and args.db.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        t0 = time.perf_counter()
        rate = generate(args.db, args.rows, args.targets, args.days, end)
        print(
            f"generate: {args.rows:,} rows in {time.perf_counter() - t0:.0f} s "
            f"({rate:,.0f} rows/s bulk insert, executemany, 200k rows per transaction)"
        )
        db = open_db(args.db)
        t0 = time.perf_counter()
        rolled, steps, worst = 0, 0, 0.0
        with LockTimer(db) as small:  # the prober's step size first, for its lock time
            for _ in range(50):
                rolled += rollup_pending(db, ROLLUP_BATCH)
        while True:
            s0 = time.perf_counter()
            n = rollup_pending(db, 20_000)
            worst = max(worst, time.perf_counter() - s0)
            if not n:
                break
            rolled += n
            steps += 1
        el = time.perf_counter() - t0
        minute_rows = db.conn.execute("SELECT count(*) FROM rollup_minute").fetchone()[0]
        if not minute_rows:
            raise SystemExit("rollup wrote no minute rows: are the generated probes canaries?")
        print(
            f"rollup: {rolled:,} rows in {el:.0f} s ({rolled / el:,.0f} rows/s); write lock "
            f"held at most {small.worst * 1000:.0f} ms per prober step of {ROLLUP_BATCH} "
            f"(bench steps of 20000: slowest {worst * 1000:.0f} ms)"
        )
        t0 = time.perf_counter()
        pruned, steps, worst = 0, 0, 0.0
        with LockTimer(db) as lock:
            while True:
                s0 = time.perf_counter()
                n = prune(db, end, Retention())
                worst = max(worst, time.perf_counter() - s0)
                if not n:
                    break
                pruned += n
                steps += 1
        print(
            f"prune (raw > 30 d): {pruned:,} rows in {time.perf_counter() - t0:.0f} s, "
            f"{steps} calls; write lock held at most {lock.worst * 1000:.0f} ms per "
            f"transaction (slowest call, all tables: {worst * 1000:.0f} ms)"
        )
        t0 = time.perf_counter()
        free_before = int(db.conn.execute("PRAGMA freelist_count").fetchone()[0])
        vac_worst = 0.0
        for _ in range(20):  # the prober's step size, for its lock time
            s0 = time.perf_counter()
            incremental_vacuum(db, VACUUM_PAGES)
            vac_worst = max(vac_worst, time.perf_counter() - s0)
        while incremental_vacuum(db, 4096):
            pass
        print(
            f"incremental vacuum: {free_before:,} free pages returned in "
            f"{time.perf_counter() - t0:.1f} s; a prober step of {VACUUM_PAGES} pages "
            f"takes at most {vac_worst * 1000:.0f} ms"
        )
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    db = open_db(args.db)
    row = db.conn.execute("SELECT value FROM maintenance WHERE key = 'bench_end'").fetchone()
    if row:
        end = parse_iso(row[0])
    raw = db.conn.execute("SELECT count(*) FROM probes").fetchone()[0]
    size = args.db.stat().st_size
    print(
        f"database: {size / 1e6:,.0f} MB for {raw:,} raw rows (+ rollups of all {args.days:g} days)"
    )
    for name, used in db.conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
    ):
        print(f"  {name:<32} {used / 1e6:8.1f} MB")
    probe_bytes = db.conn.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name IN ('probes', "
        "'idx_probes_target_started_at', 'idx_probes_started_at')"
    ).fetchone()[0]
    print(
        f"bytes per raw probe row (table + 2 indexes): {probe_bytes / raw:.0f}; "
        f"whole file per raw row: {size / raw:.0f}"
    )
    minute_rows = db.conn.execute("SELECT count(*) FROM rollup_minute").fetchone()[0]
    minute_bytes = db.conn.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'rollup_minute'"
    ).fetchone()[0]
    print(
        f"bytes per minute-rollup row: {minute_bytes / max(minute_rows, 1):.0f} "
        f"({minute_rows:,} rows)"
    )
    db.close()

    print(f"dashboard ({args.targets} targets; {load()}):")
    med, worst, cpu = timed(lambda: snapshot(args.db, 3600, end))
    print(
        f"  snapshot()  1 h (raw rows): median {med:6.1f} ms, max {worst:6.1f} ms "
        f"(CPU median {cpu:5.1f} ms)"
    )
    reader = SnapshotReader(args.db, resummarize_s=0)
    reader.read(3600, end)
    med, worst, cpu = timed(lambda r=reader: r.read(3600, end + timedelta(seconds=5)))
    reader.close()
    print(
        f"  snapshot()  1 h, refresh by the dashboard's reader: median {med:6.1f} ms, "
        f"max {worst:6.1f} ms (CPU median {cpu:5.1f} ms)"
    )
    # Rollup windows cost depends on where the window starts within its hour and day (how
    # many minute and hour rows its edge needs): measure it at 12 start alignments.
    offsets = [timedelta(hours=h, minutes=m) for h in (0, 5, 11, 17) for m in (0, 17, 44)]
    for label, window in (("24 h", 86400), ("7 d", 7 * 86400), ("30 d", 30 * 86400)):
        cold = [
            timed(lambda w=window, o=o: snapshot(args.db, w, end + o), runs=3)[0] for o in offsets
        ]
        reader = SnapshotReader(args.db, resummarize_s=0)
        reader.read(window, end)
        warm = timed(lambda w=window, r=reader: r.read(w, end + timedelta(seconds=5)))
        reader.close()
        print(
            f"  snapshot() {label:>5} (rollups): cold median {statistics.median(cold):6.1f} ms, "
            f"worst alignment {max(cold):6.1f} ms; refresh by the dashboard's reader "
            f"(settled rollups reused) median {warm[0]:5.1f} ms, max {warm[1]:5.1f} ms "
            f"(CPU median {warm[2]:5.1f} ms)"
        )

    db = open_db(args.db)
    names = [f"target-{i:03d}" for i in range(args.targets)]
    before = db.conn.execute("SELECT max(id) FROM probes").fetchone()[0]
    writer = HistoryWriter(db, [MonitoredTarget(n, f"h{n}") for n in names], end)
    n = 3000
    t0 = time.perf_counter()
    for k in range(n):
        when = end + timedelta(seconds=k)
        writer.store_probe(
            ProbeRecord(
                iso(when),
                names[k % len(names)],
                "p",
                "m",
                "ok",
                ttft_ms=200.0,
                total_ms=900.0,
                decode_tps=80.0,
            )
        )
    el = time.perf_counter() - t0
    print(
        f"insert (prober path: row + outage state, one transaction each): "
        f"{n / el:,.0f} probes/s, {el / n * 1000:.2f} ms per probe ({load()})"
    )
    db.execute("DELETE FROM probes WHERE id > ?", [before])  # keep the db as it was (--reuse)
    db.close()

    out = Path(f"{args.db}.export.csv")
    quarter = iso(end - timedelta(days=7.5))
    shell = Path(f"{args.db}.sqlite3.csv")
    for label, since in (("7.5 d", quarter), ("30 d", iso(end - timedelta(days=31)))):
        rows, seconds, cpu_s, rss = export_child(args.db, since, out)
        print(
            f"export CSV {label:>5}: {rows:,} rows in {seconds:.1f} s = "
            f"{rows / seconds:,.0f} rows/s (CPU {rows / cpu_s:,.0f} rows/s), peak RSS "
            f"{rss:.0f} MiB, {out.stat().st_size / 1e6:,.0f} MB file ({load()})"
        )
        if shutil.which("sqlite3"):
            s_seconds, s_cpu = sqlite3_csv(args.db, since, shell)
            print(
                f"  sqlite3 -csv, same rows: {rows / s_seconds:,.0f} rows/s (CPU "
                f"{rows / s_cpu:,.0f} rows/s), {shell.stat().st_size / 1e6:,.0f} MB; export / "
                f"sqlite3: {s_seconds / seconds:.2f}x wall, {s_cpu / cpu_s:.2f}x CPU ({load()})"
            )
    out.unlink(missing_ok=True)
    shell.unlink(missing_ok=True)
    print(
        f"(ru_maxrss of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; {load()} at end)"
    )


if __name__ == "__main__":
    main()

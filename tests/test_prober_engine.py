"""The prober as users run it (issues #10 and #15): a real ``inferwatch run --headless`` process
with its worker processes and a real SQLite file, read the way the dashboard reads it.

* Workers probe while the dashboard sees one prober; commands reach the right worker; a
  killed worker is restarted and the status line says so.
* A probe loop that raises keeps its target probed and says so (log, targets table, status).
* A locked database and a full disk are transient: probing goes on, probes are held and
  stored when the database takes them again; the prober never exits on it.
* 10,000 targets start without a false "prober stalled" gap.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import control
from store.db import open_db
from store.reader import snapshot
from tests.prober_process import (
    ProberProcess,
    config_toml,
    counts,
    prober_row,
    query,
    scalar,
    wait_for,
)
from tests.servers import FAST_SCRIPT, ReplayServer, Script
from tui.panels import StatusContext, status_text

FAST = FAST_SCRIPT


def send(db: Path, command: str, target: str | None) -> None:
    conn = open_db(db)
    try:
        cid = control.send_command(conn, command, target)
        wait_for(f"{command} taken", lambda: control.command_done(conn, cid), timeout=15)
    finally:
        conn.close()


def grows(db: Path, names: list[str], seconds: float = 2.0) -> dict[str, int]:
    """How many probes each target got over ``seconds``."""
    before = counts(db)
    time.sleep(seconds)
    after = counts(db)
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def status_line(db: Path) -> str:
    snap = snapshot(db, 3600, datetime.now(UTC))
    return status_text(snap, StatusContext(source="test"), 400)[0].plain


def test_workers_commands_and_a_restarted_worker(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add("engine-workers", FAST)
    names = ["a", "b", "c", "d"]
    db = tmp_path / "w.db"
    cfg = config_toml([(n, url) for n in names], 0.4, {"workers": 2, "jitter_s": 0})
    with ProberProcess(tmp_path, cfg, db) as prober:
        wait_for(
            "every target probed", lambda: len(counts(db)) == 4 and min(counts(db).values()) >= 2
        )
        row = wait_for(
            "a heartbeat naming both workers",
            lambda: (r := prober_row(db)) and all(w["pid"] for w in r["stats"]["workers"]) and r,
        )
        # One prober for the dashboard: the main process's pid, its two workers below it.
        assert row["pid"] == prober.proc.pid and row["workers"] == 2
        pids = [w["pid"] for w in row["stats"]["workers"]]
        assert len(set(pids)) == 2 and prober.proc.pid not in pids
        for pid in pids:
            assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == (
                prober.proc.pid
            )
        # Round-robin shards: a and c on worker 0, b and d on worker 1.
        send(db, "pause", "a")
        time.sleep(0.5)  # a probe of a in flight may still land
        grown = grows(db, names)
        assert grown["a"] == 0 and min(grown[n] for n in "bcd") >= 2
        paused_at = counts(db)["a"]
        send(db, "probe_now", "a")  # reaches a's worker although a is paused
        wait_for("a forced probe", lambda: counts(db)["a"] == paused_at + 1, timeout=10)
        assert grows(db, ["a"], 1.0)["a"] == 0, "one forced probe, then paused again"
        # Kill worker 0: it comes back (a still paused, c probing again) and says so.
        os.kill(pids[0], signal.SIGKILL)
        wait_for(
            "the restart on the status line",
            lambda: "worker 0" in (prober_row(db) or {}).get("problem", ""),
        )
        problem = prober_row(db)["problem"]  # type: ignore[index]
        assert "died (signal SIGKILL)" in problem and "restarted" in problem
        assert "worker 0" in status_line(db)
        assert f"worker 0 (pid {pids[0]}) died" in prober.log_text()
        wait_for("c probed after the restart", lambda: grows(db, ["c"], 1.0)["c"] >= 1)
        new = [w["pid"] for w in prober_row(db)["stats"]["workers"]]  # type: ignore[index]
        assert new[0] != pids[0] and new[1] == pids[1]
        assert grows(db, ["a"], 1.0)["a"] == 0, "the new worker kept a paused"
        send(db, "resume", "a")
        wait_for("a probed after resume", lambda: grows(db, ["a"], 0.5)["a"] >= 1)
        assert prober.stop() == 0
    for pid in new:
        assert not Path(f"/proc/{pid}").exists(), "workers end with their prober"
    # Every stored probe carries how late it started and the loop lag it saw.
    assert query(db, "SELECT count(*) FROM probes WHERE start_late_ms IS NULL") == [(0,)]
    assert query(db, "SELECT count(*) FROM probes WHERE loop_lag_ms IS NULL") == [(0,)]


def test_workers_end_when_their_prober_is_killed(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add("engine-orphans", FAST)
    db = tmp_path / "o.db"
    cfg = config_toml([("a", url), ("b", url)], 0.5, {"workers": 2})
    with ProberProcess(tmp_path, cfg, db) as prober:
        row = wait_for(
            "both workers reported",
            lambda: (
                (r := prober_row(db))
                and all(w["pid"] for w in r["stats"].get("workers", []))
                and len(r["stats"]["workers"]) == 2
                and r
            ),
        )
        pids = [w["pid"] for w in row["stats"]["workers"]]
        prober.proc.kill()  # no chance to stop them: they must notice by themselves
        prober.proc.wait()
        wait_for(
            "the workers gone",
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids),
            timeout=10,
        )


BOOM = textwrap.dedent(
    """
    # Test-only: the probe of target "boom" raises after measuring, as an unguarded bug in
    # the record path would (issue #10: an "inf" rate-limit header did this).
    import probes.runner
    import probes.scheduler

    _real = probes.runner.run_probe

    async def _probe(target, client):
        record = await _real(target, client)
        if target.name == "boom":
            raise OverflowError("cannot convert float infinity to integer")
        return record

    probes.scheduler.run_probe = _probe
    """
)


def test_a_probe_loop_exception_keeps_the_target_and_says_so(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("engine-boom", FAST)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(BOOM)
    db = tmp_path / "b.db"
    cfg = config_toml([("boom", url), ("fine", url)], 0.3, {"workers": 1})
    with ProberProcess(tmp_path, cfg, db, pythonpath=[inject]) as prober:
        wait_for("boom probed three times", lambda: counts(db).get("boom", 0) >= 3)
        kinds = query(db, "SELECT DISTINCT status, error_kind FROM probes WHERE target = 'boom'")
        assert kinds == [("error", "internal")]
        (message,) = query(db, "SELECT error_message FROM probes WHERE target = 'boom' LIMIT 1")[0]
        assert "OverflowError" in message
        wait_for("the problem published", lambda: "boom" in prober_row(db)["problem"])  # type: ignore[index]
        line = status_line(db)
        assert "probe loop of 'boom' hit OverflowError" in line and "carried on" in line
        (loop_error,) = query(db, "SELECT loop_error FROM targets WHERE name = 'boom'")[0]
        assert "OverflowError" in loop_error
        assert query(db, "SELECT loop_error FROM targets WHERE name = 'fine'") == [(None,)]
        assert "probe loop of 'boom' hit OverflowError" in prober.log_text()
        assert "Traceback" in prober.log_text()  # the worker's traceback, for a bug report
        assert prober.alive()


def test_extra_schedules_run_beside_the_canary(tmp_path: Path, replay: ReplayServer) -> None:
    # Issue #13's schedules through the engine: a long-prompt workload on its own interval
    # beside the canary (its own schedule of the same target), and every probe marked with
    # its endpoint's idle time (one tracker for all schedules).
    url = replay.add("engine-kinds", FAST)
    db = tmp_path / "k.db"
    cfg = config_toml([("w", url)], 0.5, {"workers": 1, "jitter_s": 0}).replace(
        'model = "m"', 'model = "m"\nscaledown_window_s = 0.1'
    )
    cfg += '[[workloads]]\nname = "long"\ninput_tokens = 64\ninterval_s = 1.5\n'
    with ProberProcess(tmp_path, cfg, db):
        wait_for(
            "two workload probes",
            lambda: (scalar(db, "SELECT count(*) FROM probes WHERE kind = 'workload'") or 0) >= 2,
        )
        kinds = dict(query(db, "SELECT kind, count(*) FROM probes GROUP BY kind"))
        assert kinds["canary"] >= 2 * kinds["workload"]  # every 0.5 s against every 1.5 s
        assert query(db, "SELECT DISTINCT workload FROM probes WHERE kind = 'workload'") == [
            ("long",)
        ]
        idle = query(db, "SELECT idle_s, cold FROM probes WHERE kind = 'canary' AND idle_s > 0.2")
        assert idle and all(cold == 1 for _, cold in idle)  # idle > 0.1 s window: cold
        assert query(db, "SELECT count(*) FROM probes WHERE start_late_ms IS NULL")[0][0] == 0
        assert query(db, "SELECT skipped_ticks FROM prober")[0][0] is not None


HEAVY = Script(
    headers_at=0.0,
    reads=[
        (0.001 * i, b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
        for i in range(2_500)
    ]
    + [(2.5, b"data: [DONE]\n\n")],
)


def test_a_heavy_target_moves_to_a_quarantine_worker(tmp_path: Path, replay: ReplayServer) -> None:
    # 2,500 token events a probe (a canary asks for tens): the target leaves the worker it
    # shared with healthy targets and goes on being probed in a worker of its own.
    heavy = replay.add("engine-heavy", HEAVY)
    url = replay.add("engine-light", FAST)
    db = tmp_path / "q.db"
    targets = [("fine1", url), ("heavy", heavy), ("fine2", url)]
    cfg = config_toml(targets, 3, {"workers": 1, "jitter_s": 0})
    with ProberProcess(tmp_path, cfg, db) as prober:
        wait_for("the move", lambda: "moved to a quarantine worker" in prober.log_text())
        assert "'heavy' moved to a quarantine worker" in prober.log_text()
        row = wait_for(
            "two workers reported",
            lambda: (
                (r := prober_row(db))
                and len([w for w in r["stats"]["workers"] if w["pid"]]) == 2
                and r
            ),
        )
        normal, quarantine = row["stats"]["workers"]
        assert (normal["targets"], normal["quarantine"]) == (2, False)
        assert (quarantine["targets"], quarantine["quarantine"]) == (1, True)
        assert "quarantine" in row["problem"]
        before = counts(db)
        wait_for(
            "every target probed again",
            lambda: all(
                counts(db).get(n, 0) > before.get(n, 0) for n in ("fine1", "heavy", "fine2")
            ),
            timeout=20,
        )
        assert prober.alive()


FREEZE = textwrap.dedent(
    """
    # Test-only: the probe of target "freeze" blocks its worker's event loop (as the O(n^2)
    # token count of issue #10 did for 42 s); the prober gives up on a silent worker in 3 s.
    import time

    import probes.runner
    import probes.scheduler
    import tui.prober

    tui.prober.WORKER_SILENT_S = 3.0
    _real = probes.runner.run_probe

    async def _probe(target, client):
        if target.name == "freeze":
            time.sleep(60)
        return await _real(target, client)

    probes.scheduler.run_probe = _probe
    """
)


def test_a_worker_whose_loop_is_stuck_is_restarted(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add("engine-freeze", FAST)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FREEZE)
    db = tmp_path / "z.db"
    cfg = config_toml([("fine", url), ("freeze", url)], 4, {"workers": 1, "jitter_s": 0})
    with ProberProcess(tmp_path, cfg, db, pythonpath=[inject]) as prober:
        # "fine" probes at 0 s, "freeze" at 2 s blocks the loop: killed 3 s later.
        wait_for("fine probed", lambda: counts(db).get("fine", 0) >= 1, timeout=20)
        wait_for(
            "the stuck worker restarted",
            lambda: "its event loop stuck" in (prober_row(db) or {}).get("problem", ""),
            timeout=40,
        )
        assert "silent for 3 s, its event loop stuck" in prober.log_text()
        assert "restarted" in status_line(db)
        assert prober.alive()


def test_a_locked_database_holds_probes_and_stores_them_later(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("engine-locked", FAST)
    db = tmp_path / "l.db"
    cfg = config_toml([("x", url), ("y", url)], 0.25, {"workers": 1, "jitter_s": 0})
    with ProberProcess(tmp_path, cfg, db) as prober:
        wait_for("probes", lambda: sum(counts(db).values()) >= 4)
        lock = sqlite3.connect(db, timeout=10)
        lock.execute("BEGIN EXCLUSIVE")
        t_lock = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        time.sleep(8)  # longer than the writer's 5 s busy timeout
        t_free = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lock.rollback()
        lock.close()
        assert prober.alive()
        wait_for("storage back", lambda: "storage works again" in prober.log_text(), timeout=40)
        assert "storage failing (database is locked)" in prober.log_text()
        # Probing went on under the lock: the probes that started then are all stored.
        held = query(
            db,
            "SELECT count(*) FROM probes WHERE started_at > ? AND started_at < ?",
            [t_lock, t_free],
        )[0][0]
        assert held >= 2 * 8 / 0.25 * 0.8
        wait_for("problem cleared", lambda: prober_row(db)["problem"] == "")  # type: ignore[index]


_PREFIXES = (
    (["unshare", "--mount", "--propagation", "private"], ["nsenter", "--mount"]),
    (["unshare", "-r", "-m"], ["nsenter", "--user", "--mount", "--preserve-credentials"]),
)


def _mount_namespace(where: Path) -> tuple[list[str], list[str]] | str:
    """How to run a command in a private mount namespace with a tmpfs at ``where``, and how
    to enter that namespace later (``unshare`` as root, else in a user namespace); or the
    reason it cannot be done here."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare(1) and nsenter(1) are needed to mount a private tmpfs"
    error = ""
    for unshare, nsenter in _PREFIXES:
        probe = subprocess.run(
            [*unshare, "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs '{where}'"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return unshare, nsenter
        error = probe.stderr.strip()
    return f"cannot mount a private tmpfs here: {error}"


def _query_inside(nsenter: list[str], pid: int, db: Path, sql: str) -> list[list[object]]:
    """Rows of ``sql`` read from inside the prober's mount namespace (SQLite resolves the
    /proc/<pid>/root link to this namespace's path, so it cannot read the file from here)."""
    code = (
        "import json, sqlite3, sys; "
        "c = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True, timeout=10); "
        "print(json.dumps(c.execute(sys.argv[2]).fetchall()))"
    )
    out = subprocess.run(
        [*nsenter, "--target", str(pid), sys.executable, "-c", code, str(db), sql],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:  # not created yet, or no table yet
        return []
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_full_disk_holds_probes_and_stores_them_when_space_returns(
    tmp_path: Path, replay: ReplayServer
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    how = _mount_namespace(mnt)
    if isinstance(how, str):
        pytest.skip(how)
    unshare, nsenter = how
    wrap = [*unshare, "sh", "-c", f"mount -t tmpfs -o size=16m tmpfs '{mnt}' && exec {{cmd}}"]
    url = replay.add("engine-full", FAST)
    cfg = config_toml([("x", url), ("y", url)], 0.2, {"workers": 1, "jitter_s": 0})
    db = mnt / "f.db"
    with ProberProcess(tmp_path, cfg, db, wrap=wrap) as prober:
        pid = prober.proc.pid

        def stored() -> int:
            rows = _query_inside(nsenter, pid, db, "SELECT count(*) FROM probes")
            return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]

        wait_for("probes", lambda: stored() >= 4)
        # Fill the prober's private 16 MB file system (seen from here through its /proc root).
        filler = Path(f"/proc/{pid}/root") / str(mnt).lstrip("/") / "filler"
        with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        wait_for("storage failing", lambda: "storage failing" in prober.log_text(), timeout=30)
        assert "full" in prober.log_text().split("storage failing", 1)[1].splitlines()[0]

        def row() -> tuple[str, float]:
            (problem, beat), *_ = _query_inside(
                nsenter, pid, db, "SELECT problem, heartbeat_at FROM prober"
            ) or [("", "")]
            age = (
                datetime.now(UTC) - datetime.fromisoformat(str(beat).replace("Z", "+00:00"))
            ).total_seconds()
            return str(problem or ""), age

        # The reserve it freed lets it go on heartbeating and say what is wrong.
        problem, _ = wait_for(
            "the problem published", lambda: "storage failing" in row()[0] and row()
        )
        assert "disk is full" in problem and "probes held" in problem
        time.sleep(3)  # probing goes on, probes are held
        assert prober.alive()
        assert row()[1] < 5.0, "the heartbeat went on while the disk was full"
        before = stored()
        filler.unlink()
        wait_for("storage back", lambda: "storage works again" in prober.log_text(), timeout=40)
        wait_for("held probes stored", lambda: stored() >= before + 20)
        starts = [
            datetime.fromisoformat(str(r[0]).replace("Z", "+00:00")).timestamp()
            for r in _query_inside(
                nsenter, pid, db, "SELECT started_at FROM probes WHERE target = 'x' ORDER BY 1"
            )
        ]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert max(gaps) < 1.0, "no hole in x's probes while the disk was full"
        assert prober.alive()
        assert prober.stop() == 0


def test_ten_thousand_targets_start_without_a_false_stall(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("engine-many", FAST)
    db = tmp_path / "m.db"
    # Priced, as real targets are: every probe then feeds the budget planner (a re-plan of
    # all 10,000 targets per probe before issue #15).
    cfg = config_toml([(f"t{i:05d}", url) for i in range(10_000)], 600, priced=True)
    with ProberProcess(tmp_path, cfg, db) as prober:
        first = wait_for("the first heartbeat", lambda: prober_row(db), timeout=60)
        assert first["pid"] == prober.proc.pid
        worst = 0.0
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end:
            row = prober_row(db)
            assert row is not None
            beat = datetime.fromisoformat(row["heartbeat_at"].replace("Z", "+00:00"))
            worst = max(worst, (datetime.now(UTC) - beat).total_seconds())
            time.sleep(0.25)
        assert worst < 5.0, f"heartbeat {worst:.1f} s old"
        assert sum(counts(db).values()) > 100, "it probes (10,000 targets in 10 minutes)"
        assert prober.alive()
    assert query(db, "SELECT count(*) FROM monitor_gaps") == [(0,)]


def test_a_late_probing_loop_says_the_prober_is_overloaded(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("engine-overload", FAST)
    db = tmp_path / "l.db"
    cfg = config_toml([("a", url)], 0.3, {"workers": 1})
    with ProberProcess(tmp_path, cfg, db):
        row = wait_for(
            "probing, the worker reported",
            lambda: (
                (r := prober_row(db))
                and all(w["pid"] for w in r["stats"].get("workers", []))
                and counts(db).get("a", 0) >= 3
                and r
            ),
        )
        worker = row["stats"]["workers"][0]["pid"]
        # The worker's loop stopped for 0.3 s: whatever it measured then includes our wait.
        os.kill(worker, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(worker, signal.SIGCONT)
        row = wait_for(
            "the overload said",
            lambda: "prober overloaded" in ((r := prober_row(db)) or {}).get("problem", "") and r,
        )
        late_ms = float(row["problem"].split("ran ", 1)[1].split(" ms", 1)[0])
        assert late_ms >= 250, row["problem"]
        assert "prober overloaded" in status_line(db)

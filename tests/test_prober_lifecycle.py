"""One prober per database, and a prober that ends when it must (issue #11): real
``inferwatch run --headless`` processes on one SQLite file.

* A second prober on the same database refuses, naming the live one; probing does not
  double (groq was probed twice in 11 s at ``interval_s=60``).
* ``--takeover`` ends the live prober and replaces it, without a monitor gap.
* A database deleted or replaced under the prober stops it: nothing more is written to the
  unlinked file, and the new file gets nothing.
* A prober whose dashboard died stops by itself.
* The demo never writes the user's real database.
* The headless log has one JSON line per state change with ``--log-format json``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.prober_process import (
    ROOT,
    ProberProcess,
    config_toml,
    counts,
    pid_alive,
    prober_row,
    query,
    wait_for,
)
from tests.servers import FAST_SCRIPT, ReplayServer
from tui.prober_lock import is_held, lock_path, read_info

FAST = FAST_SCRIPT


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _beating(db: Path, pid: int) -> bool:
    row = prober_row(db)
    return bool(row and row["pid"] == pid)


def test_a_second_prober_refuses_and_probing_does_not_double(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("life-second", FAST)
    db = tmp_path / "one.db"
    cfg = config_toml([("groq", url)], 1.0)
    with ProberProcess(tmp_path, cfg, db) as first:
        wait_for("the first prober's heartbeat", lambda: _beating(db, first.proc.pid))
        assert is_held(db)
        second = ProberProcess(tmp_path, cfg, db, log_name="second.log")
        assert second.proc.wait(20) == 3, second.log_text()
        text = second.log_text()
        info = read_info(db)
        assert info is not None and info.pid == first.proc.pid
        assert f"another prober is probing into {db}: pid {first.proc.pid} on host" in text
        assert f"since {info.since}" in text and "last heartbeat" in text
        assert "--takeover" in text
        # One prober: about one probe a second, not two.
        before = counts(db).get("groq", 0)
        time.sleep(4.0)
        grown = counts(db).get("groq", 0) - before
        assert 2 <= grown <= 5, grown
        assert _beating(db, first.proc.pid)


def test_takeover_replaces_the_live_prober_without_a_gap(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("life-takeover", FAST)
    db = tmp_path / "t.db"
    cfg = config_toml([("a", url)], 0.5)
    with ProberProcess(tmp_path, cfg, db) as first:
        wait_for("the first prober's heartbeat", lambda: _beating(db, first.proc.pid))
        with ProberProcess(
            tmp_path, cfg, db, args=["--takeover", "--log-format", "json"], log_name="new.log"
        ) as second:
            assert first.proc.wait(25) == 0, "SIGTERM ends the old prober cleanly"
            wait_for("the new prober's heartbeat", lambda: _beating(db, second.proc.pid))
            n = counts(db).get("a", 0)
            wait_for("the new prober probing", lambda: counts(db).get("a", 0) > n + 2)
            lines = [json.loads(line) for line in second.log_text().splitlines() if line]
            took = [x for x in lines if x["event"] == "lifecycle" and "took over" in x["message"]]
            assert took and took[0]["pid"] == first.proc.pid
            assert all({"ts", "event", "message"} <= set(x) for x in lines)
    assert query(db, "SELECT count(*) FROM monitor_gaps") == [(0,)]


def test_a_deleted_database_stops_the_prober(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add("life-deleted", FAST)
    db = tmp_path / "d.db"
    with ProberProcess(tmp_path, config_toml([("a", url)], 0.5), db) as prober:
        wait_for("probes", lambda: counts(db).get("a", 0) >= 2)
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            path.unlink(missing_ok=True)
        assert prober.proc.wait(10) == 3
        assert f"the database {db} was deleted under the prober: stopping" in prober.log_text()
    assert not db.exists(), "nothing re-created the file behind the user's back"


def test_a_replaced_database_stops_the_prober_and_gets_nothing(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("life-replaced", FAST)
    db = tmp_path / "r.db"
    with ProberProcess(tmp_path, config_toml([("a", url)], 0.5), db) as prober:
        wait_for("probes", lambda: counts(db).get("a", 0) >= 2)
        fresh = tmp_path / "fresh.db"
        sqlite3.connect(fresh).execute("CREATE TABLE probes (target TEXT)").connection.close()
        os.replace(fresh, db)
        assert prober.proc.wait(10) == 3
        assert "was replaced under the prober: stopping" in prober.log_text()
    assert counts(db) == {}, "no probe went into the new file"


def test_an_orphaned_prober_stops(tmp_path: Path, replay: ReplayServer) -> None:
    """A dashboard killed with SIGKILL cannot stop its prober: the prober sees its parent
    change and stops by itself."""
    url = replay.add("life-orphan", FAST)
    db = tmp_path / "o.db"
    cfg = tmp_path / "o.toml"
    cfg.write_text(config_toml([("a", url)], 0.5))
    parent_code = (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'tui.cli', 'run', '--headless', "
        f"'--config', {str(cfg)!r}, '--db', {str(db)!r}, '--parent-pid', str(os.getpid())], "
        "start_new_session=True, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=ROOT, env=_env(), stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        wait_for("the prober's heartbeat", lambda: _beating(db, child))
        parent.kill()
        parent.wait()
        wait_for("the orphan gone", lambda: not pid_alive(child), timeout=10)
    finally:
        parent.kill()
        if pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_demo_never_writes_the_users_database(tmp_path: Path) -> None:
    real = tmp_path / "real" / "inferwatch.db"
    env = {**_env(), "INFERWATCH_DB": str(real)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "run", "--demo", "--headless"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "... probing N targets into <db> ..."
        assert "probing" in line and str(real) not in line, line
        demo_db = Path(line.split(" into ", 1)[1].split(" (pid", 1)[0])
        wait_for("demo probes", lambda: sum(counts(demo_db).values()) > 0, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert not real.exists() and not lock_path(real).exists()


def test_the_headless_log_has_a_json_line_per_state_change(
    tmp_path: Path, replay: ReplayServer
) -> None:
    url = replay.add("life-log", FAST)
    db = tmp_path / "l.db"
    cfg = config_toml([("a", url)], 0.5)
    with ProberProcess(tmp_path, cfg, db, args=["--log-format", "json"]) as prober:

        def state_line() -> dict[str, object] | None:
            for line in prober.log_text().splitlines():
                doc = json.loads(line)
                if doc["event"] == "state" and doc["target"] == "a" and doc["to"] == "up":
                    return doc  # type: ignore[no-any-return]
            return None

        doc = wait_for("a state line", state_line, timeout=20)
        assert doc["from"] in ("no_data", "unknown") or isinstance(doc["from"], str)
        assert "a: " in str(doc["message"]) and "-> up" in str(doc["message"])

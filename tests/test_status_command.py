"""``inferwatch status [--json]``: every target's state from a real SQLite file, exit codes
for scripts (0 all up, 1 degraded, 2 down or the monitor blind, 3 unknown)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from probes.timestamps import utc_now
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget
from tests.history_helpers import record, set_heartbeat

ROOT = Path(__file__).resolve().parents[1]


def status(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--db", str(db), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_db(path: Path, patterns: dict[str, str], *, heartbeat_age_s: float = 1.0) -> Path:
    """Targets probed every 10 s ending now: ``.`` ok, ``x`` server error."""
    db = open_db(path)
    names = list(patterns)
    control.publish_targets(
        db,
        [
            control.PublishedTarget(n, "openai-compatible", "m", None, 10.0, True, False)
            for n in names
        ],
    )
    now = utc_now()
    writer = HistoryWriter(db, [MonitoredTarget(n, f"{n}.example") for n in names], now)
    for name, pattern in patterns.items():
        for i, ch in enumerate(pattern):
            when = now - timedelta(seconds=10 * (len(pattern) - i))
            if ch == ".":
                writer.store_probe(record(name, when))
            else:
                writer.store_probe(record(name, when, "error", "server_error", "HTTP 500"))
    set_heartbeat(db, now - timedelta(seconds=heartbeat_age_s))
    db.close()
    return path


def test_no_database_is_unknown(tmp_path: Path) -> None:
    out = status(tmp_path / "none.db")
    assert out.returncode == 3, out
    assert "no database" in out.stdout


@pytest.mark.parametrize(
    ("patterns", "code", "summary"),
    [
        ({"a": "...", "b": "..."}, 0, "2 up"),
        # b failed once while up: shown degraded (not down yet).
        ({"a": "...", "b": "..x"}, 1, "1 up · 1 degraded"),
        ({"a": "...", "b": ".xxx", "c": "..x"}, 2, "1 up · 1 degraded · 1 down"),
    ],
)
def test_exit_code_follows_the_worst_state(
    tmp_path: Path, patterns: dict[str, str], code: int, summary: str
) -> None:
    db = make_db(tmp_path / "s.db", patterns)
    out = status(db)
    assert out.returncode == code, out
    lines = out.stdout.splitlines()
    assert lines[0] == summary
    assert len(lines) == 1 + len(patterns)
    doc = json.loads(status(db, "--json").stdout)
    assert doc["exit_code"] == code and doc["summary"] == summary
    assert [t["target"] for t in doc["targets"]] == list(patterns)


def test_a_dead_prober_makes_the_monitor_blind_exit_2(tmp_path: Path) -> None:
    db = make_db(tmp_path / "dead.db", {"a": "...", "b": "..."}, heartbeat_age_s=120)
    out = status(db, "--json")
    assert out.returncode == 2, out
    doc = json.loads(out.stdout)
    assert doc["blind_reason"] == "prober not running"
    assert {t["state"] for t in doc["targets"]} == {"stale"}
    text = status(db).stdout
    assert "MONITOR BLIND since" in text


def test_help_documents_the_exit_codes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(out.stdout.split())
    for words in ("0 every probed target up", "1 some degraded", "2 some down", "3 the state"):
        assert words in text

"""Issue #10, "the terminal is ours": a 500 body with ``ESC ] 0 ; TITLE BEL ESC [ 2 J`` (retitle
the pane, clear the screen) never reaches a terminal raw: not from the dashboard (Pilot on the
detail screen), not from ``probe --once``, ``export --csv`` to stdout or ``check-config``
(real subprocesses). It is shown escaped (``\\x1b]0;TITLE\\x07``), so it is still readable.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probes.config import parse_config
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from probes.text import printable, printable_tree
from store import control
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget, iso
from tests.servers import ReplayServer, Script
from tui.app import InferwatchApp
from tui.screens import DetailScreen
from tui.widgets import Drawing

ATTACK = "\x1b]0;TITLE\x07\x1b[2J"
SHOWN = "\\x1b]0;TITLE\\x07\\x1b[2J"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def no_raw_controls(text: str) -> bool:
    return not any(ch in text for ch in RAW)


def attack_script() -> Script:
    return Script(
        status=500,
        body=("upstream exploded " + ATTACK).encode(),
        headers={"Content-Type": "text/plain", "x-request-id": "req-\u202eevil"},
        headers_at=0.0,
    )


def config_text(url: str, name: str = "evil") -> str:
    return (
        f'[[targets]]\nname = "{name}"\nprovider = "openai-compatible"\n'
        f'base_url = "{url}"\nmodel = "m"\n'
    )


def test_printable_escapes_every_terminal_control() -> None:
    assert printable(ATTACK) == SHOWN
    assert printable("a\x9b31mb\u202ec\u2066d\x00e\x7ff\ud800") == (
        "a\\x9b31mb\\u202ec\\u2066d\\x00e\\x7ff\\ud800"
    )
    assert printable("line\nnext\ttab", newlines=True) == "line\nnext\\ttab"
    assert printable(printable(ATTACK)) == printable(ATTACK)  # idempotent
    plain = "ünïcödé ✓ 日本語 [bold]"
    assert printable(plain) is plain


async def test_a_probed_escape_sequence_is_stored_escaped(replay: ReplayServer) -> None:
    target = parse_config(config_text(replay.add("term-probe", attack_script()))).resolved()[0]
    async with make_client() as client:
        record = await run_probe(target, client)
    assert record.error_kind == "server_error"
    assert record.error_message == f"HTTP 500: upstream exploded {SHOWN}"
    assert record.request_id == "req-\\u202eevil"


def dashboard_db(path: Path, name: str = "old\x1b[31m", model: str = "m\u202e") -> Path:
    """One target whose last failure holds the raw sequence, as a database written before the
    fix (or by anything else) would: the dashboard must not trust the database either."""
    db = open_db(path)
    control.publish_targets(
        db, [control.PublishedTarget(name, "openai-compatible", model, None, 30.0, True, False)]
    )
    history = HistoryWriter(db, [MonitoredTarget(name, "h.example")], NOW - timedelta(hours=1))
    for i in range(4):
        at = NOW - timedelta(minutes=4 - i)
        history.store_probe(
            ProbeRecord(
                started_at=iso(at),
                target=name,
                provider="openai-compatible",
                model=model,
                status="error",
                error_kind="server_error",
                http_status=500,
                error_message=f"HTTP 500: upstream exploded {ATTACK}",
                request_id="req-\u202e" + "r" * 40_000,
                total_ms=40.0,
            )
        )
    db.close()
    return path


async def test_the_dashboard_never_draws_the_raw_sequence(tmp_path: Path) -> None:
    app = InferwatchApp(
        dashboard_db(tmp_path / "t.db"),
        window_s=3600,
        source_label="x\x1b]0;T\x07",
        clock=lambda: NOW,
    )
    async with app.run_test(size=(140, 50)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None:
                break
        overview = app.export_screenshot()
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None and app.snap.detail is not None:
                break
        await pilot.pause(0.2)
        drawn = [d.text.plain for d in app.screen.query(Drawing)]
        detail = app.export_screenshot()
    assert any(SHOWN in text for text in drawn), drawn
    assert all(no_raw_controls(text) for text in drawn)
    for svg in (overview, detail):
        assert no_raw_controls(svg)
        assert "TITLE" in svg


def test_printable_tree_copies_only_what_changed() -> None:
    clean = ProbeRecord("2026", "t", "p", "m", "ok")
    assert printable_tree([clean, (1.0, 2.0)]) == [clean, (1.0, 2.0)]
    dirty = ProbeRecord("2026", "t", "p", "m", "error", error_message=ATTACK)
    out = printable_tree({"k\x1b": [dirty]})
    assert out == {"k\\x1b": [ProbeRecord("2026", "t", "p", "m", "error", error_message=SHOWN)]}
    assert dirty.error_message == ATTACK  # the original is not changed


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_probe_once_prints_the_sequence_escaped(
    replay: ReplayServer, tmp_path: Path, as_json: bool
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(config_text(replay.add("term-once", attack_script())))
    result = run_cli(
        "probe", "--once", "--no-store", "--config", str(config), *(["--json"] if as_json else [])
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout.decode()
    assert no_raw_controls(out) and no_raw_controls(result.stderr.decode())
    assert "upstream exploded" in out and "TITLE" in out


def test_export_csv_to_stdout_escapes_old_raw_rows(tmp_path: Path) -> None:
    # Provider text of rows stored before probes were sanitised (names and models are
    # printable by config validation since then, and shown escaped by the dashboard).
    db = dashboard_db(tmp_path / "e.db", name="old", model="m")
    result = run_cli("export", "--csv", "--db", str(db))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode(), newline="")))
    assert len(rows) == 4
    for row in rows:
        assert row["error_message"] == f"HTTP 500: upstream exploded {SHOWN}"
        assert row["request_id"].startswith("req-\\u202errr")
        assert len(row["request_id"]) == 32_000 and row["request_id"].endswith("…")
    assert no_raw_controls(result.stdout.decode())


def test_check_config_rejects_a_name_with_escapes_and_prints_it_escaped(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(config_text("http://127.0.0.1:9/v1", name="a\\u001b]0;T\\u0007"))
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert no_raw_controls(err) and no_raw_controls(result.stdout.decode())
    assert f"{config}:2: targets[0].name: must be printable text: 'a\\x1b]0;T\\x07'" in err

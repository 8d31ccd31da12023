"""Issue 11, the command line: ``probe --once`` prints a record for every target (the not
configured ones too) as each ends, and what finished when interrupted; ``export --target``
with an unknown name says "did you mean". Real processes, real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from probes.timestamps import utc_now
from store.db import open_db
from store.history import HistoryWriter, MonitoredTarget
from tests.history_helpers import record
from tests.servers import answering_and_hanging_server

ROOT = Path(__file__).resolve().parents[1]
PROBE_ONCE = [sys.executable, "-m", "tui.cli", "probe", "--once", "--json", "--no-store"]


@pytest.fixture
def port() -> Iterator[int]:
    with answering_and_hanging_server() as port:
        yield port


def write_config(tmp: Path, port: int) -> Path:
    lines = ["[defaults]", "timeout_s = 120"]
    for name, url, key in (
        ("quick", f"http://127.0.0.1:{port}/v1", None),
        ("hangs", f"http://127.0.0.1:{port}/hang/v1", None),
        ("nokey", "https://api.groq.com/openai/v1", "IW_TEST_UNSET_KEY"),
    ):
        lines += ["[[targets]]", f'name = "{name}"', 'provider = "openai-compatible"']
        lines += [f'base_url = "{url}"', 'model = "m"']
        if key:
            lines.append(f'api_key_env = "{key}"')
    path = tmp / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_probe_once_prints_every_target_and_what_finished_on_ctrl_c(
    tmp_path: Path, port: int
) -> None:
    config = write_config(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if k != "IW_TEST_UNSET_KEY"}
    proc = subprocess.Popen(
        [*PROBE_ONCE, "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # config order: quick, then hangs, nokey
    assert first["target"] == "quick"
    time.sleep(0.5)  # "hangs" is still waiting for its answer: nokey waits behind it
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    lines = [first, *(json.loads(line) for line in out.splitlines())]
    assert [r["target"] for r in lines] == ["quick", "nokey"]  # what finished, in order
    by_target = {r["target"]: r for r in lines}
    assert by_target["nokey"]["error_kind"] == "not_configured"
    assert "IW_TEST_UNSET_KEY is unset" in by_target["nokey"]["error_message"]
    assert by_target["quick"]["status"] == "ok"
    assert proc.returncode == 130
    assert "interrupted: 1 probe(s) finished; not finished: hangs" in err


def export(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "export", "--db", str(db), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_export_with_an_unknown_target_says_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    db = open_db(path)
    now = utc_now()
    writer = HistoryWriter(db, [MonitoredTarget("groq-llama", "groq.example")], now)
    writer.store_probe(record("groq-llama", now - timedelta(seconds=5)))
    db.close()
    out = export(path, "--target", "groq-lama")
    assert out.returncode == 2 and out.stdout == ""
    assert "--target 'groq-lama': no such target" in out.stderr
    assert "did you mean 'groq-llama'?" in out.stderr
    far = export(path, "--target", "zzz")
    assert far.returncode == 2 and "(known: groq-llama)" in far.stderr
    good = export(path, "--target", "groq-llama")
    assert good.returncode == 0 and "groq-llama" in good.stdout

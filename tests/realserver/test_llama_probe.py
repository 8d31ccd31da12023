"""inferwatch against a real third-party server: llama.cpp's llama-server on 127.0.0.1.

Everything runs for real: the ``inferwatch`` command line in subprocesses, the scheduler in the
headless prober, the SQLite store and the CSV export. The assertions compare what inferwatch
recorded with what llama-server itself said in its stream (usage, ``timings``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from .make_model import make_model
from .server import LlamaServer, ensure_llama_server

pytestmark = pytest.mark.realserver

MAX_TOKENS = 24
PROMPT = "Write a short line about harbours, gulls and the evening tide."


@pytest.fixture(scope="module")
def medium_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-server with the 'medium' random-weight model (about 65 tokens/s on 2 cores)."""
    binary = ensure_llama_server()
    folder = tmp_path_factory.mktemp("llama")
    model = make_model(folder / "medium.gguf", size="medium", seed=0)
    with LlamaServer(binary, model, alias="medium", log_path=folder / "server.log") as server:
        yield server


def _config(path: pathlib.Path, server: LlamaServer, interval_s: float = 30) -> pathlib.Path:
    path.write_text(
        "[defaults]\n"
        f"interval_s = {interval_s}\nmax_tokens = {MAX_TOKENS}\nprompt = {json.dumps(PROMPT)}\n"
        "[prober]\njitter_s = 0.1\n"
        "[[targets]]\n"
        'name = "llama-local"\nprovider = "llama.cpp"\n'
        f'base_url = "{server.base_url}"\nmodel = "medium"\n'
        "input_usd_per_mtok = 0.0\noutput_usd_per_mtok = 0.0\n"
    )
    return path


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


def _raw_usage(server: LlamaServer) -> tuple[dict[str, int], dict[str, float], int]:
    """Ask llama-server directly with the same request; return its usage, timings, events."""
    body = {
        "model": "medium",
        "messages": [{"role": "user", "content": PROMPT + " (raw)"}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
    }
    usage: dict[str, int] = {}
    timings: dict[str, float] = {}
    content_events = 0
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", server.base_url + "/chat/completions", json=body) as resp,
    ):
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage, timings = chunk["usage"], chunk.get("timings", {})
            for choice in chunk.get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    content_events += 1
    return usage, timings, content_events


def test_probe_once_records_what_llama_server_said(
    medium_server: LlamaServer, tmp_path: pathlib.Path
) -> None:
    config = _config(tmp_path / "c.toml", medium_server)
    out = _cli("probe", "--once", "--json", "--config", str(config), "--db", str(tmp_path / "a.db"))
    assert out.returncode == 0, out.stderr + out.stdout
    (record,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert record["status"] == "ok" and record["provider"] == "llama.cpp"
    # llama-server streams one token per event and reports usage in a choices:[] chunk.
    assert 1 <= record["output_tokens"] <= MAX_TOKENS
    assert record["token_events"] == record["output_tokens"]
    assert record["usage_source"] == "reported" and record["input_tokens"] > 10
    assert record["cache_read_tokens"] == 0  # fresh prompt: nothing cached yet
    assert record["finish_reason"] in ("length", "stop")
    # Its own timings are kept apart from ours and are consistent with them.
    assert record["server_prefill_ms"] > 0 and record["server_decode_ms"] > 0
    assert record["ttfb_ms"] <= record["ttft_ms"] <= record["total_ms"]
    assert record["server_decode_ms"] <= record["total_ms"]
    if record["output_tokens"] >= 8:
        server_tps = (record["output_tokens"] - 1) / (record["server_decode_ms"] / 1000)
        assert record["decode_tps"] == pytest.approx(server_tps, rel=0.35)
    assert record["cost_usd"] == 0.0 and record["cost_source"] == "config"
    # A raw request with the same shape reports usage the same way.
    usage, timings, events = _raw_usage(medium_server)
    assert usage["completion_tokens"] == events and "predicted_ms" in timings


def test_headless_prober_stores_and_exports_real_probes(
    medium_server: LlamaServer, tmp_path: pathlib.Path
) -> None:
    config = _config(tmp_path / "c.toml", medium_server, interval_s=0.5)
    db = tmp_path / "b.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "run",
            "--headless",
            "--config",
            str(config),
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline and len(rows) < 3:
            time.sleep(0.5)
            if db.exists():
                out = _cli("export", "--csv", "--db", str(db))
                rows = list(csv.DictReader(io.StringIO(out.stdout, newline="")))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0
    assert len(rows) >= 3, rows
    assert all(r["status"] == "ok" and r["target"] == "llama-local" for r in rows)
    # The same prompt again: llama-server's prompt cache serves all but the last token.
    later = rows[-1]
    assert int(later["cache_read_tokens"]) >= int(later["input_tokens"]) - 2
    assert later["conn_reused"] in ("true", "false")
    assert all(float(r["ttft_ms"]) > 0 for r in rows)

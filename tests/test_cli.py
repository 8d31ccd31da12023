"""The command line, run as a real subprocess: demo probes, exit codes, messages, export."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.public_schema import PUBLIC_COLUMNS
from tests.servers import ReplayServer, Script
from tui.demo import DEMO_TARGETS


def inferwatch(*args: str, env: dict[str, str] | None = None, timeout: float = 60):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_probe_once_demo_json_prints_one_record_per_target(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = inferwatch("probe", "--once", "--demo", "--json", "--db", str(db))
    # A fresh demo answers every first probe (its random draws are seeded, chat-primary's
    # outage starts 45 s in), so anything but six successes is a broken demo or prober.
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["target"] for r in records] == [t[0] for t in DEMO_TARGETS]
    for r in records:
        assert tuple(r) == PUBLIC_COLUMNS
        assert r["status"] == "ok" and r["error_kind"] is None, r
        assert r["ttft_ms"] > 0 and r["output_tokens"] > 0 and r["input_tokens"] > 0
        assert r["cost_usd"] is not None and r["finish_reason"] in ("stop", "length")
        assert r["started_at"].endswith("Z")
    # The same round was stored, and exports as CSV.
    exported = inferwatch("export", "--csv", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    assert len(rows) == len(records)


def test_bad_config_is_a_message_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[targets]]\nname = "x"\nprovider = "opnai"\nmodel = "m"\nintervall_s = 3\n')
    for args in (("check-config", str(config)), ("probe", "--once", "--config", str(config))):
        out = inferwatch(*args)
        assert out.returncode == 2
        assert "Traceback" not in out.stderr
        assert "did you mean 'openai'" in out.stderr
        assert f"{config}:5: targets[0].intervall_s: unknown key" in out.stderr


def test_missing_config_points_to_the_demo(tmp_path: Path) -> None:
    out = inferwatch("probe", "--once", "--config", str(tmp_path / "none.toml"))
    assert out.returncode == 2 and "inferwatch demo" in out.stderr and "Traceback" not in out.stderr


def test_refused_500_and_unset_key_are_classified(tmp_path: Path, replay: ReplayServer) -> None:
    url = replay.add(
        "cli500",
        Script(
            status=500,
            body=b'{"error":{"message":"boom","type":"server_error"}}',
            headers={"Content-Type": "application/json"},
        ),
    )
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[targets]]\nname = "refused"\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        f'[[targets]]\nname = "five-hundred"\nprovider = "openai-compatible"\nbase_url = "{url}"\nmodel = "m"\n'
        '[[targets]]\nname = "keyless"\nprovider = "groq"\nmodel = "m"\napi_key_env = "IW_UNSET_FOR_TEST"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "IW_UNSET_FOR_TEST"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "probe",
            "--once",
            "--json",
            "--config",
            str(config),
            "--no-store",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    # Every target has a record, in config order; the keyless one is not probed (issue 11).
    assert [(r["target"], r["error_kind"]) for r in records] == [
        ("refused", "connect_refused"),
        ("five-hundred", "server_error"),
        ("keyless", "not_configured"),
    ]
    assert records[2]["error_message"] == "IW_UNSET_FOR_TEST is unset: not probed"


def test_check_config_lists_providers_and_error_kinds() -> None:
    providers = inferwatch("check-config", "--providers")
    assert providers.returncode == 0 and "openai-compatible" in providers.stdout
    kinds = inferwatch("check-config", "--error-kinds")
    assert "stall" in kinds.stdout and "rate_limited" in kinds.stdout
    lines = {line.split()[0]: line.split()[1] for line in kinds.stdout.splitlines() if line}
    assert lines["dns"] == "ours" and lines["dns_timeout"] == "monitor"
    assert lines["safety_block"] == "neutral" and lines["server_error"] == "provider"


def test_export_bad_since_is_a_message(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert inferwatch("probe", "--once", "--demo", "--db", str(db)).returncode == 0
    out = inferwatch("export", "--db", str(db), "--since", "last tuesday")
    assert out.returncode == 2 and "24h" in out.stderr and "Traceback" not in out.stderr


def test_help_mentions_every_command() -> None:
    out = inferwatch("--help")
    for command in ("demo", "run", "probe", "export", "check-config"):
        assert command in out.stdout


def test_global_db_option_before_the_subcommand_is_used(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    assert inferwatch("probe", "--once", "--demo", "--db", str(db)).returncode == 0
    out = inferwatch("--db", str(db), "export", "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout, newline="")))
    assert sorted(r["target"] for r in rows) == sorted(t[0] for t in DEMO_TARGETS)
    assert {r["status"] for r in rows} == {"ok"}


def test_unwritable_output_and_database_are_messages(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert inferwatch("probe", "--once", "--demo", "--db", str(db)).returncode == 0
    out = inferwatch("export", "--db", str(db), "-o", str(tmp_path / "no" / "such" / "x.csv"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "No such file or directory" in out.stderr
    config = tmp_path / "c.toml"
    config.write_text(
        '[[targets]]\nname = "x"\nprovider = "openai-compatible"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
    )
    out = inferwatch("probe", "--once", "--config", str(config), "--db", "/proc/nope/x.db")
    assert out.returncode == 2 and "Traceback" not in out.stderr

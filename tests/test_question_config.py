"""Issue #13's config (status pages, cache checks, workloads, cold schedule), the schedules it
produces, and the m010 migration on a database from before it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.config import ConfigError, load_config, parse_config
from probes.question_config import (
    CacheCheckConfig,
    StatusConfig,
    StatusPageConfig,
    WorkloadConfig,
)
from probes.questions import CheckSchedule, QuestionChecks
from probes.record import ProbeRecord
from store.db import insert_probe, open_db

ROOT = Path(__file__).resolve().parents[1]

TARGETS = """
[[targets]]
name = "a"
provider = "openai"
model = "gpt-4o-mini"
cache_check = { interval_s = 1800 }
[[targets]]
name = "b"
provider = "openai-compatible"
base_url = "https://x.example/v1"
model = "m"
scaledown_window_s = 60
cold_interval_s = 600
"""


def test_schedules_from_the_config() -> None:
    config = parse_config(
        TARGETS
        + "[[workloads]]\nname = '1k'\ninput_tokens = 1000\ninterval_s = 600\n"
        + "[[workloads]]\nname = '10k'\ninput_tokens = 10000\ninterval_s = 3600\n"
        + "targets = ['a']\n"
    )
    assert QuestionChecks(config).schedules() == [
        CheckSchedule("a", "cache_check", 1800.0),
        CheckSchedule("a", "workload", 600.0, "1k"),
        CheckSchedule("a", "workload", 3600.0, "10k"),
        CheckSchedule("b", "workload", 600.0, "1k"),
        CheckSchedule("b", "cold_start", 600.0),
    ]
    a = config.targets[0]
    assert a.cache_check == CacheCheckConfig(interval_s=1800)
    assert a.cache_check.gap_s == 2.0 and a.cache_check.max_tokens == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[targets]]\nname='a'\nprovider='openai'\nmodel='m'\ncold_interval_s=30\n"
            "scaledown_window_s=60\n",
            "cold_interval_s must be longer than scaledown_window_s",
        ),
        (
            "[[targets]]\nname='a'\nprovider='openai'\nmodel='m'\ncold_interval_s=300\n",
            "cold_interval_s must be longer than scaledown_window_s (set both)",
        ),
        (
            "[[workloads]]\nname='w'\ninput_tokens=1000\ntargets=['nope']\n",
            "workload 'w' names unknown target 'nope'",
        ),
        (
            "[[workloads]]\nname='w'\ninput_tokens=1000\n[[workloads]]\nname='w'\n"
            "input_tokens=2000\n",
            "duplicate workload name 'w'",
        ),
        (
            "[[workloads]]\nname='w'\ninput_tokns=1000\n",
            "unknown key 'input_tokns'; did you mean 'input_tokens'?",
        ),
        (
            "[[targets]]\nname='a'\nprovider='openai'\nmodel='m'\nstatus_url='ftp://x'\n",
            "status_url",
        ),
        ("[status]\ninterval_s = 5\n", "interval_s"),
    ],
)
def test_bad_question_config_is_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.toml")
    assert message in str(info.value)


def test_workload_errors_carry_their_line() -> None:
    text = "[[targets]]\nname='a'\nprovider='openai'\nmodel='m'\n"
    text += "[[workloads]]\nname='w'\ninput_tokens=1000\n[[workloads]]\nname='v'\ninput_tokens=5\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.toml")
    assert str(info.value).startswith("c.toml:10: workloads[1].input_tokens:")


def test_example_config_documents_the_question_options() -> None:
    config = load_config(ROOT / "config.example.toml")
    assert config.workloads and config.status.enabled
    assert {t.config.provider for t in config.resolved()} >= {"groq"}
    assert any(t.provider == "replicate" for t in config.targets)
    text = (ROOT / "config.example.toml").read_text()
    for model in (StatusConfig, StatusPageConfig, CacheCheckConfig, WorkloadConfig):
        for key in model.model_fields:
            pattern = rf"^#? ?{key} = |[{{,] {key} = |^# \[status\.{key}\."
            assert re.search(pattern, text, re.M), f"{model.__name__}.{key} missing from example"


def test_m010_brings_an_older_database_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_db(path)
    insert_probe(db, ProbeRecord("2026-10-21T12:00:00.000Z", "t", "openai", "m", "ok"))
    # Make it look like a database from before issue #13.
    for column in ("kind", "workload", "idle_s", "cold", "server_ttft_ms", "server_predict_ms"):
        db.execute(f"ALTER TABLE probes DROP COLUMN {column}")
    db.execute("DROP TABLE official_status")
    db.execute("DROP TABLE cache_checks")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_questions'")
    db.conn.commit()
    db.conn.close()

    db = open_db(path)
    columns = db["probes"].columns_dict
    assert {"kind", "workload", "idle_s", "cold", "server_ttft_ms", "server_predict_ms"} <= set(
        columns
    )
    assert {"official_status", "cache_checks"} <= set(db.table_names())
    # The row stored before the migration is a canary; new rows keep their kind and flags.
    record = ProbeRecord("2026-10-21T12:01:00.000Z", "t", "openai", "m", "ok")
    record.kind, record.cold, record.idle_s = "cold_start", True, 901.5
    insert_probe(db, record)
    rows = list(db.query("SELECT kind, cold, idle_s FROM probes ORDER BY id"))
    assert rows == [
        {"kind": "canary", "cold": None, "idle_s": None},
        {"kind": "cold_start", "cold": 1, "idle_s": 901.5},
    ]
    db.conn.close()


async def test_checks_run_each_schedule_against_the_simulator() -> None:
    from probes.coldstart import IdleTracker
    from probes.runner import make_client
    from probes.simulator import SimProfile, SimulatorProcess

    profile = SimProfile("q", ttft_ms=20, tps=500, ttft_sigma=0, tps_sigma=0, output_tokens=4)
    with SimulatorProcess([profile]) as sim:
        config = parse_config(
            "[[targets]]\nname='sim'\nprovider='openai-compatible'\n"
            f"base_url='{sim.base_url('q')}'\nmodel='m'\nscaledown_window_s=0.5\n"
            "cold_interval_s=1\ncache_check={prefix_tokens=1100, gap_s=0}\n"
            "input_usd_per_mtok=1.0\noutput_usd_per_mtok=2.0\n"
            "[[workloads]]\nname='2k'\ninput_tokens=2000\nmax_tokens=4\n"
        )
        checks = QuestionChecks(config, tracker=IdleTracker())
        target = config.resolved()[0]
        outcomes = {}
        async with make_client() as client:
            for schedule in checks.schedules():
                outcomes[schedule.kind] = await checks.run(schedule, target, client)
    workload = outcomes["workload"].records
    assert [(r.kind, r.workload) for r in workload] == [("workload", "2k")]
    assert workload[0].status == "ok" and workload[0].input_tokens is not None
    cache = outcomes["cache_check"]
    assert [r.kind for r in cache.records] == ["cache_check", "cache_check"]
    assert cache.cache_check is not None and cache.cache_check.target == "sim"
    assert cache.cache_check.prefix_tokens == 1100
    (cold,) = outcomes["cold_start"].records
    assert cold.kind == "cold_start" and cold.status == "ok"
    # Every kind passes through the same idle tracker: the cold probe came right after the
    # workload's request, so the endpoint was not idle for the 0.5 s window.
    assert cold.idle_s is not None and cold.cold is False
    assert cache.records[0].idle_s is None  # the endpoint's first probe in this process


def test_check_config_explains_the_extra_schedules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import main

    path = tmp_path / "c.toml"
    path.write_text(TARGETS + "[[workloads]]\nname = '1k'\ninput_tokens = 1000\ntargets = ['b']\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prompt-caching check (prompt_cache_key, prefix >= 1024 tokens) every 1800s" in out
    assert "official status: https://status.openai.com/api/v2/summary.json every 300s" in out
    assert "workload 1k every 900s" in out
    assert "cold-start probe every 600s" in out
    assert "scales to zero after 60s idle" in out

"""Feature projections: cost per request/day/month, expected latency, rate-limit fit.

Hand-computed values for the pure functions, then the latency estimate checked against real
probes (``probes.runner.run_probe`` over HTTP on 127.0.0.1) of a simulated provider whose TTFT
and decode rate are known exactly, then ``inferwatch cost`` end to end.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from probes.config import FeatureConfig, load_config, parse_config
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from probes.simulator import SimProfile, SimulatorProcess
from probes.timestamps import iso
from store import control
from store.costs import (
    Measured,
    expected_latency_ms,
    feature_projections,
    mark_best,
    measure,
    per_minute_capacity,
    project,
    rate_fit,
)
from store.db import insert_probe, open_db
from tui.cli import main
from tui.cost_panel import render_cost_panel
from tui.prober import published

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

FEATURE = """
[[features]]
name = "summarise"
input_tokens = 500
output_tokens = 200
requests_per_day = 10000
"""


def target_block(name: str, provider: str, model: str, **extra: object) -> str:
    lines = ["[[targets]]", f'name = "{name}"', f'provider = "{provider}"', f'model = "{model}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def test_worked_example_cost_per_request_day_and_month() -> None:
    config = parse_config(
        target_block(
            "priced",
            "openai-compatible",
            "m",
            base_url="http://127.0.0.1:9/v1",
            input_usd_per_mtok=3.0,
            output_usd_per_mtok=15.0,
        )
        + target_block("snapshot", "openrouter", "anthropic/claude-sonnet-4.5")  # 3 / 15
        + target_block("unknown", "openai", "no-such-model-2031")
        + FEATURE
    )
    report = feature_projections(None, config, 3600, NOW)
    by = {p.target: p for p in report.projections}
    for name in ("priced", "snapshot"):
        p = by[name]
        # 500 × $3/M + 200 × $15/M = $0.0015 + $0.003
        assert p.cost_per_request_usd == pytest.approx(0.0045, abs=1e-12)
        assert p.per_day_usd == pytest.approx(45.0)  # × 10,000 a day
        assert p.per_month_usd == pytest.approx(1350.0)  # × 30 days
    assert by["priced"].cost_source == "config"
    assert by["snapshot"].cost_source.startswith("genai-prices ")
    unknown = by["unknown"]
    assert unknown.cost_per_request_usd is None and unknown.per_month_usd is None
    assert unknown.cost_source == "unpriced"
    assert by["priced"].cheapest and by["snapshot"].cheapest and not unknown.cheapest
    text = _render(render_cost_panel(report, None))
    assert "price unknown" in text and "$1,350.00" in text and "$45.00" in text


def test_cached_input_feature_uses_the_cache_rate() -> None:
    config = parse_config(
        target_block("gpt", "openai", "gpt-4o")
        + "[[features]]\nname = 'chat'\ninput_tokens = 2006\ncached_input_tokens = 1920\n"
        "output_tokens = 300\nrequests_per_day = 1000\n"
    )
    (p,) = feature_projections(None, config, 3600, NOW).projections
    # 86 × 2.50 + 1920 × 1.25 + 300 × 10.00 per million (docs/field-cases.md FC-12 A)
    assert p.cost_per_request_usd == pytest.approx(0.005615, abs=1e-12)
    assert p.per_day_usd == pytest.approx(5.615)


def test_expected_latency_and_measure() -> None:
    assert expected_latency_ms(200.0, 200, 100.0) == pytest.approx(2200.0)
    assert expected_latency_ms(None, 200, 100.0) is None
    assert expected_latency_ms(200.0, 200, None) is None
    rows = [
        {"started_at": f"t{i}", "status": "ok", "ttft_ms": 100.0 * i, "decode_tps": 50.0 + i}
        for i in range(1, 6)
    ] + [{"started_at": "t9", "status": "error", "ttft_ms": 9000.0, "decode_tps": None}]
    m = measure(rows)
    assert (m.ok_probes, m.ttft_samples, m.decode_samples) == (5, 5, 5)
    assert m.ttft_p50_ms == 300.0 and m.ttft_p99_ms == pytest.approx(496.0)  # failure excluded
    assert m.decode_tps_p50 == 53.0
    assert (m.since, m.until) == ("t1", "t5")


def test_rate_limit_capacity_and_what_breaks_first() -> None:
    # OpenAI-style per-minute window: 499 left, refilled within a minute.
    assert per_minute_capacity(499, 0.12) == 499
    # A per-day request window: 14,000 left over the next 2 hours is ~116.7 a minute.
    assert per_minute_capacity(14_000, 7200) == pytest.approx(116.667, rel=1e-4)
    # 10,000 requests a day = 6.944/min; 700 tokens each = 4,861/min.
    fit = rate_fit(10_000, 700, rpm_capacity=500, tpm_capacity=30_000)
    assert fit.requests_per_min == pytest.approx(6.9444, rel=1e-4)
    assert fit.tokens_per_min == pytest.approx(4861.1, rel=1e-4)
    assert fit.fits and not fit.fits_at_10x
    assert fit.breaks_first == "tokens/min"
    assert fit.max_multiplier == pytest.approx(30_000 / 4861.111, rel=1e-4)  # ~6.2x
    tight = rate_fit(10_000, 700, rpm_capacity=5, tpm_capacity=None)
    assert tight.fits is False and tight.breaks_first == "requests/min"
    unknown = rate_fit(10_000, 700, None, None)
    assert unknown.fits is None and unknown.breaks_first is None
    exhausted = rate_fit(10_000, 700, rpm_capacity=0, tpm_capacity=None)
    assert exhausted.fits is False and exhausted.requests_share is None


def test_cheapest_and_fastest_marks() -> None:
    feature = FeatureConfig(name="f", input_tokens=100, output_tokens=100, requests_per_day=1)
    config = parse_config(
        target_block(
            "a",
            "openai-compatible",
            "m",
            base_url="http://h/v1",
            input_usd_per_mtok=1.0,
            output_usd_per_mtok=1.0,
        )
        + target_block(
            "b",
            "openai-compatible",
            "m",
            base_url="http://h/v1",
            input_usd_per_mtok=2.0,
            output_usd_per_mtok=2.0,
        )
        + target_block("c", "openai-compatible", "m", base_url="http://h/v1")
    )
    a, b, c = config.resolved()
    slow = Measured(ok_probes=3, ttft_p50_ms=900.0, ttft_p99_ms=1000.0, decode_tps_p50=100.0)
    fast = Measured(ok_probes=3, ttft_p50_ms=100.0, ttft_p99_ms=200.0, decode_tps_p50=100.0)
    marked = mark_best([project(feature, t, m, NOW) for t, m in ((a, slow), (b, fast), (c, fast))])
    assert [(p.cheapest, p.fastest) for p in marked] == [
        (True, False),
        (False, True),
        (False, True),
    ]
    assert marked[2].cost_per_request_usd is None  # c is unpriced, never "cheapest"


# --- the latency estimate against real probes of a provider with known TTFT and TPS --------


async def test_projection_latency_matches_probes_of_a_known_provider(tmp_path: Path) -> None:
    # TTFT exactly 150 ms, 200 tokens/s: a 400-token answer should take 150 + 2000 ms.
    # 60 tokens make a 295 ms decode window, so a late first token moves the rate by little.
    profile = SimProfile("known", ttft_ms=150, tps=200, ttft_sigma=0, tps_sigma=0, output_tokens=60)
    db = open_db(tmp_path / "known.db")
    with SimulatorProcess([profile]) as sim:
        config = parse_config(
            target_block(
                "known",
                "openai-compatible",
                "m",
                base_url=sim.base_url("known"),
                input_usd_per_mtok=3.0,
                output_usd_per_mtok=15.0,
            )
            + "[[features]]\nname = 'answer'\ninput_tokens = 500\noutput_tokens = 400\n"
            "requests_per_day = 10000\n"
        )
        target = config.resolved()[0]
        records: list[ProbeRecord] = []
        async with make_client() as client:
            for _ in range(4):
                records.append(await run_probe(target, client))
    for r in records:
        assert r.status == "ok", r.error_message
        insert_probe(db, r)
    now = datetime.now(UTC) + timedelta(seconds=1)
    (p,) = feature_projections(db, config, 600, now).projections
    m = p.measured
    assert m.ok_probes == 4 and m.ttft_samples == 4 and m.decode_samples == 4
    assert (m.since, m.until) == (records[0].started_at, records[-1].started_at)
    # Generous bounds: a loaded machine delays tokens, never makes them early.
    assert m.ttft_p50_ms is not None and 145 <= m.ttft_p50_ms <= 300
    assert m.decode_tps_p50 is not None and 160 <= m.decode_tps_p50 <= 250
    assert p.latency_p50_ms is not None and 2150 * 0.8 <= p.latency_p50_ms <= 2150 * 1.2
    assert p.latency_p99_ms is not None and p.latency_p99_ms >= p.latency_p50_ms
    # The simulator's headroom headers: ~1000 requests and ~200k tokens a minute left;
    # 10,000 a day × 900 tokens = 6,250 tokens a minute: fits, also at 10x, tokens fill first.
    assert m.ratelimit_samples == 4
    assert p.fit.fits and p.fit.fits_at_10x and p.fit.breaks_first == "tokens/min"
    assert p.cost_per_request_usd == pytest.approx(500 * 3e-6 + 400 * 15e-6)
    db.close()


# --- inferwatch cost ----------------------------------------------------------------------


def _render(renderable: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def _cli_setup(tmp_path: Path) -> tuple[Path, Path]:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        "[prober]\njitter_s = 0\n"
        + target_block(
            "cheap",
            "openai-compatible",
            "m",
            base_url="http://127.0.0.1:9/v1",
            input_usd_per_mtok=0.5,
            output_usd_per_mtok=1.5,
            interval_s=60,
        )
        + target_block(
            "quick",
            "openai-compatible",
            "m",
            base_url="http://127.0.0.1:9/v1",
            input_usd_per_mtok=3.0,
            output_usd_per_mtok=15.0,
            interval_s=60,
        )
        + FEATURE,
        encoding="utf-8",
    )
    db_path = tmp_path / "cli.db"
    db = open_db(db_path)
    control.publish_targets(db, published(load_config(config_path)))
    now = datetime.now(UTC)
    for i in range(3):
        for name, ttft, tps in (("cheap", 900.0, 40.0), ("quick", 100.0, 400.0)):
            insert_probe(
                db,
                ProbeRecord(
                    started_at=iso(now - timedelta(minutes=10 + i)),
                    target=name,
                    provider="openai-compatible",
                    model="m",
                    status="ok",
                    ttft_ms=ttft,
                    decode_tps=tps,
                    input_tokens=18,
                    output_tokens=48,
                    cost_usd=0.0001,
                ),
            )
    db.close()
    return config_path, db_path


def test_cli_cost_table_marks_cheapest_and_fastest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, db_path = _cli_setup(tmp_path)
    rc = main(["cost", "--config", str(config_path), "--db", str(db_path), "--window", "1h"])
    out = capsys.readouterr().out
    assert rc == 0
    lines: dict[str, str] = {}
    for line in out.splitlines():  # the first table's rows (the monitoring table comes last)
        if line.count("│") > 3:
            lines.setdefault(line.split("│")[1].strip(), line)
    # cheap: 500 × 0.5 + 200 × 1.5 per million = $0.00055; 900 ms + 200 / 40 s = 5.90 s
    assert "$0.000550" in lines["cheap"] and "5.90 s" in lines["cheap"]
    assert "cheapest" in lines["cheap"] and "fastest" not in lines["cheap"]
    # quick: $0.0045 a request; 100 ms + 200 / 400 s = 600 ms
    assert "$0.0045" in lines["quick"] and "600 ms" in lines["quick"]
    assert "fastest" in lines["quick"] and "$1,350.00" in lines["quick"]
    assert "Cost of monitoring" in out
    # Each target: $0.0001 a probe × 1440 probes a day = $0.144 a day; both: $0.288.
    assert "$0.2880" in out


def test_cli_cost_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path, db_path = _cli_setup(tmp_path)
    common = ["--config", str(config_path), "--db", str(db_path)]
    assert main(["cost", *common, "--feature", "summarise", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {p["target"]: p for p in doc["projections"]["projections"]}
    assert rows["quick"]["per_month_usd"] == pytest.approx(1350.0)
    assert rows["quick"]["fastest"] is True and rows["cheap"]["cheapest"] is True
    assert rows["quick"]["measured"]["ttft_samples"] == 3
    assert doc["monitoring"] is None  # one feature asked for
    assert main(["cost", *common, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["monitoring"]["per_day_usd"] == pytest.approx(0.288)
    assert main(["cost", *common, "--feature", "summarize"]) == 2
    assert "did you mean 'summarise'?" in capsys.readouterr().err
    assert main(["cost", *common, "--window", "soon"]) == 2


def test_monitoring_panel_says_when_the_total_is_a_lower_bound() -> None:
    from store.costs import MonitoringCost, summarise_monitoring

    def row(name: str, per_day: float | None) -> MonitoringCost:
        return MonitoringCost(
            name,
            60,
            120,
            0,
            720,
            None if per_day is None else per_day / 720,
            3,
            0,
            per_day,
            None if per_day is None else per_day * 30,
            budget_note="stretched x2.00 to fit prober budget $1/day" if per_day else "",
        )

    report = summarise_monitoring(
        [row("a", 1.0), row("b", None)], window_s=3600, since="s", until="u", daily_budget_usd=1.0
    )
    assert report.per_day_usd == 1.0 and report.unpriced == ["b"]
    text = _render(render_cost_panel(None, report))
    assert "total (at least)" in text and "price unknown: b" in text
    assert "120s (set 60s)" in text and "prober budget $1/day" in text
    assert "No [[features]]" in _render(render_cost_panel(None, None))


def test_core_cost_modules_do_not_import_the_ui() -> None:
    import subprocess
    import sys

    code = (
        "import sys, probes.pricing, probes.budget, probes.usage_conventions, store.costs;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tui', 'textual', 'rich')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

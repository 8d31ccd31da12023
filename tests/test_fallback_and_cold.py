"""Can the fallback take the load (hand-computed, then ``inferwatch cost`` on a real SQLite
file), and cold starts (idle tracking with an injected clock, warm/cold statistics)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from probes.coldstart import IdleTracker, is_cold
from probes.config import parse_config
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from probes.timestamps import iso
from store.coldstart import cold_start_stats, cold_text
from store.costs import Measured
from store.db import insert_probe, open_db
from store.fallback import absorb, fallback_fits, fallback_report, fallback_text
from tests.conftest import make_target
from tests.servers import ReplayServer, Script, sse
from tui.cli import main

NOW = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)

CONFIG = """
[[targets]]
name = "a"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "big"
group = "chat"
[[targets]]
name = "b"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "mid"
group = "chat"
[[targets]]
name = "c"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "small"
group = "chat"
[[targets]]
name = "d"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "x"
group = "batch"
[[targets]]
name = "e"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "y"
group = "batch"
[[features]]
name = "chat"
input_tokens = 1500
output_tokens = 500
requests_per_day = 14400
targets = ["a", "b"]
[[features]]
name = "summarise"
input_tokens = 900
output_tokens = 100
requests_per_day = 2880
"""


def test_absorb_hand_computed() -> None:
    # 10 req/min and 20,000 tok/min against 100 req/min and 50,000 tok/min of headroom:
    # shares 0.1 and 0.4, so tokens fill first, at 1 / 0.4 = 2.5x.
    assert absorb(10, 20_000, 100, 50_000) == (True, False, "tokens/min", 2.5)
    # Exactly full fits at 1x and not at 10x.
    assert absorb(10, 20_000, 10, None) == (True, False, "requests/min", 1.0)
    assert absorb(10, 20_000, 1000, 1_000_000) == (True, True, "tokens/min", 50.0)
    assert absorb(10, 20_000, 5, None) == (False, False, "requests/min", 0.5)
    assert absorb(10, 20_000, 0, None) == (False, False, "requests/min", 0.0)
    assert absorb(10, 20_000, None, None) == (None, None, None, None)


def test_fallback_fits_for_a_group_hand_computed() -> None:
    config = parse_config(CONFIG)
    measured = {
        "b": Measured(rpm_capacity=100, tpm_capacity=50_000, ratelimit_samples=3),
        "c": Measured(rpm_capacity=5, ratelimit_samples=3),
    }
    b, c = fallback_fits("chat", ["a", "b", "c"], config.features, measured)
    # "chat" names a: 14,400 / 1,440 = 10 req/min, × (1,500 + 500) = 20,000 tok/min.
    assert (b.features, b.assumed) == (("chat",), False)
    assert (b.demand_rpm, b.demand_tpm) == (10.0, 20_000.0)
    assert (b.fits, b.fits_at_10x, b.breaks_first, b.max_multiplier) == (
        True,
        False,
        "tokens/min",
        2.5,
    )
    assert fallback_text(b) == "fallback b: 1x ✔, 10x ✖ (tokens/min full at 2.5x)"
    assert (c.fits, c.breaks_first, c.max_multiplier) == (False, "requests/min", 0.5)
    assert fallback_text(c) == "fallback c: 1x ✖, 10x ✖ (requests/min full at 0.5x)"
    # No feature names d: the feature without targets is assumed to run there.
    (e,) = fallback_fits("batch", ["d", "e"], config.features, {})
    assert (e.features, e.assumed) == (("summarise",), True)
    assert (e.demand_rpm, e.demand_tpm) == (2.0, 2000.0)  # 2,880 / 1,440; × 1,000
    assert fallback_text(e) == "fallback e: ? no headroom headers"
    assert fallback_fits("solo", ["a"], config.features, {}) == []


def _probe(target: str, minutes_ago: float, **fields: Any) -> ProbeRecord:
    record = ProbeRecord(iso(NOW - timedelta(minutes=minutes_ago)), target, "p", "m", "ok")
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def test_cli_cost_shows_whether_the_fallback_takes_the_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "c.toml"
    config_path.write_text(CONFIG)
    db = open_db(tmp_path / "f.db")
    now = datetime.now(UTC)
    for minutes in (30, 20, 10):
        # b: 100 requests left, resetting in 30 s (a per-minute window), 50,000 tokens.
        record = _probe("b", 0, ratelimit_remaining_requests=100, ratelimit_reset_requests_s=30.0)
        record.started_at = iso(now - timedelta(minutes=minutes))
        record.ratelimit_remaining_tokens = 50_000
        record.ratelimit_reset_tokens_s = 60.0
        insert_probe(db, record)
        # c: a per-day window: 14,400 left, resetting in 24 h = 10 per minute.
        record = _probe("c", 0, ratelimit_remaining_requests=14_400)
        record.started_at = iso(now - timedelta(minutes=minutes))
        record.ratelimit_reset_requests_s = 86_400.0
        insert_probe(db, record)
    db.close()
    common = ["--config", str(config_path), "--db", str(tmp_path / "f.db"), "--window", "1h"]
    assert main(["cost", *common, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fits = {f["fallback"]: f for f in doc["fallbacks"]}
    assert fits["b"]["rpm_capacity"] == 100 and fits["b"]["tpm_capacity"] == 50_000
    assert fits["b"]["breaks_first"] == "tokens/min" and fits["b"]["max_multiplier"] == 2.5
    # 10 req/min of demand against 14,400 × 60 / 86,400 = 10 per minute: exactly full.
    assert fits["c"]["rpm_capacity"] == pytest.approx(10.0)
    assert (fits["c"]["fits"], fits["c"]["fits_at_10x"]) == (True, False)
    assert fits["e"]["fits"] is None and fits["e"]["assumed"] is True
    assert main(["cost", *common]) == 0
    out = capsys.readouterr().out
    assert "Can the fallback take the load?" in out
    assert "a → b" in out and "tokens/min at 2.5x" in out
    assert "unknown: no headroom headers" in out
    # One feature asked for: the fallback question is not part of the answer.
    assert main(["cost", *common, "--feature", "chat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fallbacks"] == []


def test_fallback_report_without_a_database() -> None:
    fits = fallback_report(None, parse_config(CONFIG), 3600, NOW)
    assert [(f.group, f.fallback, f.fits) for f in fits] == [
        ("chat", "b", None),
        ("chat", "c", None),
        ("batch", "e", None),
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_time_and_cold_marks_with_an_injected_clock() -> None:
    clock = FakeClock()
    tracker = IdleTracker(clock=clock)
    target = make_target("http://127.0.0.1:9/v1", scaledown_window_s=60.0)
    twin = make_target("http://127.0.0.1:9/v1", name="twin")  # the same endpoint
    other = make_target("http://127.0.0.1:9/v2", name="other")
    assert tracker.start(target) is None  # first probe after the start: unknown
    clock.now += 2.0
    tracker.end(target)
    clock.now += 30.0
    assert tracker.start(twin) == 30.0  # any probe of the endpoint counts
    clock.now += 1.0
    assert tracker.start(target) == 0.0  # another probe in flight: busy, not idle
    clock.now += 1.0
    tracker.end(twin)
    tracker.end(target)
    clock.now += 61.5
    assert tracker.start(target) == 61.5
    assert tracker.start(other) is None  # another endpoint has its own history
    assert is_cold(61.5, 60.0) is True and is_cold(60.0, 60.0) is False
    assert is_cold(None, 60.0) is None and is_cold(61.5, None) is None


async def test_wrapped_probe_fills_idle_and_cold(replay: ReplayServer) -> None:
    clock = FakeClock()
    tracker = IdleTracker(clock=clock)
    chunks = [
        sse({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}),
        sse({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}),
        b"data: [DONE]\n\n",
    ]
    url = replay.add("coldwrap", Script(reads=[(0.02 * i, c) for i, c in enumerate(chunks)]))
    target = make_target(url, scaledown_window_s=60.0)
    probe: Callable[..., Any] = tracker.wrap(run_probe)
    async with make_client() as client:
        first = await probe(target, client)
        clock.now += 120.0
        second = await probe(target, client)
        clock.now += 5.0
        third = await probe(target, client)
    assert first.status == "ok", first.error_message
    assert (first.idle_s, first.cold) == (None, None)
    assert (second.idle_s, second.cold) == (120.0, True)
    assert (third.idle_s, third.cold) == (5.0, False)


def test_cold_start_stats_hand_computed() -> None:
    rows = [{"status": "ok", "ttft_ms": v, "cold": 0} for v in (300, 310, 320, 330, 340)]
    rows += [{"status": "ok", "ttft_ms": v, "cold": 1} for v in (4000, 5000)]
    rows.append({"status": "error", "ttft_ms": None, "cold": True})  # a cold start timing out
    rows += [{"status": "ok", "ttft_ms": 280, "cold": None}] * 2
    stats = cold_start_stats(rows)
    assert (stats.probes, stats.cold_probes, stats.unknown) == (8, 3, 2)
    assert stats.cold_start_rate == pytest.approx(3 / 8)
    assert (stats.warm.samples, stats.warm.p50_ms, stats.cold.p50_ms) == (5, 320.0, 4500.0)
    assert stats.cold_penalty_ms == pytest.approx(4180.0)
    # P95: warm 330 + 0.8 × 10 = 338; cold 4000 + 0.95 × 1000 = 4950.
    assert stats.cold_penalty_p95_ms == pytest.approx(4950.0 - 338.0)
    assert cold_text(stats) == "cold 38 % of 8 probes · P50 cold 4.5 s vs warm 320 ms (+4.2 s)"
    empty = cold_start_stats([{"status": "ok", "ttft_ms": 1.0, "cold": None}])
    assert empty.cold_start_rate is None and empty.cold_penalty_ms is None
    assert cold_text(empty).startswith("cold starts: –")

"""The prompt-caching check: request shapes, the verdict with hand-computed values, and a real
check against the demo simulator (which reports cached tokens for a repeated prefix)."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from probes.cache_check import (
    CACHE_SHAPES,
    QUESTION,
    CachePrompt,
    CacheShape,
    build_prompt,
    cache_shape,
    judge,
    new_sizer,
    run_cache_check,
    shape_request,
)
from probes.dialects.base import HttpRequest
from probes.record import ProbeRecord
from probes.runner import make_client
from probes.simulator import SimProfile, SimulatorProcess
from store.cache_checks import cache_text, latest_cache_checks, save_cache_check
from store.db import insert_probe, open_db
from tests.conftest import make_target
from tests.probing import near_schedule as near

WHEN = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)


def _request() -> HttpRequest:
    return HttpRequest(
        "POST",
        "https://api.example/v1/messages",
        {"Content-Type": "application/json"},
        {"model": "m", "messages": [{"role": "user", "content": "whole prompt"}], "stream": True},
    )


def test_request_shapes_per_mode() -> None:
    prompt = CachePrompt("PREFIX TEXT")
    control = shape_request(_request(), "cache_control", prompt, "k1")
    assert control.json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "PREFIX TEXT", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": QUESTION},
            ],
        }
    ]
    keyed = shape_request(_request(), "prompt_cache_key", prompt, "inferwatch-abc")
    assert keyed.json["prompt_cache_key"] == "inferwatch-abc"
    assert keyed.json["messages"] == _request().json["messages"]
    sticky = shape_request(_request(), "session_affinity", prompt, "inferwatch-abc")
    assert sticky.headers["x-session-affinity"] == "inferwatch-abc"
    assert shape_request(_request(), "implicit", prompt, "k") == _request()
    # The original request is never changed in place.
    assert "prompt_cache_key" not in _request().json


def test_prefix_is_stable_per_seed_and_first_in_the_prompt() -> None:
    a, b = build_prompt(5000, "t:run1"), build_prompt(5000, "t:run1")
    assert a == b and a.text.startswith(a.prefix) and a.text.endswith(QUESTION)
    other = build_prompt(5000, "t:run2")
    assert other.prefix.split()[0:3] != a.prefix.split()[0:3] or other.prefix != a.prefix
    assert other.prefix[:40] != a.prefix[:40]  # differs from the first words on
    assert 4900 <= len(a.text) <= 5000


def test_shapes_cover_the_documented_providers() -> None:
    assert cache_shape("openai") == CacheShape("prompt_cache_key", 1024)
    assert cache_shape("anthropic") == CacheShape("cache_control", 4096)
    assert cache_shape("fireworks") == CacheShape("session_affinity", 1024)
    assert cache_shape("gemini") == CacheShape("implicit", 4096)
    assert cache_shape("deepseek") == CacheShape("implicit", 1024)
    for provider in ("replicate", "mistral", "ollama", "ollama-native", "bedrock"):
        assert cache_shape(provider) is None
    assert set(CACHE_SHAPES) <= set(__import__("probes.providers").providers.PROVIDERS)


def _record(**fields: Any) -> ProbeRecord:
    return dataclasses.replace(
        ProbeRecord("2026-10-21T12:00:00.000Z", "claude", "anthropic", "m", "ok"), **fields
    )


def _anthropic_target() -> Any:
    return make_target(
        "https://api.anthropic.example/v1",
        name="claude",
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_usd_per_mtok=3.0,
        cache_read_usd_per_mtok=0.3,
        cache_write_usd_per_mtok=3.75,
        output_usd_per_mtok=15.0,
    )


def test_verdict_from_the_second_request_hand_computed() -> None:
    target = _anthropic_target()
    # First: 4,200 input of which 4,190 written to the cache; second: 3,864 read (92 %).
    first = _record(
        input_tokens=4200, cache_read_tokens=0, cache_write_tokens=4190, output_tokens=8
    )
    first.ttft_ms = 1000.0
    first.cost_usd = (10 * 3 + 4190 * 3.75 + 8 * 15) / 1e6
    second = _record(
        input_tokens=4200, cache_read_tokens=3864, cache_write_tokens=0, output_tokens=8
    )
    second.ttft_ms = 620.0
    second.cost_usd = (336 * 3 + 3864 * 0.3 + 8 * 15) / 1e6  # 0.0022872 as charged
    result = judge(target, first, second, CACHE_SHAPES["anthropic"], 4096, WHEN)
    assert result.verdict == "caching"
    assert result.cached_share == pytest.approx(3864 / 4200)
    assert result.ttft_saved == pytest.approx(0.38)
    # Against the same usage without the discount: 4,200 × 3 + 8 × 15 = 12,720 µ$. Comparing
    # with the first request (15,862.5 µ$, cache write premium) would say −86 %.
    assert result.uncached_cost_usd == pytest.approx(0.01272, abs=1e-12)
    assert result.cost_saved == pytest.approx(1 - 2287.2 / 12720, abs=1e-9)
    assert cache_text(result) == "cache ✔ 92 % read, TTFT −38 %, cost −82 %"


def test_other_verdicts_and_their_text() -> None:
    target = _anthropic_target()
    shape = CACHE_SHAPES["anthropic"]
    ok = _record(input_tokens=4200, cache_read_tokens=0, output_tokens=8, ttft_ms=900.0)
    none = judge(target, ok, ok, shape, 4096, WHEN)
    assert none.verdict == "not_caching"
    assert cache_text(none) == "✘ not caching (0 of 4,200 tokens)"
    short = _record(input_tokens=900, cache_read_tokens=0, output_tokens=8)
    too_short = judge(target, short, short, shape, 1024, WHEN)
    assert cache_text(too_short) == "? prefix too short (900 of 1,024 tokens)"
    unreported = _record(input_tokens=4200, output_tokens=8)
    assert cache_text(judge(target, ok, unreported, shape, 4096, WHEN)) == (
        "? cache not reported (4,200 tokens)"
    )
    failed = _record(status="error", error_kind="rate_limited", error_message="HTTP 429: slow")
    text = cache_text(judge(target, failed, failed, shape, 4096, WHEN))
    assert text == "? check failed: first request failed: rate_limited: HTTP 429: slow"
    slower = _record(input_tokens=4200, cache_read_tokens=4000, output_tokens=8, ttft_ms=1120.0)
    result = judge(target, ok, slower, shape, 4096, WHEN)
    assert result.cost_saved is None  # the second's cost was not priced: unknown, not 0
    assert cache_text(result) == "cache ✔ 95 % read, TTFT +24 %, cost ?"
    assert cache_text(None) == "– not checked"


async def test_unsupported_provider_sends_nothing() -> None:
    target = make_target(
        "https://api.replicate.example/v1", provider="replicate", model="meta/llama"
    )

    async def no_probe(*args: Any, **kwargs: Any) -> ProbeRecord:
        raise AssertionError("a request was sent")

    async with make_client() as client:
        check = await run_cache_check(target, client, probe=no_probe)
    assert check.records == ()
    assert check.result.verdict == "not_supported"
    assert cache_text(check.result) == "– not supported"


@pytest.mark.flaky(reruns=2)
async def test_check_against_the_demo_simulator(tmp_path: Any) -> None:
    # 40 ms to first token plus 0.4 ms per uncached prompt token; a repeated prefix of
    # >= 1,024 tokens is reported as cached (1.3 tokens per word, 7 template tokens).
    profile = SimProfile(
        "cachey",
        ttft_ms=40,
        tps=400,
        ttft_sigma=0,
        tps_sigma=0,
        output_tokens=8,
        prefill_ms_per_token=0.4,
        cache_min_tokens=1024,
        seed=1,
    )
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    with SimulatorProcess([profile]) as sim:
        target = make_target(
            sim.base_url("cachey"),
            name="sim",
            input_usd_per_mtok=1.0,
            cache_read_usd_per_mtok=0.25,
            output_usd_per_mtok=4.0,
        )
        sizer = new_sizer(1024)
        async with make_client() as client:
            # The first guess (4 characters per token) is too short for this tokenizer: the
            # check says so from the reported size, and the sizer learns from it.
            first = await run_cache_check(target, client, sizer=sizer, gap_s=1.5, sleep=sleep)
            assert first.result.verdict == "too_short", first.result
            assert first.result.input_tokens is not None
            assert first.result.input_tokens < 1024
            second = await run_cache_check(target, client, sizer=sizer, gap_s=1.5, sleep=sleep)
    assert slept == [1.5, 1.5]
    result = second.result
    r1, r2 = second.records
    assert r1.kind == r2.kind == "cache_check"
    assert result.verdict == "caching", result
    n, c = r2.input_tokens, r2.cache_read_tokens
    assert n is not None and c is not None and n >= 1024
    words = math.floor(c / 1.3)  # the simulator's count: c = floor(w × 1.3), n = ceil(...) + 7
    assert n - 8 <= c <= n - 7 and words > 0
    assert r1.cache_read_tokens == 0  # a fresh prefix per check: the first is a miss
    assert result.cached_share == pytest.approx(c / n)
    assert near(r1.ttft_ms, 40 + n * 0.4)
    assert near(r2.ttft_ms, 40 + (n - c) * 0.4)
    assert result.ttft_saved == pytest.approx(1 - r2.ttft_ms / r1.ttft_ms)
    charged = ((n - c) * 1.0 + c * 0.25 + 8 * 4.0) / 1e6
    uncached = (n * 1.0 + 8 * 4.0) / 1e6
    assert r2.cost_usd == pytest.approx(charged, abs=1e-12)
    assert result.cost_saved == pytest.approx(1 - charged / uncached, abs=1e-9)
    assert re.fullmatch(r"cache ✔ 99 % read, TTFT −\d\d %, cost −\d\d %", cache_text(result))
    # Stored: both requests as probes of kind cache_check, the verdict in cache_checks.
    db = open_db(tmp_path / "c.db")
    for record in second.records:
        insert_probe(db, record)
    save_cache_check(db, first.result)
    save_cache_check(db, result)
    assert [r["kind"] for r in db.query("SELECT kind FROM probes")] == ["cache_check"] * 2
    assert latest_cache_checks(db)["sim"] == result

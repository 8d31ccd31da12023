"""Cost per request by token bucket (docs/metrics.md §4-§5, docs/field-cases.md FC-11 and
FC-12): hand-computed values.

Every expected figure is written out as tokens × rate, in USD per million tokens, so a reader
can check it without running anything. Snapshot figures come from genai-prices' bundled data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from probes.config import ConfigError, TargetConfig, parse_config
from probes.dialects.base import Usage
from probes.pricing import (
    compute_cost,
    cost_from_config,
    cost_mismatch,
    price_usage,
    usd_per_mtok,
)
from probes.record import FIELD_DOCS, FIELD_NAMES
from probes.runner import make_client, run_probe
from probes.usage_conventions import normalise_usage
from tests.conftest import make_target
from tests.servers import ReplayServer, Script, sse

WHEN = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SNAPSHOT = f"genai-prices {genai_prices.__version__}"


def target(provider: str = "openai", model: str = "gpt-4o", **prices: float) -> TargetConfig:
    lines = ["[[targets]]", 'name = "t"', f'provider = "{provider}"', f'model = "{model}"']
    if provider == "openai-compatible":
        lines.append('base_url = "http://127.0.0.1:9/v1"')
    lines += [f"{key} = {value}" for key, value in prices.items()]
    return parse_config("\n".join(lines)).targets[0]


def close(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) < 1e-12


# --- FC-11: units -----------------------------------------------------------------------


def test_fc11_both_price_forms_normalise_to_the_same_cost() -> None:
    per_m = (usd_per_mtok(2.50, "per_mtok"), usd_per_mtok(10.00, "per_mtok"))
    per_k = (usd_per_mtok(0.0025, "per_ktok"), usd_per_mtok(0.0100, "per_ktok"))
    assert per_m == per_k == (2.5, 10.0)
    usage = Usage(input_tokens=12, output_tokens=5)
    for rate_in, rate_out in (per_m, per_k):
        t = target(
            "openai-compatible", "x", input_usd_per_mtok=rate_in, output_usd_per_mtok=rate_out
        )
        # 12 × 2.5e-6 + 5 × 1.0e-5
        assert cost_from_config(usage, t) == 0.00008
        assert compute_cost(usage, t, None, WHEN).cost_usd == 0.00008


def test_fc11_implausible_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="check the unit"):
        usd_per_mtok(0.0025, "per_token")  # 2500 USD per million
    with pytest.raises(ConfigError, match="per MILLION tokens"):
        target("openai-compatible", "x", input_usd_per_mtok=2500, output_usd_per_mtok=10)


# --- FC-12: buckets and each provider's convention ---------------------------------------


def test_fc12_a_openai_cached_tokens_are_inside_prompt_tokens() -> None:
    raw = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    usage = normalise_usage("openai", raw)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (2006, 1920, 300)
    t = target(
        "openai-compatible",
        "x",
        input_usd_per_mtok=2.50,
        cache_read_usd_per_mtok=1.25,
        output_usd_per_mtok=10.00,
    )
    cost = compute_cost(usage, t, None, WHEN)
    # 86 × 2.5e-6 + 1920 × 1.25e-6 + 300 × 1e-5
    assert close(cost.cost_usd, 0.005615)
    assert cost.buckets is not None
    assert close(cost.buckets.uncached_input_usd, 86 * 2.5e-6)
    assert close(cost.buckets.cache_read_usd, 1920 * 1.25e-6)
    assert close(cost.buckets.output_usd, 300 * 1e-5)
    # The same request priced from the snapshot (gpt-4o: 2.50 / 1.25 / 10.00).
    snap = compute_cost(usage, target(), "openai", WHEN)
    assert close(snap.cost_usd, 0.005615) and snap.cost_source == SNAPSHOT


def test_fc12_b_anthropic_input_excludes_both_cache_buckets() -> None:
    raw = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 12304,
        "cache_read_input_tokens": 0,
        "output_tokens": 550,
    }
    usage = normalise_usage("anthropic", raw)
    assert usage == Usage(12307, 0, 12304, 550, None)  # total input processed 12 307
    t = target(
        "openai-compatible",
        "x",
        input_usd_per_mtok=3.00,
        cache_write_usd_per_mtok=3.75,
        cache_read_usd_per_mtok=0.30,
        output_usd_per_mtok=15.00,
    )
    cost = compute_cost(usage, t, None, WHEN)
    # 3 × 3e-6 + 12304 × 3.75e-6 + 550 × 1.5e-5 (not 0.091311: writes are not input too)
    assert close(cost.cost_usd, 0.054399)
    assert cost.buckets is not None
    assert close(cost.buckets.uncached_input_usd, 3 * 3e-6)
    assert close(cost.buckets.cache_write_usd, 12304 * 3.75e-6)
    snap = compute_cost(usage, target("openai", "claude-sonnet-4-5"), "anthropic", WHEN)
    assert close(snap.cost_usd, 0.054399)


def test_fc12_c_gemini_thoughts_are_billed_as_output() -> None:
    raw = {
        "promptTokenCount": 8,
        "candidatesTokenCount": 13,
        "thoughtsTokenCount": 554,
        "totalTokenCount": 575,
    }
    usage = normalise_usage("gemini", raw)
    assert usage.output_tokens == 567 and usage.input_tokens == 8 and usage.reasoning_tokens == 554
    cost = compute_cost(usage, target("openai", "gemini-2.5-flash"), "google", WHEN)
    # gemini-2.5-flash 0.30 in / 2.50 out: 8 × 0.3e-6 + 567 × 2.5e-6
    assert close(cost.cost_usd, 0.0014199)


def test_bedrock_and_responses_conventions() -> None:
    bedrock = normalise_usage(
        "bedrock",
        {
            "inputTokens": 100,
            "cacheReadInputTokens": 1000,
            "cacheWriteInputTokens": 50,
            "outputTokens": 20,
        },
    )
    assert bedrock == Usage(1150, 1000, 50, 20, None)
    responses = normalise_usage(
        "openai-responses",
        {
            "input_tokens": 1200,
            "input_tokens_details": {"cached_tokens": 1024},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 8},
        },
    )
    assert responses == Usage(1200, 1024, None, 20, 8)
    # gpt-4o: 176 × 2.5e-6 + 1024 × 1.25e-6 + 20 × 1e-5 (reasoning inside the 20, not added)
    cost = compute_cost(responses, target(), "openai", WHEN)
    assert close(cost.cost_usd, 0.00192)
    assert normalise_usage("anthropic", {"output_tokens": 5}).input_tokens is None


def test_reasoning_is_part_of_output_not_added() -> None:
    usage = Usage(input_tokens=100, output_tokens=300, reasoning_tokens=120)
    t = target("openai-compatible", "x", input_usd_per_mtok=1.0, output_usd_per_mtok=10.0)
    # 100 × 1e-6 + 300 × 1e-5, reasoning is inside the 300
    assert close(compute_cost(usage, t, None, WHEN).cost_usd, 0.0031)


def test_reasoning_with_its_own_rate() -> None:
    # sonar-deep-research: 2 in, 8 out, 3 reasoning: 100 × 2 + 40 × 8 + 60 × 3 per million
    usage = Usage(input_tokens=100, output_tokens=100, reasoning_tokens=60)
    cost = compute_cost(usage, target("openai", "sonar-deep-research"), "perplexity", WHEN)
    assert close(cost.cost_usd, 0.0007)
    assert cost.rates is not None and cost.rates.reasoning == 3.0
    # A host that reports reasoning > output (docs/metrics.md §4): output at the output rate.
    odd = compute_cost(
        Usage(input_tokens=43, output_tokens=10, reasoning_tokens=11),
        target("openai", "sonar-deep-research"),
        "perplexity",
        WHEN,
    )
    assert close(odd.cost_usd, 43 * 2e-6 + 10 * 8e-6)


def test_cache_buckets_default_to_the_input_rate_without_their_own() -> None:
    t = target("openai-compatible", "x", input_usd_per_mtok=2.0, output_usd_per_mtok=8.0)
    cost = compute_cost(Usage(1000, 800, 100, 10), t, None, WHEN)
    # every input token at 2.0 (never free), 10 × 8.0
    assert close(cost.cost_usd, 1000 * 2e-6 + 10 * 8e-6)


def test_long_context_tier_applies_to_the_whole_request() -> None:
    usage = Usage(input_tokens=1_000_000, cache_read_tokens=500_000, cache_write_tokens=200_000)
    cost = compute_cost(
        Usage(usage.input_tokens, 500_000, 200_000, 0),
        target("openai", "claude-sonnet-4-5"),
        "anthropic",
        WHEN,
    )
    # above 200k input: 300k × 6 + 500k × 0.6 + 200k × 7.5 per million
    assert close(cost.cost_usd, 3.6)
    assert cost.rates is not None and cost.rates.input == 6.0


# --- unknown models, overrides -------------------------------------------------------------


def test_unknown_model_is_price_unknown_never_zero() -> None:
    usage = Usage(input_tokens=10, output_tokens=10)
    cost = compute_cost(usage, target("openai", "no-such-model-2031"), "openai", WHEN)
    assert cost.cost_usd is None and cost.cost_source == "unpriced"
    selfhosted = compute_cost(usage, target("openai-compatible", "my-model"), None, WHEN)
    assert selfhosted.cost_usd is None and selfhosted.cost_source == "unpriced"
    # Missing usage is unpriced even for a known model.
    assert compute_cost(Usage(input_tokens=10), target(), "openai", WHEN).cost_usd is None
    # The provider's own charge is the fallback.
    fallback = compute_cost(usage, target("openai", "no-such-model-2031"), "openai", WHEN, 0.002)
    assert fallback.cost_usd == 0.002 and fallback.cost_source == "provider"
    assert fallback.mismatch is None


def test_override_beats_the_snapshot() -> None:
    usage = Usage(input_tokens=500, output_tokens=200)
    snap = compute_cost(usage, target(), "openai", WHEN)
    assert close(snap.cost_usd, 500 * 2.5e-6 + 200 * 10e-6) and snap.cost_source == SNAPSHOT
    full = target(
        input_usd_per_mtok=3,
        cache_read_usd_per_mtok=0.3,
        cache_write_usd_per_mtok=3.75,
        output_usd_per_mtok=15,
    )
    cost = compute_cost(usage, full, "openai", WHEN)
    # the worked example: 500 × 3e-6 + 200 × 15e-6
    assert cost.cost_usd == 0.0045 and cost.cost_source == "config"


def test_partial_override_merges_with_the_snapshot() -> None:
    usage = Usage(input_tokens=2006, cache_read_tokens=1920, output_tokens=300)
    cost = compute_cost(usage, target(input_usd_per_mtok=2.0), "openai", WHEN)
    assert cost.cost_source == f"config+{SNAPSHOT}"
    assert cost.rates is not None
    assert (cost.rates.input, cost.rates.cache_read, cost.rates.output) == (2.0, 1.25, 10.0)
    # 86 × 2.0 + 1920 × 1.25 (snapshot) + 300 × 10 (snapshot), per million
    assert close(cost.cost_usd, 0.005572)
    # A configured rate is flat: no long-context tier on the overridden bucket.
    big = Usage(input_tokens=1_000_000, output_tokens=0)
    tiered = compute_cost(big, target("openai", "claude-sonnet-4-5"), "anthropic", WHEN)
    flat = compute_cost(
        big, target("openai", "claude-sonnet-4-5", input_usd_per_mtok=3.0), "anthropic", WHEN
    )
    assert close(tiered.cost_usd, 6.0) and close(flat.cost_usd, 3.0)


def test_partial_override_without_price_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="output_usd_per_mtok too"):
        target("openai-compatible", "x", input_usd_per_mtok=1.0)
    # An unknown model at a priced provider with half an override stays unknown.
    half = target("openai", "no-such-model-2031", input_usd_per_mtok=1.0)
    assert price_usage(Usage(10, None, None, 10), half, "openai", WHEN) is None


def test_snapshot_is_bundled_and_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("genai-prices tried to update its prices over the network")

    monkeypatch.setattr(genai_prices.UpdatePrices, "start", refuse)
    cost = compute_cost(Usage(input_tokens=10, output_tokens=10), target(), "openai", WHEN)
    assert cost.cost_source == SNAPSHOT
    assert genai_prices.data_snapshot.get_snapshot().from_auto_update is False


# --- provider-reported cost ----------------------------------------------------------------


def test_cost_mismatch_rule() -> None:
    assert cost_mismatch(None, 0.001) is None and cost_mismatch(0.001, None) is None
    assert cost_mismatch(0.00105, 0.001) is False  # 5 % exactly is agreement
    assert cost_mismatch(0.00106, 0.001) is True  # 6 %
    assert cost_mismatch(0.0000015, 0.000001) is False  # 50 % but only $0.0000005
    assert cost_mismatch(0.000003, 0.0) is True  # provider says free, we say $0.000003
    assert cost_mismatch(0.0, 0.0) is False


def test_record_field_documented() -> None:
    assert "cost_mismatch" in FIELD_NAMES and "5%" in FIELD_DOCS["cost_mismatch"][1]


async def test_provider_charge_is_the_cost_estimate_beside_it(replay: ReplayServer) -> None:
    def script(cost: float) -> Script:
        return Script(
            reads=[
                (0.05, sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})),
                (0.06, sse({"choices": [{"index": 0, "delta": {"content": " there"}}]})),
                (
                    0.07,
                    sse(
                        {
                            "choices": [],
                            "usage": {
                                "prompt_tokens": 254,
                                "completion_tokens": 5,
                                "cost": cost,
                                "prompt_tokens_details": {"cached_tokens": 0},
                            },
                        }
                    ),
                ),
                (0.08, b"data: [DONE]\n\n"),
            ],
            scale=0.5,
        )

    prices = {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 15.0}
    async with make_client() as client:
        # 254 × 3e-6 + 5 × 15e-6 = 0.000837, what OpenRouter charged in the recording
        agree = await run_probe(
            make_target(replay.add("or_agree", script(0.000837)), **prices), client
        )
        differ = await run_probe(
            make_target(replay.add("or_differ", script(0.0012)), **prices), client
        )
    assert agree.status == "ok", agree.error_message
    # What the provider charged is the cost; the price table's estimate is kept beside it.
    assert agree.cost_usd == pytest.approx(0.000837, abs=1e-10)
    assert agree.provider_cost_usd == 0.000837 and agree.cost_source == "provider"
    assert agree.cost_estimate_usd == pytest.approx(0.000837, abs=1e-10)
    assert agree.cost_mismatch is False
    # A disagreement: cost_usd is the charge (naive: the estimate 0.000837), flagged.
    assert differ.cost_usd == pytest.approx(0.0012, abs=1e-10)
    assert differ.cost_estimate_usd == pytest.approx(0.000837, abs=1e-10)
    assert differ.cost_source == "provider" and differ.cost_mismatch is True


def test_migration_adds_the_mismatch_column_to_an_old_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.db as store_db

    path = tmp_path / "old.db"
    old_fields = tuple(f for f in FIELD_NAMES if f != "cost_mismatch")
    with monkeypatch.context() as m:
        m.setattr(store_db, "FIELD_NAMES", old_fields)
        db = store_db.open_db(path, migrate=False)
        store_db.migrations.apply(db, stop_before="m005_cost_budget")
        assert "cost_mismatch" not in db["probes"].columns_dict
        db.close()
    db = store_db.open_db(path)
    assert "cost_mismatch" in db["probes"].columns_dict
    assert "effective_interval_s" in db["targets"].columns_dict
    db.close()


def test_provider_charge_is_the_cost_even_without_usage() -> None:
    # An OpenRouter chunk can carry usage.cost while the token counts are missing: the charge
    # is still what the request cost; there is nothing to estimate or compare.
    target = parse_config(
        '[[targets]]\nname = "o"\nprovider = "openrouter"\nmodel = "x/y"\n'
        "input_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n"
    ).resolved()[0]
    when = datetime(2026, 10, 21, tzinfo=UTC)
    cost = compute_cost(Usage(), target.config, None, when, provider_cost_usd=0.00042)
    assert (cost.cost_usd, cost.cost_source, cost.estimate_usd, cost.mismatch) == (
        0.00042,
        "provider",
        None,
        None,
    )
    # Without a provider charge the estimate is the cost (12 x 3e-6 + 5 x 1.5e-5 = 0.000111).
    cost = compute_cost(Usage(12, None, None, 5), target.config, None, when)
    assert cost.cost_source == "config" and cost.provider_cost_usd is None
    assert cost.cost_usd == pytest.approx(0.000111, abs=1e-10)
    assert cost.estimate_usd == cost.cost_usd

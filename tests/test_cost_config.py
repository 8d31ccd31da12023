"""Config keys of issue #6: probing budgets and ``[[features]]``, validated with file lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.config import ConfigError, parse_config
from tui.cli import main

BASE = """
[prober]
daily_budget_usd = 5.0

[defaults]
daily_budget_usd = 1.0

[[targets]]
name = "gpt"
provider = "openai"
model = "gpt-4o"
api_key_env = "OPENAI_API_KEY"

[[targets]]
name = "local"
provider = "llama.cpp"
model = "qwen"
daily_budget_usd = 0.25
"""


def test_budgets_and_features_parse() -> None:
    text = (
        BASE
        + """
[[features]]
name = "summarise"
input_tokens = 500
output_tokens = 200
requests_per_day = 10000

[[features]]
name = "chat"
input_tokens = 2000
cached_input_tokens = 1500
output_tokens = 300
requests_per_day = 2500.5
targets = ["gpt"]
"""
    )
    config = parse_config(text)
    assert config.prober.daily_budget_usd == 5.0
    gpt, local = config.resolved()
    assert gpt.settings.daily_budget_usd == 1.0  # from [defaults]
    assert local.settings.daily_budget_usd == 0.25  # the target's own
    summarise, chat = config.features
    assert (summarise.cached_input_tokens, summarise.targets) == (0, ())
    assert chat.cached_input_tokens == 1500 and chat.targets == ("gpt",)


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (
            'name = "f"\ninput_tokens = 100\ncached_input_tokens = 200\noutput_tokens = 10\n'
            "requests_per_day = 1",
            "cached_input_tokens (200) cannot exceed input_tokens (100)",
        ),
        (
            'name = "f"\ninput_tokens = 100\noutput_tokens = 10\nrequests_per_dya = 1',
            "unknown key 'requests_per_dya'; did you mean 'requests_per_day'?",
        ),
        (
            'name = "f"\ninput_tokens = 100\noutput_tokens = 0\nrequests_per_day = 1',
            "greater than or equal to 1",
        ),
        (
            'name = "f"\ninput_tokens = 100\noutput_tokens = 10\nrequests_per_day = 1\n'
            'targets = ["gtp"]',
            "unknown target 'gtp'; did you mean 'gpt'?",
        ),
    ],
)
def test_feature_errors_name_the_problem(feature: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "\n[[features]]\n" + feature, "c.toml")
    assert expected in str(info.value)


def test_feature_error_points_at_its_line() -> None:
    text = BASE + '\n[[features]]\nname = "f"\ninput_tokens = 100\noutput_tokens = -3\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text + "requests_per_day = 1\n", "c.toml")
    line = text.splitlines().index("output_tokens = -3") + 1
    assert str(info.value).startswith(f"c.toml:{line}: features[0].output_tokens:")


def test_duplicate_feature_and_nonpositive_budget_rejected() -> None:
    dup = '\n[[features]]\nname = "f"\ninput_tokens = 1\noutput_tokens = 1\nrequests_per_day = 1\n'
    with pytest.raises(ConfigError, match="duplicate feature name 'f'"):
        parse_config(BASE + dup + dup)
    with pytest.raises(ConfigError, match="daily_budget_usd"):
        parse_config("[prober]\ndaily_budget_usd = 0\n")


def test_check_config_explains_merged_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        BASE.replace('model = "gpt-4o"', 'model = "gpt-4o"\ninput_usd_per_mtok = 2.0')
        + '[[targets]]\nname = "x"\nprovider = "openai"\nmodel = "no-such-model-2031"\n'
        + '[[features]]\nname = "f"\ninput_tokens = 500\noutput_tokens = 200\n'
        + "requests_per_day = 10000\n",
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    # input from the config, the other buckets from the snapshot (gpt-4o: 1.25 cached, 10 out)
    assert "input 2, cache read 1.25, cache write 2, output 10 [config+genai-prices" in out
    assert "x: openai no-such-model-2031" in out and "price unknown" in out
    assert "prober budget: $5/day" in out and "probing budget: $0.25/day" in out
    assert "feature f: 500 in (0 cached) / 200 out, 10,000 requests/day" in out

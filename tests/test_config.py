"""Config parsing: strict keys with hints and line numbers, defaults, the example file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.config import (
    AlertsConfig,
    ChannelConfig,
    Config,
    ConfigError,
    DashboardConfig,
    MaintenanceConfig,
    MetricsConfig,
    ProberConfig,
    ProbeSettings,
    RouteConfig,
    TargetConfig,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"

GOOD = """
[defaults]
interval_s = 20

[[targets]]
name = "a"
provider = "groq"
model = "llama"
api_key_env = "IW_A_KEY"

[[targets]]
name = "b"
provider = "openai-compatible"
base_url = "http://127.0.0.1:8000/v1/"
model = "m"
interval_s = 5
"""


def test_defaults_and_overrides_resolve() -> None:
    targets = parse_config(GOOD).resolved()
    assert [t.name for t in targets] == ["a", "b"]
    assert targets[0].settings.interval_s == 20 and targets[1].settings.interval_s == 5
    assert targets[0].base_url == "https://api.groq.com/openai/v1"
    assert targets[1].base_url == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert targets[0].prices_id == "groq" and targets[1].prices_id is None


def test_unknown_key_has_line_and_hint() -> None:
    text = GOOD.replace("interval_s = 5", "intervl_s = 5")
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.toml")
    line = text.splitlines().index("intervl_s = 5") + 1
    assert (
        f"c.toml:{line}: targets[1].intervl_s: unknown key 'intervl_s'; did you mean 'interval_s'?"
        in str(err.value)
    )


def test_unknown_provider_suggests_nearest() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'grok'; did you mean 'groq'"):
        parse_config(GOOD.replace('provider = "groq"', 'provider = "grok"'))


def test_compatible_provider_needs_base_url() -> None:
    text = GOOD.replace('base_url = "http://127.0.0.1:8000/v1/"\n', "")
    with pytest.raises(ConfigError, match="needs base_url"):
        parse_config(text)


def test_duplicate_names_and_bad_values_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate target name 'a'"):
        parse_config(GOOD.replace('name = "b"', 'name = "a"'))
    with pytest.raises(ConfigError, match=r"greater than or equal to 0\.01"):
        parse_config(GOOD.replace("interval_s = 20", "interval_s = 0"))


def test_price_in_wrong_unit_is_rejected() -> None:
    text = GOOD + "input_usd_per_mtok = 2500\noutput_usd_per_mtok = 10\n"
    with pytest.raises(ConfigError, match="USD per MILLION tokens"):
        parse_config(text)


def test_toml_syntax_error_is_a_message() -> None:
    with pytest.raises(ConfigError, match="TOML syntax error"):
        parse_config("[[targets]\nname=", "bad.toml")


def test_missing_file_is_a_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_unset_key_means_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IW_A_KEY", raising=False)
    a = parse_config(GOOD).resolved()[0]
    assert not a.is_configured() and a.api_key() is None
    monkeypatch.setenv("IW_A_KEY", "k-123")
    assert a.is_configured() and a.api_key() == "k-123"


def test_example_config_loads_and_documents_every_option() -> None:
    config = load_config(EXAMPLE)
    assert isinstance(config, Config) and config.targets
    text = EXAMPLE.read_text()
    for model in (
        ProbeSettings,
        ProberConfig,
        DashboardConfig,
        TargetConfig,
        MetricsConfig,
        AlertsConfig,
        ChannelConfig,
        RouteConfig,
        MaintenanceConfig,
    ):
        for key in model.model_fields:
            assert re.search(rf"^#? ?{key} = ", text, re.M), f"{key} missing from example"

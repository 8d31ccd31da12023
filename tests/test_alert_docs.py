"""The alert, metrics and fleet docs run as written: every TOML example parses with the real
config loader, the webhook body matches the code's, the provider map is complete."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probes.config import parse_config
from probes.providers import OTEL_PROVIDER_NAMES, PROVIDERS
from store.alerting import trial_notice

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / n for n in ("alerts.md", "prometheus-metrics.md", "fleet.md")] + [
    ROOT / "README.md"
]


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_toml_example_is_a_valid_config(path: Path) -> None:
    for block in _blocks(path, "toml"):
        parse_config(block, str(path))


def test_the_documented_webhook_body_is_the_one_sent() -> None:
    body = json.loads(_blocks(ROOT / "docs" / "alerts.md", "json")[0])
    sent = trial_notice("x", "lab", datetime(2026, 1, 1, tzinfo=UTC)).payload()
    assert set(body) == set(sent) | {"id"}
    table = (ROOT / "docs" / "alerts.md").read_text()
    for key in body:
        assert f"| `{key}` |" in table or f"`{key}` /" in table or f"/ `{key}` |" in table, key


def test_every_provider_has_an_otel_name_in_the_docs() -> None:
    assert set(OTEL_PROVIDER_NAMES) == set(PROVIDERS)
    doc = (ROOT / "docs" / "prometheus-metrics.md").read_text()
    for provider, otel in OTEL_PROVIDER_NAMES.items():
        assert f"| `{provider}` | `{otel}` |" in doc


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_scrape_config_example_passes_promtool(path: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess

    blocks = _blocks(path, "yaml")
    if not blocks:
        return
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus); .ci/run installs it")
    for i, block in enumerate(blocks):
        file = tmp_path / f"example{i}.yml"
        file.write_text(block)
        out = subprocess.run(
            [promtool, "check", "config", str(file)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr

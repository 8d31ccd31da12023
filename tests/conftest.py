"""Shared fixtures: a replay server on 127.0.0.1, target builders, hermetic environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import ResolvedTarget, parse_config
from tests.servers import ReplayServer


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read the developer's real config or database."""
    monkeypatch.setenv("INFERWATCH_CONFIG", str(tmp_path / "no-such-config.toml"))
    monkeypatch.setenv("INFERWATCH_DB", str(tmp_path / "default.db"))
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(scope="session")
def replay() -> Iterator[ReplayServer]:
    """One replay server (its own process) for the session; tests register unique cases."""
    server = ReplayServer().start()
    try:
        yield server
    finally:
        server.stop()


def make_target(
    base_url: str,
    name: str = "t",
    *,
    provider: str = "openai-compatible",
    model: str = "m",
    **settings: object,
) -> ResolvedTarget:
    """A resolved target at ``base_url`` (openai-compatible unless ``provider`` says otherwise)
    with optional target keys and settings overrides (``deployment``, ``max_tokens``, ...)."""
    lines = [
        "[[targets]]",
        f'name = "{name}"',
        f'provider = "{provider}"',
        f'base_url = "{base_url}"',
        f'model = "{model}"',
    ]
    for key, value in settings.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    return parse_config("\n".join(lines)).resolved()[0]

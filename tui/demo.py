"""The built-in demo: simulated providers on 127.0.0.1 and the config that probes them."""

from __future__ import annotations

from probes.config import Config, parse_config
from probes.simulator import DEMO_PROFILES

#: target name, simulator profile, model id, group, input/output USD per million tokens.
DEMO_TARGETS: tuple[tuple[str, str, str, str | None, float, float], ...] = (
    ("chat-primary", "primary", "demo-gpt-large", "chat", 2.50, 10.00),
    ("chat-fallback", "steady", "demo-gpt-mini", "chat", 0.15, 0.60),
    ("fast-llama", "fastlane", "demo-llama-70b", None, 0.59, 0.79),
    ("reasoner", "thinker", "demo-r1", None, 0.55, 2.19),
    ("flaky-mix", "flaky", "demo-mixtral", None, 0.60, 0.60),
    ("local-llm", "local", "demo-local-8b", None, 0.0, 0.0),
)

#: feature name, input tokens, cached input tokens, output tokens, requests per day
#: (``inferwatch cost --demo`` projects them onto the demo targets).
DEMO_FEATURES: tuple[tuple[str, int, int, int, int], ...] = (
    ("summarise", 500, 0, 200, 10_000),
    ("support-chat", 2000, 1500, 300, 2_500),
)

DEMO_INTERVAL_S = 5.0


def demo_config(port: int, interval_s: float = DEMO_INTERVAL_S) -> Config:
    """A config whose targets are the demo simulator's providers listening on ``port``."""
    known = {p.name for p in DEMO_PROFILES}
    lines = [
        "[defaults]",
        f"interval_s = {interval_s}",
        "timeout_s = 20",
        "max_tokens = 48",
        "[prober]",
        "jitter_s = 1.0",
        "[dashboard]",
        "window_s = 900",
    ]
    for name, profile, model, group, price_in, price_out in DEMO_TARGETS:
        assert profile in known
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            'provider = "openai-compatible"',
            f'base_url = "http://127.0.0.1:{port}/{profile}/v1"',
            f'model = "{model}"',
            f"input_usd_per_mtok = {price_in}",
            f"output_usd_per_mtok = {price_out}",
        ]
        if group:
            lines.append(f'group = "{group}"')
    for name, input_tokens, cached, output_tokens, per_day in DEMO_FEATURES:
        lines += [
            "[[features]]",
            f'name = "{name}"',
            f"input_tokens = {input_tokens}",
            f"cached_input_tokens = {cached}",
            f"output_tokens = {output_tokens}",
            f"requests_per_day = {per_day}",
        ]
    return parse_config("\n".join(lines), "<demo>")

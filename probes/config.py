"""Configuration: a TOML file read with :mod:`tomllib` into strict pydantic models.

Unknown keys are rejected with a "did you mean" hint, and every error names the file, the line
and the field (``config.toml:14: targets[1].intervl_s: unknown key; did you mean 'interval_s'?``).
API keys are never in the file: a target names the environment variable that holds its key.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probes.providers import PROVIDERS

DEFAULT_PROMPT = "Reply with one short sentence about the sea."
_MAX_PLAUSIBLE_USD_PER_MTOK = 1000.0  # above 0.001 USD per token is a unit error (FC-11)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeSettings(_Strict):
    """Settings a target may override; ``[defaults]`` gives the values for all targets."""

    interval_s: float = Field(30.0, gt=0, le=86400)
    """Seconds between two probes of one target."""
    timeout_s: float = Field(30.0, gt=0, le=3600)
    """Total deadline of one probe, from request to terminal marker."""
    first_token_timeout_s: float | None = Field(None, gt=0, le=3600)
    """Give up when no token arrived this long after the request (default: timeout_s)."""
    stall_timeout_s: float = Field(15.0, gt=0, le=3600)
    """Give up when no token arrived for this long after the first one (keep-alives ignored)."""
    max_tokens: int = Field(64, ge=1, le=32768)
    """Output budget of the canary request."""
    prompt: str = Field(DEFAULT_PROMPT, min_length=1)
    """The canary prompt, sent as one user message."""
    temperature: float | None = Field(0.0, ge=0, le=2)
    """Sampling temperature sent with the request; omit it for models that reject it."""
    # Outage rules (store/outage.py, docs/uptime.md).
    down_after_failures: int = Field(3, ge=1, le=100)
    """Consecutive provider-side failures (not 429, not probe_config) that make a target down."""
    up_after_successes: int = Field(2, ge=1, le=100)
    """Consecutive successes that bring a down or degraded target back up (hysteresis)."""
    ttft_slo_ms: float | None = Field(None, gt=0)
    """Latency objective in ms: degraded while the P95 TTFT over slo_window_probes exceeds it."""
    slo_window_probes: int = Field(20, ge=5, le=1000)
    """Last N probes whose successful TTFTs feed the P95 compared with ttft_slo_ms."""
    degraded_error_rate: float = Field(0.2, gt=0, le=1)
    """Failed share (0..1, 429 included) over error_rate_window_probes that means degraded."""
    error_rate_window_probes: int = Field(20, ge=2, le=1000)
    """Last N probes over which the error rate is computed (only once N probes exist)."""
    rate_limited_state: Literal["degraded", "down"] = "degraded"
    """How HTTP 429 counts: degraded (default; shown with cause rate_limited) or down."""
    daily_budget_usd: float | None = Field(None, gt=0)
    """Most this target's probes may cost per day, USD (none: no limit). When the measured
    cost per probe at the configured interval would exceed it, the interval stretches."""


class DefaultsConfig(ProbeSettings):
    """The ``[defaults]`` table."""


class ProberConfig(_Strict):
    """The ``[prober]`` table: how the scheduler runs."""

    max_concurrency: int | None = Field(None, ge=1, le=100_000)
    """Probes in flight at once across all targets (shared evenly by the workers); none
    (default): no cap. Each target has at most one probe in flight anyway, so a cap only
    makes healthy targets wait behind hanging ones."""
    jitter_s: float = Field(2.0, ge=0, le=600)
    """Each start moves by a random 0..jitter_s seconds, never out of its own slot of the
    interval (starts stay evenly spread, the mean rate stays one per interval)."""
    workers: int | None = Field(None, ge=1, le=64)
    """Worker processes that probe (each its own event loop); none (default): one per 40
    probes a second (targets / interval), at most one per core."""
    daily_budget_usd: float | None = Field(None, gt=0)
    """Most all probes together may cost per day, USD (none: no limit). When the measured cost
    per probe at the current schedule would exceed it, every paid target's interval stretches
    by the same factor (free and unpriced targets keep theirs)."""


class HistoryConfig(_Strict):
    """The ``[history]`` table: how long history is kept (docs/uptime.md, "Storage")."""

    raw_retention_days: float = Field(30.0, ge=1, le=3650)
    """Days raw probe rows are kept (they are rolled up before they are deleted)."""
    rollup_retention_days: float = Field(365.0, ge=1, le=3650)
    """Days per-minute, per-hour and per-day rollups, incidents and monitor gaps are kept."""


class DashboardConfig(_Strict):
    """The ``[dashboard]`` table."""

    window_s: float = Field(3600.0, gt=0)
    """Time window of the dashboard's percentiles, error rate and cost."""
    refresh_s: float = Field(1.0, ge=1.0, le=60)
    """Seconds between dashboard refreshes (at most once a second)."""


_SETTING_NAMES = tuple(ProbeSettings.model_fields)


class TargetConfig(_Strict):
    """One ``[[targets]]`` entry: a model at a provider, probed on a schedule."""

    name: str = Field(min_length=1, max_length=64)
    """Unique name shown in the UI and the CSV."""
    provider: str
    """A known provider name (see ``inferwatch check-config --providers``) or openai-compatible."""
    model: str = Field(min_length=1)
    """Model id sent in the request."""
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the API key, read at run time; omit for keyless servers."""
    base_url: str | None = Field(None, pattern=r"^https?://")
    """API base URL; optional for known providers."""
    deployment: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9._\-]+$")
    """Azure OpenAI deployment name, the ``{deployment}`` of
    ``{base_url}/openai/deployments/{deployment}/chat/completions``; required for provider
    ``azure`` (``model`` then names the deployed model, for pricing)."""
    api_version: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")
    """Azure OpenAI ``api-version`` query parameter (``YYYY-MM-DD`` or
    ``YYYY-MM-DD-preview``); required for provider ``azure``. Use a version that supports
    ``stream_options.include_usage`` or usage is not reported."""
    group: str | None = None
    """Targets with the same group (a primary and its fallbacks) are shown together."""
    enabled: bool = True
    """Set false to keep a target in the file without probing it."""
    input_usd_per_mtok: float | None = Field(None, ge=0)
    """Price override: uncached input, USD per million tokens. Each override replaces only its
    own bucket's rate; the others still come from genai-prices when it knows the model (see
    ``probes.pricing``). Without price data (self-hosted, compatible) set input and output."""
    cache_read_usd_per_mtok: float | None = Field(None, ge=0)
    """Price override: cached input reads, USD per million tokens (default: the snapshot's
    rate, else the input rate)."""
    cache_write_usd_per_mtok: float | None = Field(None, ge=0)
    """Price override: cache writes, USD per million tokens (default: the snapshot's rate,
    else the input rate)."""
    output_usd_per_mtok: float | None = Field(None, ge=0)
    """Price override: output (reasoning included), USD per million tokens."""
    # Per-target overrides of [defaults]; None means "use the default".
    interval_s: float | None = Field(None, gt=0, le=86400)
    timeout_s: float | None = Field(None, gt=0, le=3600)
    first_token_timeout_s: float | None = Field(None, gt=0, le=3600)
    stall_timeout_s: float | None = Field(None, gt=0, le=3600)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    prompt: str | None = Field(None, min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    down_after_failures: int | None = Field(None, ge=1, le=100)
    up_after_successes: int | None = Field(None, ge=1, le=100)
    ttft_slo_ms: float | None = Field(None, gt=0)
    slo_window_probes: int | None = Field(None, ge=5, le=1000)
    degraded_error_rate: float | None = Field(None, gt=0, le=1)
    error_rate_window_probes: int | None = Field(None, ge=2, le=1000)
    rate_limited_state: Literal["degraded", "down"] | None = None
    daily_budget_usd: float | None = Field(None, gt=0)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            hint = _did_you_mean(value, PROVIDERS)
            raise ValueError(f"unknown provider {value!r}{hint}; known: {', '.join(PROVIDERS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        info = PROVIDERS[self.provider]
        if info.base_url is None and self.base_url is None:
            raise ValueError(f"provider {self.provider!r} needs base_url")
        for key in ("deployment", "api_version"):
            needed = key in info.required_keys
            if needed and getattr(self, key) is None:
                raise ValueError(f"provider {self.provider!r} needs {key}")
            if not needed and getattr(self, key) is not None:
                users = [p.name for p in PROVIDERS.values() if key in p.required_keys]
                raise ValueError(f"{key} is used only by provider {' / '.join(users)}")
        for key in (
            "input_usd_per_mtok",
            "cache_read_usd_per_mtok",
            "cache_write_usd_per_mtok",
            "output_usd_per_mtok",
        ):
            value = getattr(self, key)
            if value is not None and value > _MAX_PLAUSIBLE_USD_PER_MTOK:
                raise ValueError(
                    f"{key} = {value} is above {_MAX_PLAUSIBLE_USD_PER_MTOK:g} USD per million "
                    "tokens; prices are USD per MILLION tokens (per 1K? multiply by 1000)"
                )
        priced = [k for k in _PRICE_KEYS if getattr(self, k) is not None]
        if PROVIDERS[self.provider].prices_id is None and priced:
            missing = [
                k for k in ("input_usd_per_mtok", "output_usd_per_mtok") if getattr(self, k) is None
            ]
            if missing:
                raise ValueError(
                    f"provider {self.provider!r} has no price data, so a partial price override "
                    f"cannot be completed: set {' and '.join(missing)} too (0 is allowed)"
                )
        return self


_PRICE_KEYS = (
    "input_usd_per_mtok",
    "cache_read_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "output_usd_per_mtok",
)


class FeatureConfig(_Strict):
    """One ``[[features]]`` entry: a feature a team ships, described by its typical request.

    ``inferwatch cost`` projects its cost per request, day and 30-day month, its latency and
    its rate-limit fit onto every target (or the ones listed).
    """

    name: str = Field(min_length=1, max_length=64)
    """Unique name, shown in projections and chosen with ``inferwatch cost --feature``."""
    input_tokens: int = Field(ge=1, le=10_000_000)
    """Prompt tokens per request, cached ones included (the inclusive total of metrics.md §4)."""
    output_tokens: int = Field(ge=1, le=1_000_000)
    """Generated tokens per request, reasoning included."""
    cached_input_tokens: int = Field(0, ge=0, le=10_000_000)
    """Part of ``input_tokens`` expected to be read from the provider's prompt cache."""
    requests_per_day: float = Field(gt=0, le=1e12)
    """Expected volume, requests per day (spread evenly: peaks are not modelled)."""
    targets: tuple[str, ...] = ()
    """Names of the targets to project onto; empty means every enabled target."""

    @model_validator(mode="after")
    def _cached_within_input(self) -> FeatureConfig:
        if self.cached_input_tokens > self.input_tokens:
            raise ValueError(
                f"cached_input_tokens ({self.cached_input_tokens}) cannot exceed input_tokens "
                f"({self.input_tokens}): input_tokens counts cached tokens too"
            )
        return self


class Config(_Strict):
    """The whole configuration file."""

    defaults: DefaultsConfig = DefaultsConfig()
    prober: ProberConfig = ProberConfig()
    dashboard: DashboardConfig = DashboardConfig()
    history: HistoryConfig = HistoryConfig()
    targets: tuple[TargetConfig, ...] = ()
    features: tuple[FeatureConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"duplicate target name {target.name!r}")
            seen.add(target.name)
        features: set[str] = set()
        for feature in self.features:
            if feature.name in features:
                raise ValueError(f"duplicate feature name {feature.name!r}")
            features.add(feature.name)
            for name in feature.targets:
                if name not in seen:
                    hint = _did_you_mean(name, seen)
                    raise ValueError(
                        f"feature {feature.name!r} names unknown target {name!r}{hint}"
                    )
        return self

    def resolved(self) -> list[ResolvedTarget]:
        """Return every enabled target with its defaults applied and its provider looked up."""
        return [resolve_target(t, self.defaults) for t in self.targets if t.enabled]


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A target with defaults applied: everything a probe needs except the key's value.

    Attributes:
        config: the target as written.
        settings: effective probe settings (target overrides over ``[defaults]``).
        base_url: effective base URL, without a trailing slash.
        dialect: key into ``probes.dialects.DIALECTS``.
        prices_id: genai-prices provider id, or None.
    """

    config: TargetConfig
    settings: ProbeSettings
    base_url: str
    dialect: str
    prices_id: str | None

    @property
    def name(self) -> str:
        """The target's unique name."""
        return self.config.name

    def api_key(self) -> str | None:
        """Read the API key from the environment now; ``None`` when no variable is named."""
        env = self.config.api_key_env
        return os.environ.get(env) if env else None

    def is_configured(self) -> bool:
        """False when the target names a key variable that is unset or empty."""
        env = self.config.api_key_env
        return env is None or bool(os.environ.get(env))


def resolve_target(target: TargetConfig, defaults: ProbeSettings) -> ResolvedTarget:
    """Apply ``defaults`` under ``target``'s own settings and look up its provider."""
    overrides = {k: getattr(target, k) for k in _SETTING_NAMES if getattr(target, k) is not None}
    settings = defaults.model_copy(update=overrides)
    info = PROVIDERS[target.provider]
    base = target.base_url or info.base_url or ""
    return ResolvedTarget(
        config=target,
        settings=ProbeSettings(**settings.model_dump()),
        base_url=base.rstrip("/"),
        dialect=info.dialect,
        prices_id=info.prices_id,
    )


class ConfigError(Exception):
    """A config file that cannot be used. ``str()`` is a user-facing message, one problem a line.

    Attributes:
        problems: each problem as ``path:line: field: message``.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _allowed_keys(loc: tuple[str | int, ...]) -> Iterable[str]:
    model: type[BaseModel] = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ()
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is None:
            return ()
        model = nested
    return model.model_fields


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort line number (1-based) of the TOML key at ``loc``."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if loc and loc[0] in ("targets", "features", "defaults", "prober", "dashboard", "history"):
        array = loc[0] in ("targets", "features")
        header = re.compile(rf"^\s*\[\[\s*{loc[0]}\s*\]\]" if array else rf"^\s*\[\s*{loc[0]}\s*\]")
        starts = [i for i, line in enumerate(lines) if header.match(line)]
        index = loc[1] if array and len(loc) > 1 and isinstance(loc[1], int) else 0
        if index < len(starts):
            start = starts[index]
            nxt = [i for i, line in enumerate(lines) if i > start and line.lstrip().startswith("[")]
            end = nxt[0] if nxt else len(lines)
            key = next((p for p in reversed(loc) if isinstance(p, str) and p != loc[0]), None)
            if key is None:
                return start + 1
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            for i in range(start, end):
                if pattern.match(lines[i]):
                    return i + 1
            return start + 1
    if loc and isinstance(loc[0], str):
        pattern = re.compile(rf"^\s*{re.escape(loc[0])}\s*=")
        for i, line in enumerate(lines):
            if pattern.match(line):
                return i + 1
    return None


def _format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse TOML text into a :class:`Config`.

    Args:
        text: the TOML document.
        source: file name used in messages.

    Raises:
        ConfigError: on a TOML syntax error or any validation problem; one message per problem,
            each with the line, the field and, for unknown keys, the nearest valid key.
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: TOML syntax error: {exc}"]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            line = _line_of(text, loc)
            where = f"{source}:{line}" if line else source
            if err["type"] == "extra_forbidden":
                key = str(loc[-1])
                hint = _did_you_mean(key, _allowed_keys(loc[:-1]))
                message = f"unknown key {key!r}{hint}"
            else:
                message = err["msg"].removeprefix("Value error, ")
                if (
                    "input" in err
                    and err["type"] != "value_error"
                    and not isinstance(err["input"], dict | list)
                ):
                    message += f" (got {err['input']!r})"
            problems.append(f"{where}: {_format_loc(loc)}: {message}")
        raise ConfigError(problems) from None


def load_config(path: Path) -> Config:
    """Read and validate the config file at ``path``.

    Raises:
        ConfigError: when the file is missing, unreadable, not UTF-8 TOML, or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config: {exc}"]) from None
    return parse_config(text, str(path))

"""Configuration: a TOML file read with :mod:`tomllib` into strict pydantic models.

Unknown keys are rejected with a "did you mean" hint, and every error names the file, the line
and the field (``config.toml:14: targets[1].intervl_s: unknown key; did you mean 'interval_s'?``).
API keys are never in the file: a target names the environment variable that holds its key.
"""

from __future__ import annotations

import base64
import difflib
import fnmatch
import ipaddress
import os
import re
import socket
import tomllib
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probes.providers import PROVIDERS
from probes.question_config import CacheCheckConfig, StatusConfig, WorkloadConfig
from probes.text import is_printable, printable

DEFAULT_PROMPT = "Reply with one short sentence about the sea."
#: Smallest interval or timeout, seconds (a config with 1e-300 would probe back to back).
MIN_SECONDS = 0.01
#: Caps of one response when not configured; both grow with max_tokens (1 KiB and 4 events
#: per token are several times what any API sends per token).
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_STREAM_EVENTS = 10_000
#: Longest dashboard window: a year (window_s = 1e23 would make every query scan for ever).
MAX_WINDOW_S = 366 * 86400.0
_MAX_PLAUSIBLE_USD_PER_MTOK = 1000.0  # 0.001 USD a token: a unit error (docs/field-cases.md FC-11)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeSettings(_Strict):
    """Settings a target may override; ``[defaults]`` gives the values for all targets."""

    interval_s: float = Field(30.0, ge=MIN_SECONDS, le=86400)
    """Seconds between two probes of one target (below 1 s against a remote host warns)."""
    timeout_s: float = Field(30.0, ge=MIN_SECONDS, le=3600)
    """Total deadline of one probe, from request to terminal marker: the probe's duration
    cap."""
    first_token_timeout_s: float | None = Field(None, ge=MIN_SECONDS, le=3600)
    """Give up when no token arrived this long after the request (default: timeout_s)."""
    stall_timeout_s: float = Field(15.0, ge=MIN_SECONDS, le=3600)
    """Give up when no token arrived for this long after the first one (keep-alives ignored)."""
    max_tokens: int = Field(64, ge=1, le=32768)
    """Output budget of the canary request."""
    max_response_bytes: int | None = Field(None, ge=1024, le=1 << 30)
    """Cap on one response body, bytes on the wire; past it the probe ends as ``too_large``
    and the connection is closed (default: 4 MiB, or 1 KiB per max_tokens when larger)."""
    max_stream_events: int | None = Field(None, ge=10, le=10_000_000)
    """Cap on the events of one stream, keep-alives included; past it the probe ends as
    ``too_large`` (default: 10,000, or 4 per max_tokens when larger)."""
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

    @property
    def response_bytes_cap(self) -> int:
        """The effective ``max_response_bytes``: as set, else max(4 MiB, 1 KiB × max_tokens)."""
        if self.max_response_bytes is not None:
            return self.max_response_bytes
        return max(DEFAULT_MAX_RESPONSE_BYTES, 1024 * self.max_tokens)

    @property
    def stream_events_cap(self) -> int:
        """The effective ``max_stream_events``: as set, else max(10,000, 4 × max_tokens)."""
        if self.max_stream_events is not None:
            return self.max_stream_events
        return max(DEFAULT_MAX_STREAM_EVENTS, 4 * self.max_tokens)


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
    """Worker processes that probe (each its own event loop); none (default): one per 20
    probes a second (targets / interval), at most one per core."""
    daily_budget_usd: float | None = Field(None, gt=0)
    """Most all probes together may cost per day, USD (none: no limit). When the measured cost
    per probe at the current schedule would exceed it, every paid target's interval stretches
    by the same factor (free and unpriced targets keep theirs)."""
    vantage: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")
    """Where this prober probes from (``eu-office``, ``aws-us-east-1``): recorded on every probe
    row and every metric, so Prometheus can tell "down from here" from "down everywhere".
    Default: the host name."""

    def vantage_name(self) -> str:
        """The vantage: the configured one, else this machine's host name."""
        return self.vantage or socket.gethostname() or "unknown"


class HistoryConfig(_Strict):
    """The ``[history]`` table: how long history is kept (docs/uptime.md, "Storage")."""

    raw_retention_days: float = Field(30.0, ge=1, le=3650)
    """Days raw probe rows are kept (they are rolled up before they are deleted)."""
    rollup_retention_days: float = Field(365.0, ge=1, le=3650)
    """Days per-minute, per-hour and per-day rollups, incidents and monitor gaps are kept."""


class DashboardConfig(_Strict):
    """The ``[dashboard]`` table."""

    window_s: float = Field(3600.0, ge=60, le=MAX_WINDOW_S)
    """Time window of the dashboard's percentiles, error rate and cost (60 s to 366 days)."""
    refresh_s: float = Field(1.0, ge=1.0, le=60)
    """Seconds between dashboard refreshes (at most once a second)."""


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NAME = r"^[A-Za-z0-9._\-]+$"


class MetricsConfig(_Strict):
    """The ``[metrics]`` table: Prometheus ``/metrics`` (docs/prometheus-metrics.md)."""

    listen: str | None = Field(None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]*):\d{1,5}$")
    """``HOST:PORT`` to serve ``/metrics`` on (``127.0.0.1:9464``; ``:9464`` for every
    interface); unset: no metrics server. ``inferwatch run --metrics`` overrides it."""


class AlertsConfig(_Strict):
    """The ``[alerts]`` table: when notifications are sent (docs/alerts.md)."""

    send_resolved: bool = True
    """Send a notice when an alert resolves (the target is up again, the monitor sees again)."""
    reminder_interval_s: float = Field(0.0, ge=0, le=7 * 86400)
    """Repeat a firing alert this often while it stays firing, seconds; 0 (default) never."""
    degraded: bool = False
    """Also alert (warning) when a target is degraded, not only when it is down."""
    monitor_blind: bool = True
    """Alert when the monitor itself loses its network (and again when it sees)."""
    maintenance_notices: bool = True
    """Send one notice when a maintenance window starts and one when it ends."""
    retry_max_attempts: int = Field(8, ge=1, le=100)
    """Delivery attempts per notification and channel before it is recorded as failed."""
    retry_backoff_s: float = Field(5.0, gt=0, le=3600)
    """Wait before the first retry, seconds; doubles after each failure (at most 15 min)."""
    alertmanager_resend_s: float = Field(60.0, ge=1, le=3600)
    """Firing alerts are re-posted to Alertmanager this often (it expects clients to re-send;
    ``endsAt`` is 4 periods ahead so a stopped prober's alerts resolve on their own)."""

    @field_validator("reminder_interval_s")
    @classmethod
    def _reminder_floor(cls, value: float) -> float:
        if 0 < value < 60:
            raise ValueError("reminder_interval_s must be 0 (off) or at least 60 seconds")
        return value


ChannelType = Literal["webhook", "slack", "alertmanager", "command", "bell"]


class ChannelConfig(_Strict):
    """One ``[[channels]]`` entry: where notifications go. Secrets never appear in the file:
    a webhook URL that carries a token and an HMAC key are read from environment variables."""

    name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    """Unique name, used by ``[[routes]]`` and ``inferwatch notify --test NAME``."""
    type: ChannelType
    """``webhook`` (documented JSON body), ``slack`` (Slack-compatible incoming webhook),
    ``alertmanager`` (its v2 API), ``command`` (runs a program) or ``bell`` (the dashboard's
    terminal bell)."""
    url: str | None = Field(None, pattern=r"^https?://")
    """Receiver URL without secrets (an Alertmanager, a local webhook); shown as scheme and host."""
    url_env: str | None = Field(None, pattern=_ENV_NAME)
    """Environment variable holding the URL, for URLs that carry a token (Slack's always do)."""
    hmac_key_env: str | None = Field(None, pattern=_ENV_NAME)
    """webhook only: environment variable holding a key; the body is then signed with
    HMAC-SHA256 in the ``X-Inferwatch-Signature-256`` header."""
    command: tuple[str, ...] = ()
    """command only: the program and its arguments (no shell); the event is in ``INFERWATCH_*``
    environment variables."""
    timeout_s: float = Field(10.0, gt=0, le=300)
    """Give up on one delivery attempt after this long (it is then retried)."""
    send_resolved: bool | None = None
    """Override ``[alerts] send_resolved`` for this channel."""

    @model_validator(mode="after")
    def _check(self) -> ChannelConfig:
        http = self.type in ("webhook", "slack", "alertmanager")
        if http and (self.url is None) == (self.url_env is None):
            raise ValueError(f"channel type {self.type!r} needs exactly one of url or url_env")
        if self.type == "slack" and self.url is not None:
            raise ValueError("a Slack webhook URL is a secret: put it in url_env, not url")
        if not http and (self.url or self.url_env):
            raise ValueError(f"channel type {self.type!r} takes no url")
        if self.hmac_key_env and self.type != "webhook":
            raise ValueError("hmac_key_env is used only by type 'webhook'")
        if self.type == "command" and not self.command:
            raise ValueError("channel type 'command' needs command = [\"program\", ...]")
        if self.command and self.type != "command":
            raise ValueError("command is used only by type 'command'")
        return self


AlertKindName = Literal["down", "degraded", "blind", "maintenance"]


class RouteConfig(_Strict):
    """One ``[[routes]]`` entry: which alerts go to which channels. An alert goes to every
    channel of every route that matches it; without any route, every alert goes everywhere."""

    targets: tuple[str, ...] = ()
    """Target names or shell patterns (``chat-*``); with ``groups`` empty and this empty, the
    route matches every alert (monitor blind and maintenance notices included)."""
    groups: tuple[str, ...] = ()
    """Group names or patterns: the group's one alert (and its members') match."""
    channels: tuple[str, ...] = Field(min_length=1)
    """Channel names to deliver to."""
    events: tuple[AlertKindName, ...] = ()
    """Only these alert kinds (``down``, ``degraded``, ``blind``, ``maintenance``); empty: all."""


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class MaintenanceConfig(_Strict):
    """One ``[[maintenance]]`` window: the listed targets are recorded as in maintenance and no
    alert about them fires. One-off (``start`` a date and time) or recurring (``start`` a time
    of day, every day or on ``days``), in an IANA ``timezone`` (DST handled by zoneinfo)."""

    name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    """Unique name, shown in notices and on the dashboard."""
    targets: tuple[str, ...] = ()
    """Target names or patterns; with ``groups`` also empty: every target."""
    groups: tuple[str, ...] = ()
    """Group names or patterns whose members are in maintenance."""
    start: datetime | time
    """One-off: a local date and time (``2026-04-01T02:00:00``, in ``timezone``). Recurring: a
    local time of day (``02:00:00``); a time that a DST change skips starts at the same
    elapsed moment after midnight's offset (02:30 on a spring-forward day is 03:30)."""
    duration_s: float = Field(gt=0, le=7 * 86400)
    """Length of the window in elapsed seconds."""
    days: tuple[Weekday, ...] = ()
    """Recurring windows only: the weekdays it starts on; empty: every day."""
    timezone: str = "UTC"
    """IANA time zone of ``start`` (``Europe/Berlin``, ``America/New_York``)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> MaintenanceConfig:
        if isinstance(self.start, datetime) and self.days:
            raise ValueError("days is for recurring windows; a one-off window has a date")
        if isinstance(self.start, time) and not self.days and self.duration_s > 86400:
            raise ValueError("a daily window lasts at most 86400 s")
        return self


_SETTING_NAMES = tuple(ProbeSettings.model_fields)


class TargetConfig(_Strict):
    """One ``[[targets]]`` entry: a model at a provider, probed on a schedule."""

    name: str = Field(min_length=1, max_length=64)
    """Unique name shown in the UI and the CSV (printable text: no control characters)."""
    provider: str
    """A known provider name (see ``inferwatch check-config --providers``) or openai-compatible."""
    model: str = Field(min_length=1, max_length=200)
    """Model id sent in the request."""
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the API key, read at run time; omit for keyless servers."""
    base_url: str | None = None
    """API base URL (``http://`` or ``https://``, a host, an optional port and path);
    optional for known providers. Credentials in it are never printed."""
    deployment: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9._\-]+$")
    """Azure OpenAI deployment name, the ``{deployment}`` of
    ``{base_url}/openai/deployments/{deployment}/chat/completions``; required for provider
    ``azure`` (``model`` then names the deployed model, for pricing)."""
    api_version: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")
    """Azure OpenAI ``api-version`` query parameter (``YYYY-MM-DD`` or
    ``YYYY-MM-DD-preview``); required for provider ``azure``. Use a version that supports
    ``stream_options.include_usage`` or usage is not reported."""
    group: str | None = Field(None, min_length=1, max_length=64)
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
    interval_s: float | None = Field(None, ge=MIN_SECONDS, le=86400)
    timeout_s: float | None = Field(None, ge=MIN_SECONDS, le=3600)
    first_token_timeout_s: float | None = Field(None, ge=MIN_SECONDS, le=3600)
    stall_timeout_s: float | None = Field(None, ge=MIN_SECONDS, le=3600)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_response_bytes: int | None = Field(None, ge=1024, le=1 << 30)
    max_stream_events: int | None = Field(None, ge=10, le=10_000_000)
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
    # Issue #13 (docs/questions.md): official status, cold starts, prompt-caching check.
    status_url: str | None = Field(None, pattern=r"^(https?://.+|off)$")
    """The official status page's machine-readable URL for this target (default: its
    provider's, when known); "off" to poll none."""
    status_component: str | None = Field(None, min_length=1)
    """The status page component (or Google Cloud product) that stands for this target."""
    scaledown_window_s: float | None = Field(None, gt=0, le=86400)
    """The target scales to zero after this many idle seconds (Modal's scaledown_window, a
    serverless idle timeout): a probe after a longer idle is marked cold."""
    cold_interval_s: float | None = Field(None, gt=0, le=7 * 86400)
    """An extra schedule that probes the target this often as kind cold_start; it must exceed
    scaledown_window_s, and finds the target cold only if nothing else used it in between."""
    cache_check: CacheCheckConfig | None = None
    """The opt-in prompt-caching check ([targets.cache_check])."""

    @field_validator("name", "model", "group")
    @classmethod
    def _printable_text(cls, value: str | None) -> str | None:
        if value is not None:
            check_label(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _usable_url(cls, value: str | None) -> str | None:
        if value is not None:
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

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
        if self.cold_interval_s is not None and (
            self.scaledown_window_s is None or self.cold_interval_s <= self.scaledown_window_s
        ):
            raise ValueError(
                "cold_interval_s must be longer than scaledown_window_s (set both): a cold "
                "schedule only finds the target cold after the scale-down window has passed"
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

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        check_label(value)
        return value

    input_tokens: int = Field(ge=1, le=10_000_000)
    """Prompt tokens per request, cached ones included (inclusive, as docs/metrics.md §4)."""
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
    metrics: MetricsConfig = MetricsConfig()
    alerts: AlertsConfig = AlertsConfig()
    targets: tuple[TargetConfig, ...] = ()
    features: tuple[FeatureConfig, ...] = ()
    status: StatusConfig = StatusConfig()
    workloads: tuple[WorkloadConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    maintenance: tuple[MaintenanceConfig, ...] = ()

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
        workloads: set[str] = set()
        for workload in self.workloads:
            if workload.name in workloads:
                raise ValueError(f"duplicate workload name {workload.name!r}")
            workloads.add(workload.name)
            for name in workload.targets:
                if name not in seen:
                    hint = _did_you_mean(name, seen)
                    raise ValueError(
                        f"workload {workload.name!r} names unknown target {name!r}{hint}"
                    )
        for provider in self.status.pages:
            if provider not in PROVIDERS:
                hint = _did_you_mean(provider, PROVIDERS)
                raise ValueError(f"[status.pages] names unknown provider {provider!r}{hint}")
        channels: set[str] = set()
        for channel in self.channels:
            if channel.name in channels:
                raise ValueError(f"duplicate channel name {channel.name!r}")
            channels.add(channel.name)
        for i, route in enumerate(self.routes):
            for name in route.channels:
                if name not in channels:
                    hint = _did_you_mean(name, channels)
                    raise ValueError(f"routes[{i}] names unknown channel {name!r}{hint}")
        windows: set[str] = set()
        for window in self.maintenance:
            if window.name in windows:
                raise ValueError(f"duplicate maintenance window name {window.name!r}")
            windows.add(window.name)
        return self

    def group_members(self) -> dict[str, list[str]]:
        """Group name -> its enabled members' names, in config order (the first is the primary)."""
        out: dict[str, list[str]] = {}
        for t in self.targets:
            if t.enabled and t.group:
                out.setdefault(t.group, []).append(t.name)
        return out

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


def check_label(value: str) -> None:
    """Reject a name, model or group that is not printable text.

    Raises:
        ValueError: for control characters (NUL, line breaks, ESC), bidi overrides or
            isolates (which reorder what a terminal shows), or only whitespace.
    """
    if not is_printable(value):
        raise ValueError(
            f"must be printable text: '{printable(value)}' holds a control character, "
            "line break or bidi override"
        )
    if not value.strip():
        raise ValueError("must not be blank (only spaces)")


_HOST = re.compile(r"^[\w.\-]+$")


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as a base URL, or None. Never quotes the URL (it may
    carry credentials).

    Checks: printable with no whitespace (a trailing newline from a copy-paste), scheme
    ``http``/``https``, a host (a name, an IPv4 address or a bracketed IPv6 address, no
    ``%`` escapes), a port in 1..65535, no ``#fragment`` (it would swallow the API path).
    """
    if not is_printable(url) or any(ch.isspace() for ch in url):
        return "contains a space, line break or control character"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "has an invalid IPv6 host: an unclosed '[' or not an address (write [::1])"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    host = parts.hostname or ""
    if not host:
        return "has no host (expected http://HOST[:PORT]/...)"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has an invalid IPv6 address in [...]"
    elif not _HOST.match(host):
        return "has an invalid host name (letters, digits, '.', '-' and '_' only, no % escapes)"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port (1-65535)"
    if port == 0:
        return "has an invalid port (1-65535)"
    if parts.fragment or url.endswith("#"):
        return "must not have a #fragment"
    return None


def display_url(url: str) -> str:
    """``url`` as it may be printed: ``user:password@`` replaced by ``***@``, printable."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return printable(re.sub(r"//[^/@]*@", "//***@", url))
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    return printable(urllib.parse.urlunsplit(parts))


def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials embedded in ``url``, for redaction: the password (or, without one, the
    user name, as in ``https://TOKEN@host``), raw and percent-decoded, and the
    ``Authorization: Basic`` value httpx makes of them."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ()
    if parts.username is None and parts.password is None:
        return ()
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    secret = (parts.password, password) if parts.password else (parts.username or "", user)
    found = {*secret, basic}
    return tuple(sorted(v for v in found if len(v) >= 4))


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_problem(value: str) -> str | None:
    """Why an API key's value cannot go into an HTTP header, or None. Never quotes the value.

    An HTTP header value is visible ASCII; a key pasted with its line break (``\\n``,
    ``\\r\\n``) or with a control character would otherwise fail inside httpx with a message
    that quotes the whole key.
    """
    if any(ch in "\r\n" for ch in value):
        return "holds a line break (CR or LF)"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        return "holds a control character"
    if value != value.strip():
        return "starts or ends with a space"
    if not value.isascii() or any(ch.isspace() for ch in value):
        return "holds a space or a non-ASCII character"
    return None


def config_warnings(config: Config) -> list[str]:
    """Things in a valid config that are probably mistakes, one sentence each (printable).

    * a target whose key would travel over plain ``http://`` to a host that is not loopback
      (anyone on the path can read it);
    * an interval below one second against a host that is not loopback (a paid API probed
      that often costs money and may get the key rate-limited).
    """
    out: list[str] = []
    for t in config.resolved():
        parts = urllib.parse.urlsplit(t.base_url)
        host = parts.hostname or ""
        local = is_loopback_host(host)
        name = printable(t.name)
        if t.config.api_key_env and parts.scheme == "http" and not local:
            out.append(
                f"{name}: the key in ${t.config.api_key_env} would travel unencrypted over "
                f"http:// to {printable(host)}; use https://"
            )
        if t.settings.interval_s < 1.0 and not local:
            out.append(
                f"{name}: interval_s = {t.settings.interval_s:g} probes {printable(host)} "
                "more than once a second (a remote API: cost and rate limits)"
            )
    return out


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


_ARRAYS = ("targets", "features", "workloads", "channels", "routes", "maintenance")
_TABLES = ("defaults", "prober", "dashboard", "history", "status", "metrics", "alerts")


def patterns_match(patterns: Iterable[str], name: str) -> bool:
    """Whether ``name`` matches any of the shell patterns (``chat-*``) or equals one."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort line number (1-based) of the TOML key at ``loc``."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if loc and loc[0] in _TABLES + _ARRAYS:
        array = loc[0] in _ARRAYS
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
        raise ConfigError([f"{source}: TOML syntax error: {printable(str(exc))}"]) from None
    except RecursionError:
        raise ConfigError([_too_deep(text, source)]) from None
    try:
        return Config.model_validate(data)
    except RecursionError:
        raise ConfigError([_too_deep(text, source)]) from None
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
                    message += f" (got {printable(repr(err['input']))})"
            problems.append(printable(f"{where}: {_format_loc(loc)}: {message}"))
        raise ConfigError(problems) from None


_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_\-.\"']+)\s*=")


def _too_deep(text: str, source: str) -> str:
    """The message for a value nested too deeply to parse, at the line where the nesting
    passes 32 levels (brackets counted outside strings and comments, a best effort)."""
    depth = 0
    key = "(value)"
    for number, line in enumerate(text.splitlines(), 1):
        match = _KEY_LINE.match(line)
        if match and depth == 0:
            key = match.group(1).strip("\"'")
        quote = ""
        for ch in line:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[{":
                depth += 1
                if depth > 32:
                    return f"{source}:{number}: {key}: value nested too deeply (over 32 levels)"
            elif ch in "]}":
                depth = max(depth - 1, 0)
    return f"{source}: value nested too deeply to parse"


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

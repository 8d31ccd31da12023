"""Config for the questions of issue #13: official status pages, prompt-caching checks,
long-prompt workloads and the deliberately cold schedule (docs/questions.md).

These models are referenced from :mod:`probes.config` (``Config.status``,
``Config.workloads``, ``TargetConfig.cache_check`` ...) and validated the same strict way:
unknown keys are rejected, every quantity carries its unit in its name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StatusFormat = Literal["statuspage", "betterstack", "gcloud"]
"""How a status page is read: Atlassian Statuspage v2 ``/api/v2/summary.json`` (incident.io
pages serve the same API), Better Stack ``/index.json``, Google Cloud ``incidents.json``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusPageConfig(_Strict):
    """One ``[status.pages.<provider>]`` table: where a provider's official status is read."""

    url: str | None = Field(None, pattern=r"^https?://")
    """The page's machine-readable URL (``.../api/v2/summary.json``, ``.../index.json`` or
    ``.../incidents.json``); omit to keep the built-in one."""
    component: str | None = Field(None, min_length=1)
    """The component (Statuspage), resource (Better Stack) or product (Google Cloud) whose
    status counts; omit for the page-wide indicator."""
    format: StatusFormat | None = None
    """How to read the URL; omit to infer it from the path."""


class StatusConfig(_Strict):
    """The ``[status]`` table: official status pages, polled off the probing path."""

    enabled: bool = True
    """Poll the providers' official status pages (known providers are mapped by default)."""
    interval_s: float = Field(300.0, ge=30, le=86400)
    """Seconds between two reads of one status page (a slow schedule of its own)."""
    timeout_s: float = Field(10.0, gt=0, le=120)
    """Deadline of one status page read; a page not read in time is "official: unknown"."""
    pages: dict[str, StatusPageConfig] = Field(default_factory=dict)
    """Per provider name: a status page overriding (or adding to) the built-in mapping."""


class CacheCheckConfig(_Strict):
    """A target's ``[targets.cache_check]`` table: the opt-in prompt-caching check."""

    enabled: bool = True
    """Run the check (the table's presence opts in; set false to keep it without running)."""
    interval_s: float = Field(3600.0, ge=60, le=7 * 86400)
    """Seconds between two checks (each check is two requests with a long prompt: budget it)."""
    prefix_tokens: int | None = Field(None, ge=16, le=200_000)
    """Size of the stable prefix in tokens (default: the provider's documented minimum for
    caching, see docs/questions.md); the provider's reported input size is what counts."""
    gap_s: float = Field(2.0, ge=0, le=240)
    """Seconds between the two requests (well inside every provider's cache lifetime)."""
    max_tokens: int = Field(8, ge=1, le=1024)
    """Output budget of each request (small: the check is about the input side)."""


class WorkloadConfig(_Strict):
    """One ``[[workloads]]`` entry: a longer-prompt probe on its own schedule, so that prefill
    (TTFT growing with the prompt) is measured and feature projections can use it."""

    name: str = Field(min_length=1, max_length=64)
    """Unique name, stored in each probe's ``workload`` field."""
    input_tokens: int = Field(ge=16, le=2_000_000)
    """Target prompt size in tokens, as the provider reports it (the prompt generator adjusts
    itself to the reported ``input_tokens``)."""
    max_tokens: int = Field(16, ge=1, le=32768)
    """Output budget of each request."""
    interval_s: float = Field(900.0, gt=0, le=7 * 86400)
    """Seconds between two probes of this workload on one target."""
    targets: tuple[str, ...] = ()
    """Names of the targets to run it on; empty means every enabled target."""

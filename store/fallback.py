"""Can the fallback take the load? Per group, would the fallback absorb the primary's traffic
if the primary went down now, and which limit breaks first at 1x and 10x.

A group is a primary (its first member in config order) and its fallbacks. The traffic that
moves is the ``[[features]]`` volume of the primary: the features that name it in
``targets``, or, when none does, the features without ``targets`` (they are projected onto
every target, so they are assumed to run on this group; the answer says so). The capacity is
the fallback's rate-limit headroom as its probes saw it (``ratelimit_remaining_*`` and their
resets, turned into per-minute capacity by :func:`store.costs.per_minute_capacity`): what
is left in the provider's window, which already counts other traffic on the same key.

Pure functions take plain values (hand-computed tests); :func:`fallback_report` reads the
database. Limits: volumes are spread evenly over the day (peaks are not modelled), headroom
headers are a snapshot of the provider's window, and a provider that sends none leaves the
answer unknown, never "fits".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from probes.config import Config, FeatureConfig
from probes.timestamps import iso
from store.costs import MINUTES_PER_DAY, SCALE_UP, Measured, measure_window

REQUESTS = "requests/min"
TOKENS = "tokens/min"


@dataclass(frozen=True, slots=True)
class FallbackFit:
    """Whether one fallback absorbs its primary's traffic.

    Attributes:
        group: group name.
        primary: the primary's target name.
        fallback: the fallback's target name.
        features: the features whose traffic moves.
        assumed: True when those are features without ``targets`` (assumed on this group).
        demand_rpm: the moving traffic, requests per minute (at 1x).
        demand_tpm: the moving traffic, tokens per minute (input + output, at 1x).
        rpm_capacity: the fallback's request headroom per minute, or None (not sent).
        tpm_capacity: the fallback's token headroom per minute, or None (not sent).
        fits: absorbs it at 1x; None when no limit is known.
        fits_at_10x: absorbs ten times it; None when no limit is known.
        breaks_first: the limit that fills first (``requests/min`` or ``tokens/min``), or None.
        max_multiplier: how many times the traffic fits before that limit is full, or None
            (no limit known, or no traffic).
        ratelimit_samples: the fallback's probes that carried headroom headers.
    """

    group: str
    primary: str
    fallback: str
    features: tuple[str, ...]
    assumed: bool
    demand_rpm: float
    demand_tpm: float
    rpm_capacity: float | None
    tpm_capacity: float | None
    fits: bool | None
    fits_at_10x: bool | None
    breaks_first: str | None
    max_multiplier: float | None
    ratelimit_samples: int = 0


def moving_features(
    primary: str, features: Sequence[FeatureConfig]
) -> tuple[list[FeatureConfig], bool]:
    """The features whose traffic is the primary's, and whether they are assumed (pure)."""
    named = [f for f in features if primary in f.targets]
    if named:
        return named, False
    return [f for f in features if not f.targets], True


def demand(features: Sequence[FeatureConfig]) -> tuple[float, float]:
    """Requests and tokens per minute of ``features``' volumes spread evenly over the day."""
    rpm = sum(f.requests_per_day for f in features) / MINUTES_PER_DAY
    tpm = sum(f.requests_per_day * (f.input_tokens + f.output_tokens) for f in features)
    return rpm, tpm / MINUTES_PER_DAY


def absorb(
    demand_rpm: float,
    demand_tpm: float,
    rpm_capacity: float | None,
    tpm_capacity: float | None,
) -> tuple[bool | None, bool | None, str | None, float | None]:
    """``(fits, fits_at_10x, breaks_first, max_multiplier)`` of a demand against per-minute
    capacities (pure). A limit with zero headroom and any demand does not fit at all."""
    shares: dict[str, float] = {}
    for name, need, capacity in (
        (REQUESTS, demand_rpm, rpm_capacity),
        (TOKENS, demand_tpm, tpm_capacity),
    ):
        if capacity is None:
            continue
        if capacity <= 0:
            shares[name] = float("inf") if need > 0 else 0.0
        else:
            shares[name] = need / capacity
    if not shares:
        return None, None, None, None
    first = max(shares, key=lambda k: shares[k])
    worst = shares[first]
    if worst == float("inf"):
        multiplier: float | None = 0.0
    else:
        multiplier = 1.0 / worst if worst > 0 else None
    return worst <= 1.0, worst * SCALE_UP <= 1.0, first, multiplier


def fallback_fits(
    group: str,
    members: Sequence[str],
    features: Sequence[FeatureConfig],
    measured: Mapping[str, Measured],
) -> list[FallbackFit]:
    """One :class:`FallbackFit` per fallback of a group (pure).

    Args:
        group: the group's name.
        members: its targets in config order; the first is the primary.
        features: every configured feature.
        measured: each member's measurements (its headroom is used).
    """
    if len(members) < 2:
        return []
    primary, fallbacks = members[0], members[1:]
    moving, assumed = moving_features(primary, features)
    rpm, tpm = demand(moving)
    out = []
    for name in fallbacks:
        m = measured.get(name, Measured())
        fits, fits10, first, multiplier = absorb(rpm, tpm, m.rpm_capacity, m.tpm_capacity)
        out.append(
            FallbackFit(
                group=group,
                primary=primary,
                fallback=name,
                features=tuple(f.name for f in moving),
                assumed=assumed,
                demand_rpm=rpm,
                demand_tpm=tpm,
                rpm_capacity=m.rpm_capacity,
                tpm_capacity=m.tpm_capacity,
                fits=fits,
                fits_at_10x=fits10,
                breaks_first=first,
                max_multiplier=multiplier,
                ratelimit_samples=m.ratelimit_samples,
            )
        )
    return out


def groups(config: Config) -> dict[str, list[str]]:
    """Group name → its enabled members in config order."""
    out: dict[str, list[str]] = {}
    for target in config.resolved():
        if target.config.group:
            out.setdefault(target.config.group, []).append(target.name)
    return out


def fallback_report(
    db: sqlite_utils.Database | None,
    config: Config,
    window_s: float,
    now: datetime | None = None,
) -> list[FallbackFit]:
    """Every group's fallbacks against its primary's traffic, from the window's headroom.

    Args:
        db: an open database, or None (then every capacity is unknown).
        config: groups and features.
        window_s: how far back headroom is taken, seconds.
        now: the current UTC time (injectable).
    """
    now = now or datetime.now(UTC)
    since, until = iso(now - timedelta(seconds=window_s)), iso(now)
    out = []
    for group, members in groups(config).items():
        measured = {
            name: measure_window(db, name, since, until) if db is not None else Measured()
            for name in members[1:]
        }
        out += fallback_fits(group, members, config.features, measured)
    return out


def _times(multiplier: float | None) -> str:
    if multiplier is None:
        return ""
    return f" at {multiplier:.1f}x" if multiplier < 100 else " beyond 100x"


def fallback_text(fit: FallbackFit) -> str:
    """One line for the group row: ``fallback b: 1x ✔, 10x ✖ (tokens/min full at 3.2x)``.

    ``fallback b: ? no headroom headers`` when no limit is known, ``fallback b: no traffic
    to move`` when the primary serves no feature.
    """
    head = f"fallback {fit.fallback}:"
    if not fit.features:
        return f"{head} no feature traffic to move"
    if fit.fits is None:
        return f"{head} ? no headroom headers"
    one = "✔" if fit.fits else "✖"
    ten = "✔" if fit.fits_at_10x else "✖"
    return f"{head} 1x {one}, 10x {ten} ({fit.breaks_first} full{_times(fit.max_multiplier)})"

"""What monitoring costs, and what a feature would cost and feel like on each target (issue #6).

Two questions, answered from measured probes:

* **Cost of monitoring**: per target, the mean cost of one canary probe over the window times
  the probes the current schedule runs a day (``86400 / effective interval``: intervals are
  start to start), per day and per 30-day month, and the total. A target whose probes are
  unpriced makes the total a lower bound, and says so. Cache checks and long-prompt workloads
  run on their own schedules and are not in it (docs/questions.md gives their cost).
* **Feature projections**: for each ``[[features]]`` entry and each target, the cost of one
  request of that shape (same pricing as probes: config rates merged over the genai-prices
  snapshot), per day and per 30-day month at its volume; the expected latency
  ``TTFT + output_tokens / decode TPS`` at the TTFT's P50 and P99 (decode TPS: the window's
  median; TTFT at the feature's input size from the canary and the long-prompt workloads,
  :func:`store.prefill.ttft_at_size`, saying which size it used), with the window and sample
  counts it comes from; and whether the volume fits the
  provider's rate limits seen in the headroom headers, and which limit breaks first at 10x.

Pure functions take plain values (tested with hand-computed numbers); the query functions read
the database and call them. Nothing here imports the UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from probes.budget import COST_SAMPLES, DAYS_PER_MONTH, probes_per_day
from probes.config import Config, FeatureConfig, ResolvedTarget
from probes.dialects.base import Usage
from probes.pricing import price_usage
from probes.timestamps import iso
from store.control import PublishedTarget, prober_status, published_targets
from store.prefill import SizedTtft, SizePoint, size_points, ttft_at_size
from store.stats import median
from store.tally import CANARY, CANARY_SQL, TALLY_COLUMNS, TALLY_FIELDS, tally_rows

MINUTES_PER_DAY = 1440.0
#: A rate-limit window shorter than this is read as a per-minute window.
_MINUTE_S = 60.0
#: The volume multiple the "what breaks first" question is asked at.
SCALE_UP = 10.0


# --- cost history ---------------------------------------------------------------------------


def recent_costs(
    db: sqlite_utils.Database, names: Iterable[str], limit: int = COST_SAMPLES
) -> dict[str, list[float]]:
    """The latest ``limit`` known ``cost_usd`` values per target, oldest first (USD).

    The prober seeds the scheduler with them so a probing budget holds from the first probe
    after a restart. Targets without priced probes map to an empty list.
    """
    out: dict[str, list[float]] = {}
    for name in names:
        rows = db.query(
            f"SELECT cost_usd FROM probes WHERE target = ? AND {CANARY_SQL} "
            "AND cost_usd IS NOT NULL "
            "ORDER BY started_at DESC LIMIT ?",
            [name, limit],
        )
        out[name] = [float(r["cost_usd"]) for r in rows][::-1]
    return out


# --- cost of monitoring ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitoringCost:
    """What probing one target costs at its current schedule.

    Attributes:
        target: target name.
        interval_s: configured interval, seconds.
        effective_interval_s: interval after probing budgets, seconds.
        jitter_s: scheduler jitter, seconds (it moves starts, not the rate).
        probes_per_day: probes a day at the current schedule (0 while paused or not
            configured).
        cost_per_probe_usd: mean cost of one probe, USD, over the window's priced probes (the
            scheduler's published figure when the window has none); None when unknown.
        priced_probes: probes in the window with a known cost.
        unpriced_probes: probes in the window without one ("price unknown" or no usage).
        per_day_usd: ``cost_per_probe × probes_per_day``, USD; None when the cost is unknown.
        per_month_usd: ``per_day × 30``, USD; None when unknown.
        daily_budget_usd: the target's own budget, USD per day, or None.
        budget_note: why a budget stretched the interval, or "".
        active: False when paused or not configured (then it costs nothing now).
    """

    target: str
    interval_s: float
    effective_interval_s: float
    jitter_s: float
    probes_per_day: float
    cost_per_probe_usd: float | None
    priced_probes: int
    unpriced_probes: int
    per_day_usd: float | None
    per_month_usd: float | None
    daily_budget_usd: float | None = None
    budget_note: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class MonitoringReport:
    """Cost of monitoring, per target and in total.

    Attributes:
        window_s: the window the costs per probe were measured over, seconds.
        since: start of the window (stored UTC ISO format).
        until: end of the window.
        targets: one entry per published target.
        per_day_usd: total per day over targets with a known cost, USD.
        per_month_usd: total per 30-day month, USD.
        unpriced: active targets whose cost is unknown: the totals are then a lower bound.
        daily_budget_usd: the prober's overall budget, USD per day, or None.
    """

    window_s: float
    since: str
    until: str
    targets: list[MonitoringCost]
    per_day_usd: float
    per_month_usd: float
    unpriced: list[str] = field(default_factory=list)
    daily_budget_usd: float | None = None

    @property
    def complete(self) -> bool:
        """True when every active target's cost is known (totals are exact, not a bound)."""
        return not self.unpriced


def monitoring_cost(
    target: PublishedTarget, costs: Sequence[float], unpriced_probes: int
) -> MonitoringCost:
    """Cost of probing one target at its published schedule (pure).

    Args:
        target: the published target (configured and effective interval, jitter, state).
        costs: the window's known ``cost_usd`` values, USD.
        unpriced_probes: the window's probes without a cost.
    """
    effective = target.effective_interval_s or target.interval_s
    active = target.configured and not target.paused
    per_day_probes = probes_per_day(effective) if active else 0.0
    cost = sum(costs) / len(costs) if costs else target.cost_per_probe_usd
    per_day = None if cost is None else cost * per_day_probes
    return MonitoringCost(
        target=target.name,
        interval_s=target.interval_s,
        effective_interval_s=effective,
        jitter_s=target.jitter_s,
        probes_per_day=per_day_probes,
        cost_per_probe_usd=cost,
        priced_probes=len(costs),
        unpriced_probes=unpriced_probes,
        per_day_usd=per_day,
        per_month_usd=None if per_day is None else per_day * DAYS_PER_MONTH,
        daily_budget_usd=target.daily_budget_usd,
        budget_note=target.budget_note,
        active=active,
    )


def summarise_monitoring(
    costs: Sequence[MonitoringCost],
    *,
    window_s: float,
    since: str,
    until: str,
    daily_budget_usd: float | None = None,
) -> MonitoringReport:
    """Total the per-target costs (pure); unknown costs are listed, not counted as $0."""
    per_day = sum(c.per_day_usd for c in costs if c.per_day_usd is not None)
    return MonitoringReport(
        window_s=window_s,
        since=since,
        until=until,
        targets=list(costs),
        per_day_usd=per_day,
        per_month_usd=per_day * DAYS_PER_MONTH,
        unpriced=[c.target for c in costs if c.active and c.per_day_usd is None],
        daily_budget_usd=daily_budget_usd,
    )


def monitoring_report(
    db: sqlite_utils.Database, window_s: float, now: datetime | None = None
) -> MonitoringReport:
    """Cost of monitoring every published target at the current schedule.

    Args:
        db: an open database (the prober has published its targets).
        window_s: how far back the cost per probe is averaged, seconds.
        now: the current UTC time (injectable for tests).
    """
    now = now or datetime.now(UTC)
    since, until = iso(now - timedelta(seconds=window_s)), iso(now)
    out = []
    for t in published_targets(db):
        rows = list(
            db.query(
                f"SELECT cost_usd FROM probes WHERE target = ? AND {CANARY_SQL} "
                "AND started_at >= ? AND started_at <= ?",
                [t.name, since, until],
            )
        )
        known = [float(r["cost_usd"]) for r in rows if r["cost_usd"] is not None]
        out.append(monitoring_cost(t, known, len(rows) - len(known)))
    status = prober_status(db)
    return summarise_monitoring(
        out,
        window_s=window_s,
        since=since,
        until=until,
        daily_budget_usd=status.daily_budget_usd if status else None,
    )


# --- measured latency and rate-limit headroom -----------------------------------------------


def per_minute_capacity(remaining: float, reset_s: float | None) -> float:
    """Estimate how many units a minute a rate-limit window still allows.

    ``remaining`` units are available until the window resets ``reset_s`` seconds later. A
    reset within a minute is read as a per-minute window (all of ``remaining`` can be used this
    minute); a longer one (a per-day window, or a slowly refilling bucket) spreads
    ``remaining`` over the time to reset: ``remaining × 60 / reset_s``. A missing reset is read
    as a minute. It is an estimate from headroom headers, not the provider's stated limit.
    """
    window = _MINUTE_S if reset_s is None else max(reset_s, _MINUTE_S)
    return remaining * _MINUTE_S / window


@dataclass(frozen=True, slots=True)
class Measured:
    """One target's measured latency and rate-limit headroom over a window.

    Attributes:
        since: started_at of the first successful probe used, or None without any.
        until: started_at of the last successful probe used, or None.
        ok_probes: successful probes in the window.
        ttft_samples: of them, with a TTFT.
        ttft_p50_ms: median TTFT, ms.
        ttft_p99_ms: 99th-percentile TTFT, ms.
        decode_samples: successful probes with a decode rate.
        decode_tps_p50: median decode rate, tokens/s.
        probe_input_tokens_p50: median prompt size of those probes, tokens (TTFT grows with
            the prompt: a feature with a much longer prompt will see more).
        ratelimit_samples: probes with rate-limit headroom headers.
        rpm_capacity: estimated requests per minute still available (median over probes).
        tpm_capacity: estimated tokens per minute still available (median over probes).
    """

    since: str | None = None
    until: str | None = None
    ok_probes: int = 0
    ttft_samples: int = 0
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    decode_samples: int = 0
    decode_tps_p50: float | None = None
    probe_input_tokens_p50: float | None = None
    ratelimit_samples: int = 0
    rpm_capacity: float | None = None
    tpm_capacity: float | None = None


def _f(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None else float(value)


def measure(rows: Sequence[Mapping[str, Any]]) -> Measured:
    """Measured latency and headroom from probe rows in time order (pure).

    Latency uses successful canary probes only (docs/metrics.md, "Which samples feed which
    statistics", through the same :class:`~store.tally.Tally` as the dashboard; a row without
    ``kind`` is a canary); headroom uses every probe that carried rate-limit headers, of any
    kind (a 429's zero headroom is real headroom, and a workload's is the same key's).
    """
    canaries = [r for r in rows if (r.get("kind") or CANARY) == CANARY]
    tally = tally_rows((tuple(r.get(k) for k in TALLY_FIELDS) for r in canaries), exact=True)
    figures = tally.figures()
    ok = [r for r in canaries if r.get("status") == "ok"]
    rpm = [
        per_minute_capacity(v, _f(r, "ratelimit_reset_requests_s"))
        for r in rows
        if (v := _f(r, "ratelimit_remaining_requests")) is not None
    ]
    tpm = [
        per_minute_capacity(v, _f(r, "ratelimit_reset_tokens_s"))
        for r in rows
        if (v := _f(r, "ratelimit_remaining_tokens")) is not None
    ]
    return Measured(
        since=str(ok[0]["started_at"]) if ok else None,
        until=str(ok[-1]["started_at"]) if ok else None,
        ok_probes=tally.ok,
        ttft_samples=tally.ttft_n,
        ttft_p50_ms=figures.ttft_p50_ms,
        ttft_p99_ms=figures.ttft_p99_ms,
        decode_samples=tally.tps_n,
        decode_tps_p50=figures.decode_tps_p50,
        probe_input_tokens_p50=tally.input_tokens_p50(),
        ratelimit_samples=max(len(rpm), len(tpm)),
        rpm_capacity=median(rpm),
        tpm_capacity=median(tpm),
    )


def expected_latency_ms(
    ttft_ms: float | None, output_tokens: int, decode_tps: float | None
) -> float | None:
    """``ttft_ms + output_tokens / decode_tps`` in ms; None when either measurement is missing.

    (Counting every output token at the decode rate overstates by one token interval, which
    keeps the estimate on the safe side.)
    """
    if ttft_ms is None or decode_tps is None or decode_tps <= 0:
        return None
    return ttft_ms + output_tokens / decode_tps * 1000.0


@dataclass(frozen=True, slots=True)
class RateFit:
    """Whether a volume fits the provider's rate limits seen in headroom headers.

    Attributes:
        requests_per_min: the feature's demand, requests per minute (volume spread evenly).
        tokens_per_min: demand in tokens per minute (input + output per request).
        rpm_capacity: estimated available requests per minute, or None when not sent.
        tpm_capacity: estimated available tokens per minute, or None when not sent.
        requests_share: demand / capacity for requests (1.0 = exactly full), or None.
        tokens_share: demand / capacity for tokens, or None.
        fits: True when every known limit holds at this volume; None when no limit is known.
        fits_at_10x: the same at ten times the volume.
        breaks_first: the limit that fills first as volume grows, ``"requests/min"`` or
            ``"tokens/min"``; None when no limit is known.
        max_multiplier: how many times the volume fits before that limit is full, or None.
    """

    requests_per_min: float
    tokens_per_min: float
    rpm_capacity: float | None
    tpm_capacity: float | None
    requests_share: float | None
    tokens_share: float | None
    fits: bool | None
    fits_at_10x: bool | None
    breaks_first: str | None
    max_multiplier: float | None


def _share(demand: float, capacity: float | None) -> float | None:
    if capacity is None:
        return None
    if capacity <= 0:
        return float("inf") if demand > 0 else 0.0
    return demand / capacity


def rate_fit(
    requests_per_day: float,
    tokens_per_request: int,
    rpm_capacity: float | None,
    tpm_capacity: float | None,
) -> RateFit:
    """Compare a volume with estimated per-minute capacity (pure).

    Args:
        requests_per_day: the feature's volume.
        tokens_per_request: input + output tokens of one request.
        rpm_capacity: available requests per minute (see :func:`per_minute_capacity`), or None.
        tpm_capacity: available tokens per minute, or None.
    """
    rpm = requests_per_day / MINUTES_PER_DAY
    tpm = rpm * tokens_per_request
    shares = {"requests/min": _share(rpm, rpm_capacity), "tokens/min": _share(tpm, tpm_capacity)}
    known = {k: v for k, v in shares.items() if v is not None}
    if not known:
        return RateFit(rpm, tpm, rpm_capacity, tpm_capacity, None, None, None, None, None, None)
    first = max(known, key=lambda k: known[k])
    worst = known[first]
    return RateFit(
        requests_per_min=rpm,
        tokens_per_min=tpm,
        rpm_capacity=rpm_capacity,
        tpm_capacity=tpm_capacity,
        requests_share=_finite(shares["requests/min"]),
        tokens_share=_finite(shares["tokens/min"]),
        fits=worst <= 1.0,
        fits_at_10x=worst * SCALE_UP <= 1.0,
        breaks_first=first,
        max_multiplier=None if worst == float("inf") else (1.0 / worst if worst > 0 else None),
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or value == float("inf") else value


# --- feature projections --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """One feature on one target.

    Attributes:
        feature: feature name.
        target: target name.
        provider: provider name.
        model: model id.
        requests_per_day: the feature's volume.
        cost_per_request_usd: USD for one request of the feature's shape; None = price unknown.
        cost_source: where the rates came from (as ``cost_source`` in probe records), or
            ``unpriced``.
        per_day_usd: ``cost_per_request × requests_per_day``, USD; None when unknown.
        per_month_usd: ``per_day × 30``, USD; None when unknown.
        latency_p50_ms: ``TTFT P50 + output_tokens / decode TPS P50``, ms; None without data.
        latency_p99_ms: ``TTFT P99 + output_tokens / decode TPS P50``, ms; None without data.
        measured: the measurements and the data window they come from.
        fit: rate-limit fit at this volume and at 10x.
        ttft: the TTFT at the feature's ``input_tokens`` the latencies use, and which measured
            size(s) it comes from (:func:`store.prefill.ttft_at_size`); None when no size
            point was given (then the canary's TTFT, ``measured``, is used).
        cheapest: the lowest known cost per request among this feature's targets.
        fastest: the lowest expected P50 latency among this feature's targets.
    """

    feature: str
    target: str
    provider: str
    model: str
    requests_per_day: float
    cost_per_request_usd: float | None
    cost_source: str
    per_day_usd: float | None
    per_month_usd: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    measured: Measured
    fit: RateFit
    cheapest: bool = False
    fastest: bool = False
    ttft: SizedTtft | None = None


def feature_usage(feature: FeatureConfig) -> Usage:
    """One request of the feature's shape as normalised usage (inclusive input, no writes)."""
    return Usage(
        input_tokens=feature.input_tokens,
        cache_read_tokens=feature.cached_input_tokens,
        cache_write_tokens=0,
        output_tokens=feature.output_tokens,
    )


def project(
    feature: FeatureConfig,
    target: ResolvedTarget,
    measured: Measured,
    when: datetime,
    points: Sequence[SizePoint] = (),
) -> Projection:
    """Project one feature onto one target (pure apart from the bundled price snapshot).

    Args:
        feature: the feature's request shape and volume.
        target: the target, for its model and rates (config merged over genai-prices).
        measured: the target's measurements over the window.
        when: the time prices are taken at (UTC).
        points: TTFT measured per prompt size (:func:`store.prefill.size_points`): the
            latency then uses the TTFT at the feature's ``input_tokens`` (nearest size,
            interpolated between sizes) instead of the canary's.
    """
    sized = ttft_at_size(points, feature.input_tokens) if points else None
    ttft_p50 = sized.ttft_p50_ms if sized is not None else measured.ttft_p50_ms
    ttft_p99 = sized.ttft_p99_ms if sized is not None else measured.ttft_p99_ms
    cost = price_usage(feature_usage(feature), target.config, target.prices_id, when)
    per_request = None if cost is None else cost.cost_usd
    per_day = None if per_request is None else per_request * feature.requests_per_day
    return Projection(
        feature=feature.name,
        target=target.name,
        provider=target.config.provider,
        model=target.config.model,
        requests_per_day=feature.requests_per_day,
        cost_per_request_usd=per_request,
        cost_source="unpriced" if cost is None else cost.cost_source,
        per_day_usd=per_day,
        per_month_usd=None if per_day is None else per_day * DAYS_PER_MONTH,
        latency_p50_ms=expected_latency_ms(
            ttft_p50, feature.output_tokens, measured.decode_tps_p50
        ),
        latency_p99_ms=expected_latency_ms(
            ttft_p99, feature.output_tokens, measured.decode_tps_p50
        ),
        measured=measured,
        fit=rate_fit(
            feature.requests_per_day,
            feature.input_tokens + feature.output_tokens,
            measured.rpm_capacity,
            measured.tpm_capacity,
        ),
        ttft=sized,
    )


def mark_best(projections: Sequence[Projection]) -> list[Projection]:
    """Mark, per feature, the cheapest (known cost) and fastest (known P50) targets (pure).

    Ties are all marked; unknown costs and latencies are never the best.
    """
    out = list(projections)
    for name in dict.fromkeys(p.feature for p in out):
        mine = [i for i, p in enumerate(out) if p.feature == name]
        costs = [out[i].cost_per_request_usd for i in mine]
        known_costs = [c for c in costs if c is not None]
        lats = [out[i].latency_p50_ms for i in mine]
        known_lats = [v for v in lats if v is not None]
        for i in mine:
            p = out[i]
            out[i] = replace(
                p,
                cheapest=bool(known_costs) and p.cost_per_request_usd == min(known_costs),
                fastest=bool(known_lats) and p.latency_p50_ms == min(known_lats),
            )
    return out


@dataclass(frozen=True, slots=True)
class ProjectionReport:
    """Every feature × target projection over one data window.

    Attributes:
        window_s: window length, seconds.
        since: window start (stored UTC ISO format).
        until: window end.
        projections: feature-major, targets in config order.
    """

    window_s: float
    since: str
    until: str
    projections: list[Projection]


_MEASURE_COLUMNS = (
    f"{TALLY_COLUMNS}, kind, workload, cold, started_at, ratelimit_remaining_requests, "
    "ratelimit_remaining_tokens, ratelimit_reset_requests_s, ratelimit_reset_tokens_s"
)


def _window_rows(
    db: sqlite_utils.Database, target: str, since: str, until: str
) -> list[dict[str, Any]]:
    return list(
        db.query(
            f"SELECT {_MEASURE_COLUMNS} FROM probes WHERE target = ? AND started_at >= ? "
            "AND started_at <= ? ORDER BY started_at",
            [target, since, until],
        )
    )


def measure_window(db: sqlite_utils.Database, target: str, since: str, until: str) -> Measured:
    """Measure one target from its probes with ``since <= started_at <= until``."""
    return measure(_window_rows(db, target, since, until))


def feature_projections(
    db: sqlite_utils.Database | None,
    config: Config,
    window_s: float,
    now: datetime | None = None,
    feature: str | None = None,
) -> ProjectionReport:
    """Project every configured feature (or one) onto its targets from measured data.

    Args:
        db: an open database, or None to price without measurements (latency unknown).
        config: the config with ``[[features]]`` and the targets' prices.
        window_s: how far back measurements are taken, seconds.
        now: the current UTC time, also the time prices are taken at (injectable).
        feature: only this feature, by name.

    Raises:
        KeyError: when ``feature`` names no configured feature.
    """
    now = now or datetime.now(UTC)
    since, until = iso(now - timedelta(seconds=window_s)), iso(now)
    features = list(config.features)
    if feature is not None:
        features = [f for f in features if f.name == feature]
        if not features:
            raise KeyError(feature)
    targets = config.resolved()
    measured: dict[str, Measured] = {}
    points: dict[str, list[SizePoint]] = {}
    for t in targets:
        rows = _window_rows(db, t.name, since, until) if db is not None else []
        # One read per target: the canary's figures and every measured prompt size.
        measured[t.name], points[t.name] = measure(rows), size_points(rows)
    out = [
        project(f, t, measured[t.name], now, points[t.name])
        for f in features
        for t in targets
        if not f.targets or t.name in f.targets
    ]
    return ProjectionReport(window_s, since, until, mark_best(out))

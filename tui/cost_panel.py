"""Rich renderables for cost: feature projections and the cost of monitoring (issue #6).

Pure functions from the store's report objects to Rich tables, so ``inferwatch cost`` prints
exactly what the dashboard's cost panel shows and tests can render them with a plain
``rich.console.Console``. Meaning never depends on colour: the cheapest and fastest targets are
marked with words, an unknown price reads "price unknown", never $0.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from store.costs import MonitoringReport, Projection, ProjectionReport, RateFit
from store.fallback import FallbackFit
from tui import format as fmt
from tui.fallback_panel import fallback_table

PRICE_UNKNOWN = "price unknown"
CHEAPEST = "cheapest"
FASTEST = "fastest"


def money(value: float | None) -> str:
    """USD for cost tables: sub-cent values with enough digits, large ones with separators
    (``$0.0045``, ``$45.00``, ``$1,350.00``); "price unknown" for None."""
    if value is None:
        return PRICE_UNKNOWN
    if value >= 1000:
        return f"${value:,.2f}"
    return fmt.usd(value)


def fit_label(fit: RateFit) -> str:
    """One-line rate-limit verdict: whether the volume fits, and what breaks first at 10x."""
    if fit.fits is None:
        return "unknown (no headroom headers)"
    most = f" (fits up to {fit.max_multiplier:.1f}x)" if fit.max_multiplier is not None else ""
    if not fit.fits:
        return f"exceeds {fit.breaks_first}{most}"
    if fit.fits_at_10x:
        return f"ok, 10x ok ({fit.breaks_first} fills first)"
    return f"ok; at 10x {fit.breaks_first} breaks{most}"


def marks(p: Projection) -> str:
    """``cheapest``, ``fastest``, both, or ""."""
    return ", ".join(m for m, on in ((CHEAPEST, p.cheapest), (FASTEST, p.fastest)) if on)


def ttft_source(p: Projection) -> str:
    """Which measured prompt size the latency's TTFT comes from, in a few words: ``10k``
    (measured at the feature's size), ``1k–10k`` (interpolated), ``10k (smaller)`` (the
    largest measured prompt is smaller than the feature's: latency will be higher),
    ``canary (larger)``; ``canary`` when no size point was measured."""
    sized = p.ttft
    if sized is None:
        return "canary" if p.measured.ttft_samples else "–"
    labels = [u.label for u in sized.used]
    if sized.method == "interpolated":
        return f"{labels[0]}–{labels[1]}"
    if sized.method == "largest_measured":
        return f"{labels[0]} (smaller)"
    if sized.method == "smallest_measured":
        return f"{labels[0]} (larger)"
    return labels[0]


def _samples(p: Projection) -> str:
    m = p.measured
    if not m.ok_probes:
        return "no data"
    return f"{m.ttft_samples} TTFT / {m.decode_samples} TPS"


def projection_table(report: ProjectionReport, feature: str) -> Table:
    """A table of one feature on every target it is projected onto.

    Args:
        report: projections from :func:`store.costs.feature_projections`.
        feature: the feature's name (rows of other features are ignored).

    Returns:
        A Rich table titled with the feature's volume, one row per target: cost per request,
        per day and per 30-day month, expected latency P50/P99, samples, rate-limit fit and
        the cheapest/fastest marks.
    """
    rows = [p for p in report.projections if p.feature == feature]
    volume = f"{rows[0].requests_per_day:,.0f} requests/day" if rows else ""
    size = next((p.ttft.input_tokens for p in rows if p.ttft is not None), None)
    prompt_note = (
        f"\nTTFT at the feature's {size:,} input tokens, from the measured prompt sizes "
        '(column "TTFT at", docs/questions.md)'
        if size is not None
        else ""
    )
    table = Table(
        title=f"{feature}: {volume}",
        title_justify="left",
        caption=(
            f"window {fmt.window(report.window_s)} ({report.since} → {report.until}); "
            "latency = TTFT + output tokens / median decode TPS; month = 30 days"
            f"{prompt_note}"
        ),
        caption_justify="left",
        expand=False,
    )
    for name, justify in (
        ("target", "left"),
        ("$/request", "right"),
        ("$/day", "right"),
        ("$/month", "right"),
        ("P50", "right"),
        ("P99", "right"),
        ("samples", "right"),
        ("rate limits", "left"),
        ("", "left"),
        ("TTFT at", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in rows:
        mark = marks(p)
        table.add_row(
            p.target,
            money(p.cost_per_request_usd),
            money(p.per_day_usd),
            money(p.per_month_usd),
            fmt.duration(p.latency_p50_ms),
            fmt.duration(p.latency_p99_ms),
            _samples(p),
            fit_label(p.fit),
            Text(mark, style="bold") if mark else "",
            ttft_source(p),
        )
    return table


def monitoring_table(report: MonitoringReport) -> Table:
    """What probing costs, per target and in total, at the current schedule.

    Returns:
        A Rich table: effective interval (with the budget's note), cost per probe, probes per
        day, USD per day and per 30-day month, and a total row (marked as a lower bound when a
        target is unpriced).
    """
    budget = (
        f"; prober budget {money(report.daily_budget_usd)}/day"
        if report.daily_budget_usd is not None
        else ""
    )
    table = Table(
        title="Cost of monitoring",
        title_justify="left",
        caption=f"cost per probe over {fmt.window(report.window_s)}{budget}",
        caption_justify="left",
    )
    for name, justify in (
        ("target", "left"),
        ("interval", "right"),
        ("$/probe", "right"),
        ("probes/day", "right"),
        ("$/day", "right"),
        ("$/month", "right"),
        ("budget", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in report.targets:
        interval = f"{c.effective_interval_s:g}s"
        if c.effective_interval_s > c.interval_s:
            interval += f" (set {c.interval_s:g}s)"
        note = c.budget_note or ("" if c.active else "not probing")
        table.add_row(
            c.target,
            interval,
            money(c.cost_per_probe_usd),
            f"{c.probes_per_day:,.0f}",
            money(c.per_day_usd),
            money(c.per_month_usd),
            note,
        )
    lower = " (at least)" if report.unpriced else ""
    table.add_row(
        Text("total" + lower, style="bold"),
        "",
        "",
        "",
        Text(money(report.per_day_usd), style="bold"),
        Text(money(report.per_month_usd), style="bold"),
        f"price unknown: {', '.join(report.unpriced)}" if report.unpriced else "",
    )
    return table


def render_cost_panel(
    projections: ProjectionReport | None,
    monitoring: MonitoringReport | None,
    fallbacks: Sequence[FallbackFit] = (),
) -> RenderableType:
    """The whole cost panel: whether each group's fallback takes the primary's load, one
    table per feature, then the cost of monitoring.

    Either report may be None (no features configured, no database yet).
    """
    parts: list[RenderableType] = []
    if fallbacks:
        # First: on call, "can the fallback take the load?" is asked under pressure.
        parts.append(fallback_table(fallbacks))
    if projections is not None:
        for name in dict.fromkeys(p.feature for p in projections.projections):
            parts.append(projection_table(projections, name))
    if monitoring is not None:
        parts.append(monitoring_table(monitoring))
    if not parts:
        parts.append(Text("No [[features]] configured and no probes yet.", style="italic"))
    return Group(*parts)

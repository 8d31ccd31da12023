"""Rich table for "can the fallback take the load?" (``inferwatch cost`` and the cost panel).

Pure: from :class:`store.fallback.FallbackFit` values to a table, words and symbols only
(✔ fits, ✖ does not, ? unknown), so meaning never rests on colour.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from store.fallback import FallbackFit


def _rate(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value >= 10 else f"{value:,.2f}"


def _mark(value: bool | None) -> str:
    return "?" if value is None else ("✔" if value else "✖")


def load_text(fits: Sequence[FallbackFit]) -> str:
    """What the group row adds about its fallbacks' capacity: `` · takes load 1x ✔ 10x ✖``
    (one fallback; ``name 1x ✔ 10x ✖`` each with several), `` · takes load ? no headroom
    headers`` when no limit is known, "" when no feature traffic would move. The whole answer
    (which limit, at what multiple) is on the ``$`` screen and in ``inferwatch cost``."""
    moving = [f for f in fits if f.features]
    if not moving:
        return ""

    def verdict(fit: FallbackFit) -> str:
        if fit.fits is None:
            return "? no headroom headers"
        return f"1x {_mark(fit.fits)} 10x {_mark(fit.fits_at_10x)}"

    if len(moving) == 1:
        return f" · takes load {verdict(moving[0])}"
    return " · takes load " + ", ".join(f"{f.fallback} {verdict(f)}" for f in moving)


def fallback_table(fits: Sequence[FallbackFit]) -> Table:
    """One row per group fallback: whether it fits at 1x and 10x and which limit fills first
    (and at what multiple) first, so they show at 80 columns; then the primary's traffic and
    the fallback's headroom. The features whose traffic moves are in the caption."""
    moving = {
        fit.group: ", ".join(fit.features)
        + (" (features without targets: assumed here)" if fit.assumed and fit.features else "")
        for fit in fits
    }
    caption = Text(
        "traffic: the primary's [[features]] volume, spread evenly; headroom: the "
        "fallback's rate-limit headers over the window (docs/questions.md)",
        style="table.caption",
    )
    for group, features in moving.items():
        caption.append(f"\n{group} moves: {features or 'no feature traffic'}")
    table = Table(
        title="Can the fallback take the load?",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for name, justify in (
        ("group", "left"),
        ("primary → fallback", "left"),
        ("1x", "center"),
        ("10x", "center"),
        ("breaks first", "left"),
        ("traffic req/min", "right"),
        ("tok/min", "right"),
        ("headroom req/min", "right"),
        ("tok/min ", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for fit in fits:
        if not fit.features:
            first = "no feature traffic to move"
        elif fit.fits is None:
            first = "unknown: no headroom headers"
        elif fit.max_multiplier is None:
            first = f"{fit.breaks_first} (no traffic)"
        else:
            first = f"{fit.breaks_first} at {fit.max_multiplier:,.1f}x"
        table.add_row(
            fit.group,
            f"{fit.primary} → {fit.fallback}",
            _mark(fit.fits),
            _mark(fit.fits_at_10x),
            first,
            _rate(fit.demand_rpm),
            _rate(fit.demand_tpm),
            _rate(fit.rpm_capacity),
            _rate(fit.tpm_capacity),
        )
    return table

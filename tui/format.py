"""Number and state formatting shared by the dashboard's widgets (units always shown)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from probes.timestamps import clock_text, day_of
from store.health import STATE_LABELS as STATE_LABELS  # re-exported for the widgets
from store.health import State

#: Theme variable per state (never hard-coded colours).
STATE_STYLES: dict[State, str] = {
    State.UP: "$success",
    State.DEGRADED: "$warning",
    State.DOWN: "$error",
    State.STALE: "$warning",
    State.IN_FLIGHT: "$text-muted",
    State.CONFIG_ERROR: "$warning",
    State.NO_DATA: "$text-muted",
    State.NOT_CONFIGURED: "$text-muted",
    State.PAUSED: "$text-muted",
    State.MAINTENANCE: "$text-muted",
}


def ms(value: float | None) -> str:
    """Milliseconds as a bare integer for ms columns (``842``, ``9870``), whole seconds from
    10 s (``12s``) so it fits 4 cells; ``–`` when unknown."""
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1000:.0f}s"
    return f"{value:.0f}"


def duration(value_ms: float | None) -> str:
    """A duration with its unit: ``842 ms``, ``2.18 s``; ``–`` when unknown."""
    if value_ms is None:
        return "–"
    if value_ms >= 1000:
        return f"{value_ms / 1000:.2f} s"
    return f"{value_ms:.0f} ms"


def tps(value: float | None) -> str:
    """Tokens per second, ``–`` when unknown."""
    return "–" if value is None else f"{value:.0f}"


def pct(value: float | None) -> str:
    """A share as a percentage, ``–`` when unknown."""
    if value is None:
        return "–"
    return "0%" if value == 0 else f"{value * 100:.0f}%" if value >= 0.01 else "<1%"


def usd(value: float | None) -> str:
    """USD with enough digits for sub-cent values (``$0.000031``); ``?`` when unpriced."""
    if value is None:
        return "?"
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:.2f}"
    if value >= 0.01:
        return f"${value:.4f}"
    if value >= 0.000001:
        return f"${value:.6f}"
    return "<$0.000001"


def age(seconds: float | None) -> str:
    """A coarse age: ``<30s``, ``30s``, ``3m``, ``2h``, ``5d``; ``–`` when unknown.

    Half-minute steps below a minute: with probes every 5-60 s a finer age changes every few
    seconds on every row, repainting the table for nothing (overdue targets turn stale
    anyway, and their age then grows in minutes).
    """
    if seconds is None:
        return "–"
    seconds = max(seconds, 0)
    if seconds < 30:
        return "<30s"
    if seconds < 60:
        return "30s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def window(seconds: float) -> str:
    """A window length: ``15m``, ``1h``, ``24h``, ``7d``."""
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 60:.0f}m"


#: The state words of the overview's and the comparison's state column: the same words as
#: everywhere else ("○ not configured", never "no key": one label per state).
STATE_SHORT: dict[State, str] = dict(STATE_LABELS)
#: Cells the widest state label takes.
STATE_WIDTH = max(len(label) for label in STATE_LABELS.values())

#: Symbol of each state alone (comparison and incident lists put the word beside it).
STATE_SYMBOLS: dict[State, str] = {s: label.split(" ", 1)[0] for s, label in STATE_LABELS.items()}

#: How bad a state is, for sorting (worst first) and for group summaries.
STATE_SEVERITY: dict[State, int] = {
    State.DOWN: 0,
    State.STALE: 1,
    State.CONFIG_ERROR: 1,
    State.DEGRADED: 2,
    State.IN_FLIGHT: 3,
    State.NO_DATA: 3,
    State.PAUSED: 4,
    State.MAINTENANCE: 4,
    State.NOT_CONFIGURED: 5,
    State.UP: 6,
}


def span(seconds: float | None) -> str:
    """A coarse duration for "in this state for": ``<1m``, ``12m``, ``3h``, ``2h``, ``5d``.

    Minute resolution at least, so a row does not repaint every second for it.
    """
    if seconds is None:
        return "–"
    seconds = max(seconds, 0)
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def duration_s(seconds: float | None) -> str:
    """An exact-ish duration: ``45s``, ``3m05s``, ``2h10m``, ``3d4h``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def clock(iso_time: str | None, now_iso: str | None = None) -> str:
    """A stored UTC time as ``14:03:12Z``, with the date (``11-29 14:03Z``) when it is not
    the same day as ``now_iso``; ``?`` when unknown."""
    if not iso_time:
        return "?"
    return clock_text(
        iso_time, with_date=now_iso is not None and day_of(iso_time) != day_of(now_iso)
    )


def short_count(n: float | None) -> str:
    """A count in at most 4 characters: ``998``, ``12k``, ``1.2M``; ``–`` when unknown."""
    if n is None:
        return "–"
    if n < 1000:
        return f"{n:.0f}"
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def headroom(requests: int | None, tokens: int | None) -> str:
    """Rate-limit headroom as ``998r 199kt`` (requests, tokens left); ``–`` when unknown."""
    if requests is None and tokens is None:
        return "–"
    parts = []
    if requests is not None:
        parts.append(f"{short_count(requests)}r")
    if tokens is not None:
        parts.append(f"{short_count(tokens)}t")
    return " ".join(parts)


def share(value: float | None) -> str:
    """A share of time or probes as a whole percentage (``100%``, ``4%``, ``<1%``), ``?``
    when unknown; never rounds up to 100 % (99.6 % reads ``99%``)."""
    if value is None:
        return "?"
    if value >= 1.0:
        return "100%"
    if value <= 0:
        return "0%"
    return f"{int(value * 100)}%" if value >= 0.01 else "<1%"


def uptime_pct(pct: float | None) -> str:
    """Uptime with one decimal below 100 % (``99.3%``); ``?`` when nothing is known."""
    if pct is None:
        return "?"
    if pct >= 99.995:
        return "100%"
    return f"{min(pct, 99.9):.1f}%" if pct >= 10 else f"{pct:.1f}%"


def megabytes(n_bytes: int) -> str:
    """A file size: ``0.2 MB``, ``14 MB``, ``1.3 GB``."""
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.1f} GB"
    if n_bytes >= 1e7:
        return f"{n_bytes / 1e6:.0f} MB"
    return f"{n_bytes / 1e6:.1f} MB"


#: Order of the states in the one-line summary: the headline states, then the rest.
SUMMARY_ORDER: tuple[State, ...] = (
    State.UP,
    State.DEGRADED,
    State.DOWN,
    State.STALE,
    State.CONFIG_ERROR,
    State.IN_FLIGHT,
    State.NO_DATA,
    State.PAUSED,
    State.MAINTENANCE,
    State.NOT_CONFIGURED,
)


def summary_line(states: Iterable[State]) -> str:
    """One line counting targets per state (``5 up · 1 degraded · 1 down``, then stale, in
    flight... in :data:`SUMMARY_ORDER`); states with no target are left out, ``no targets``
    when there are none."""
    counts = Counter(states)
    parts = [f"{counts[s]} {s.value}" for s in SUMMARY_ORDER if counts[s]]
    return " · ".join(parts) or "no targets"

"""Number and state formatting shared by the dashboard's widgets (units always shown)."""

from __future__ import annotations

from store.health import State

#: Word plus symbol for each state, so meaning never depends on colour (NO_COLOR, tmux).
STATE_LABELS: dict[State, str] = {
    State.UP: "✔ up",
    State.DEGRADED: "▲ degraded",
    State.DOWN: "✖ down",
    State.STALE: "? stale",
    State.NO_DATA: "… no data",
    State.NOT_CONFIGURED: "○ not configured",
    State.PAUSED: "‖ paused",
}

#: Theme variable per state (never hard-coded colours).
STATE_STYLES: dict[State, str] = {
    State.UP: "$success",
    State.DEGRADED: "$warning",
    State.DOWN: "$error",
    State.STALE: "$warning",
    State.NO_DATA: "$text-muted",
    State.NOT_CONFIGURED: "$text-muted",
    State.PAUSED: "$text-muted",
}


def ms(value: float | None) -> str:
    """Milliseconds as a bare integer for ms columns (``842``, ``12400``); ``–`` when unknown."""
    return "–" if value is None else f"{value:.0f}"


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
    """A compact age: ``<10s``, ``40s``, ``3m``, ``2h``, ``5d``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    seconds = max(seconds, 0)
    if seconds < 10:
        return "<10s"
    if seconds < 60:
        # 10-second steps: a per-second age would repaint every row every second for nothing.
        return f"{int(seconds // 10) * 10}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def window(seconds: float) -> str:
    """A window length: ``15m``, ``1h``, ``24h``, ``7d``."""
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 60:.0f}m"

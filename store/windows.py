"""What a dashboard window reads: raw rows or rollups, and how finely its series are cut.

* Windows up to :data:`RAW_WINDOW_MAX_S` (the 15 min and 1 h views) read raw probe rows
  (:mod:`store.raw_window`): percentiles are exact.
* Longer windows (24 h, 7 d, 30 d) read the rollups (:mod:`store.rollup_window`): the cost
  does not grow with the number of probes; percentiles are within one histogram bucket (9 %).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

#: Windows up to this length read raw rows; longer ones read rollups.
RAW_WINDOW_MAX_S = 6 * 3600.0
#: Uptime windows shown per target, besides the window itself.
UPTIME_WINDOWS_S: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
#: Points in the TTFT series (per probe / per rollup bucket).
SERIES_POINTS = 120
#: Time buckets of the per-target trend in the overview (the detail screen asks for more).
TREND_BUCKETS = 48


def reads_rollups(window_s: float) -> bool:
    """True when a window of ``window_s`` seconds is summarised from rollups."""
    return window_s > RAW_WINDOW_MAX_S


def trend_buckets(window_s: float) -> int:
    """How many trend buckets the overview uses for a window: :data:`TREND_BUCKETS` for raw
    windows, whole hours (at most :data:`TREND_BUCKETS`) or, from 20 days, whole days for
    rollup windows, so the trend reads hour or day rollups."""
    if not reads_rollups(window_s):
        return TREND_BUCKETS
    if window_s >= 20 * 86400:
        return max(1, int(window_s // 86400))
    return max(1, min(TREND_BUCKETS, int(window_s // 3600)))


def target_filter(column: str, names: Collection[str] | None) -> tuple[str, list[Any]]:
    """``AND column IN (?, ...)`` and its parameters for a target filter ('' when unfiltered)."""
    if names is None:
        return "", []
    return f" AND {column} IN ({','.join('?' * len(names))})", list(names)

"""Percentiles and aggregates over probe samples, with the null rules of docs/metrics.md §6."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (NumPy's default "linear" method) of sorted values.

    Args:
        sorted_values: ascending values, no None.
        q: percentile in 0..100.

    Returns:
        The percentile, or None for an empty sequence.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return float(sorted_values[0])
    rank = (q / 100.0) * (n - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def median(values: Sequence[float]) -> float | None:
    """Median of unsorted values, or None when empty."""
    return percentile(sorted(values), 50.0)

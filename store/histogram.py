"""Log-spaced histograms small enough to keep per minute, accurate enough for P50/P95/P99.

Bucket ``i`` holds values in ``[2**(i/8), 2**((i+1)/8))``: eight buckets per doubling, so a
bucket is 9 % wide and a percentile read from a histogram is within one bucket (at most 9 %)
of the exact percentile of the raw values. The same buckets serve milliseconds and tokens/s.
A histogram is stored as compact JSON ``{"index": count}`` (only non-empty buckets), which
SQLite's ``json_each`` can sum across rows without Python.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

BUCKETS_PER_DOUBLING = 8
_LOG2_SCALE = BUCKETS_PER_DOUBLING
_MIN_VALUE = 1e-3
#: The lowest bucket (values at or below 0.001) and the last bucket with a precomputed edge.
_MIN_INDEX = math.floor(math.log2(_MIN_VALUE) * _LOG2_SCALE)
_TABLE_MAX_INDEX = 40 * _LOG2_SCALE  # 2**40: beyond any ms or tokens/s a probe measures
#: Lower bounds of buckets ``_MIN_INDEX + 1`` ... and their keys as text (as stored in JSON):
#: a bisection in C instead of a log2 per value (the rollup writer buckets every probe).
_EDGES = [2.0 ** (i / _LOG2_SCALE) for i in range(_MIN_INDEX + 1, _TABLE_MAX_INDEX + 1)]
_KEYS = [str(i) for i in range(_MIN_INDEX, _TABLE_MAX_INDEX + 1)]


def bucket_index(value: float) -> int:
    """The bucket of a positive value (values at or below 0.001 share the lowest bucket)."""
    if value >= _EDGES[-1]:
        return math.floor(math.log2(value) * _LOG2_SCALE)
    return _MIN_INDEX + bisect_right(_EDGES, value)


def bucket_key(value: float) -> str:
    """:func:`bucket_index` as the text key the stored JSON uses (not for NaN)."""
    if value >= _EDGES[-1]:
        return str(bucket_index(value))
    return _KEYS[bisect_right(_EDGES, value)]


def bucket_bounds(index: int) -> tuple[float, float]:
    """``(low, high)`` bounds of bucket ``index``: low inclusive, high exclusive."""
    return 2.0 ** (index / _LOG2_SCALE), 2.0 ** ((index + 1) / _LOG2_SCALE)


def bucket_value(index: int) -> float:
    """The representative value of a bucket: its geometric midpoint."""
    return float(2.0 ** ((index + 0.5) / _LOG2_SCALE))


def add(hist: dict[int, int], value: float | None) -> None:
    """Count ``value`` into ``hist`` in place (None is skipped)."""
    if value is not None and value == value:
        i = bucket_index(value)
        hist[i] = hist.get(i, 0) + 1


def dumps(hist: Mapping[int, int] | Mapping[str, int]) -> str | None:
    """Compact JSON of a histogram (keys as integers or as their text), in bucket order; None
    when empty."""
    if not hist:
        return None
    return "{" + ",".join([f'"{k}":{hist[k]}' for k in sorted(hist, key=int)]) + "}"  # type: ignore[index]


def loads(text: str | None) -> dict[int, int]:
    """Parse :func:`dumps` output (None or "" gives an empty histogram)."""
    if not text:
        return {}
    return {int(k): int(v) for k, v in json.loads(text).items()}


def merge_json(a: str | None, b: str | None) -> str | None:
    """Merge two stored histograms (registered as the SQL function ``iw_hist_merge``)."""
    if not a:
        return b
    if not b:
        return a
    merged = loads(a)
    for k, v in loads(b).items():
        merged[k] = merged.get(k, 0) + v
    return dumps(merged)


def merge_counts_json(a: str | None, b: str | None) -> str | None:
    """Merge two JSON ``{key: count}`` objects with text keys (errors by kind)."""
    if not a:
        return b
    if not b:
        return a
    merged: dict[str, int] = json.loads(a)
    for k, v in json.loads(b).items():
        merged[k] = merged.get(k, 0) + int(v)
    return json.dumps(merged, separators=(",", ":"), sort_keys=True)


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """Percentile ``q`` (0..100) of a histogram, interpolated like :func:`store.stats.percentile`.

    The values at the two ranks around ``q`` are replaced by their buckets' representative
    values; the result is therefore within one bucket of the exact percentile.

    Returns:
        The estimate, or None for an empty histogram.
    """
    return quantiles(hist, (q,))[0]


def quantiles(hist: Mapping[int, int], qs: Sequence[float]) -> list[float | None]:
    """:func:`quantile` for each of ``qs``, sorting and counting the histogram once."""
    items = sorted(hist.items())
    n = sum(c for _, c in items)
    if n == 0:
        return [None] * len(qs)
    out: list[float | None] = []
    for q in qs:
        rank = (q / 100.0) * (n - 1)
        lo = math.floor(rank)
        frac = rank - lo
        lo_value = _value_at(items, lo)
        hi_value = _value_at(items, min(lo + 1, n - 1))
        out.append(lo_value + (hi_value - lo_value) * frac)
    return out


def _value_at(items: list[tuple[int, int]], rank: int) -> float:
    seen = 0
    for index, count in items:
        seen += count
        if rank < seen:
            return bucket_value(index)
    return bucket_value(items[-1][0])


def sample(hist: Mapping[int, int], points: int = 200) -> list[float]:
    """Up to ``points`` representative values spread evenly over the histogram's ranks, in
    ascending order (for drawing its shape); one pass over the buckets."""
    items = sorted(hist.items())
    n = sum(c for _, c in items)
    if n == 0:
        return []
    k = min(points, n)
    span, parts = n - 1, max(k - 1, 1)
    out: list[float] = []
    j = 0
    seen = 0
    for index, count in items:
        seen += count  # ranks below ``seen`` fall in this bucket
        value = bucket_value(index)
        while j < k and round(j * span / parts) < seen:
            out.append(value)
            j += 1
    return out


def from_values(values: Iterable[float | None]) -> dict[int, int]:
    """A histogram of ``values`` (None skipped)."""
    hist: dict[int, int] = {}
    for v in values:
        add(hist, v)
    return hist

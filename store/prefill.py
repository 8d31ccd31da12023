"""TTFT at a feature's prompt size: the nearest measured size, interpolated between sizes.

The canary's TTFT is measured with a ~20-token prompt; a feature with a 5,000-token context
also pays prefill. Each long-prompt workload (``[[workloads]]``, kind ``workload``) is a
measured size point; the canary is the smallest one. For a feature's ``input_tokens``
:func:`ttft_at_size` uses, in order (docs/questions.md, "Long-prompt workloads"):

1. a point within ±10 % of it: that point's TTFT, as measured;
2. two points around it: the straight line between them (prefill grows about linearly with
   the prompt), saying so;
3. beyond the largest (or below the smallest) point: that point's TTFT, saying that the
   feature's prompt is larger (TTFT will be higher) or smaller. Nothing is extrapolated.

Each point is the median reported ``input_tokens`` and the TTFT P50/P99 of its successful,
non-cold probes (a cold start's TTFT is not prefill). Pure functions; the database reader
(:func:`size_points_window`) feeds them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlite_utils

from store.stats import percentile

#: A point this close (relative) to the feature's size counts as measured at that size.
SAME_SIZE = 0.10
CANARY = "canary"

Method = Literal["measured", "interpolated", "largest_measured", "smallest_measured"]


@dataclass(frozen=True, slots=True)
class SizePoint:
    """TTFT measured at one prompt size.

    Attributes:
        label: ``canary`` or the workload's name.
        input_tokens: median reported input size of its probes, tokens.
        ttft_p50_ms: median TTFT, ms.
        ttft_p99_ms: 99th-percentile TTFT, ms.
        samples: successful probes with a TTFT.
    """

    label: str
    input_tokens: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    samples: int


@dataclass(frozen=True, slots=True)
class SizedTtft:
    """TTFT for a prompt size, and where it comes from.

    Attributes:
        input_tokens: the size asked for, tokens.
        ttft_p50_ms: TTFT P50 at that size, ms.
        ttft_p99_ms: TTFT P99 at that size, ms.
        method: how it was obtained (see the module docstring).
        used: the point(s) used, smaller first.
        note: the same in words, e.g. ``interpolated between 1,000 (1k) and 10,000 (10k)
            input tokens``.
    """

    input_tokens: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    method: Method
    used: tuple[SizePoint, ...]
    note: str


def _size(point: SizePoint) -> str:
    return f"{point.input_tokens:,.0f} ({point.label})"


def ttft_at_size(points: Iterable[SizePoint], input_tokens: int) -> SizedTtft | None:
    """TTFT at ``input_tokens`` from measured size points (pure); None without any point."""
    ordered = sorted(points, key=lambda p: p.input_tokens)
    if not ordered:
        return None
    near = [p for p in ordered if abs(p.input_tokens - input_tokens) <= SAME_SIZE * input_tokens]
    if near:
        best = min(near, key=lambda p: abs(p.input_tokens - input_tokens))
        return SizedTtft(
            input_tokens,
            best.ttft_p50_ms,
            best.ttft_p99_ms,
            "measured",
            (best,),
            f"measured at {_size(best)} input tokens",
        )
    below = [p for p in ordered if p.input_tokens < input_tokens]
    above = [p for p in ordered if p.input_tokens > input_tokens]
    if below and above:
        lo, hi = below[-1], above[0]
        f = (input_tokens - lo.input_tokens) / (hi.input_tokens - lo.input_tokens)
        return SizedTtft(
            input_tokens,
            lo.ttft_p50_ms + f * (hi.ttft_p50_ms - lo.ttft_p50_ms),
            lo.ttft_p99_ms + f * (hi.ttft_p99_ms - lo.ttft_p99_ms),
            "interpolated",
            (lo, hi),
            f"interpolated between {_size(lo)} and {_size(hi)} input tokens",
        )
    if below:
        top = below[-1]
        return SizedTtft(
            input_tokens,
            top.ttft_p50_ms,
            top.ttft_p99_ms,
            "largest_measured",
            (top,),
            f"at {_size(top)} input tokens, the largest measured: the feature's "
            f"{input_tokens:,} will take longer",
        )
    bottom = above[0]
    return SizedTtft(
        input_tokens,
        bottom.ttft_p50_ms,
        bottom.ttft_p99_ms,
        "smallest_measured",
        (bottom,),
        f"at {_size(bottom)} input tokens, the smallest measured: the feature's "
        f"{input_tokens:,} may be a little faster",
    )


def size_points(rows: Iterable[Mapping[str, Any]]) -> list[SizePoint]:
    """Size points from probe rows (``kind``, ``workload``, ``status``, ``ttft_ms``,
    ``input_tokens``, ``cold``), one per canary / workload, smallest first (pure).

    Only successful, non-cold probes with a TTFT and a reported input size count; other
    kinds (cache checks, the cold schedule) are not prefill measurements.
    """
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        kind = row.get("kind") or CANARY
        if kind == CANARY:
            label = CANARY
        elif kind == "workload" and row.get("workload"):
            label = str(row["workload"])
        else:
            continue
        if row.get("status") != "ok" or row.get("cold"):
            continue
        ttft, size = row.get("ttft_ms"), row.get("input_tokens")
        if ttft is None or size is None:
            continue
        ttfts, sizes = groups.setdefault(label, ([], []))
        ttfts.append(float(ttft))
        sizes.append(float(size))
    points = []
    for label, (ttfts, sizes) in groups.items():
        ordered = sorted(ttfts)
        p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
        assert p50 is not None and p99 is not None
        points.append(SizePoint(label, statistics.median(sizes), p50, p99, len(ttfts)))
    return sorted(points, key=lambda p: p.input_tokens)


def size_points_window(
    db: sqlite_utils.Database, target: str, since: str, until: str
) -> list[SizePoint]:
    """:func:`size_points` of one target's probes with ``since <= started_at <= until``."""
    rows = db.query(
        "SELECT kind, workload, status, ttft_ms, input_tokens, cold FROM probes "
        "WHERE target = ? AND started_at >= ? AND started_at <= ?",
        [target, since, until],
    )
    return size_points(rows)

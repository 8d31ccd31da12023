"""Cold starts from stored probes: warm and cold TTFT apart, the cold-start rate, the penalty.

Probes carry ``cold`` (see :mod:`probes.coldstart`): true after an idle period longer than
the target's ``scaledown_window_s``, false after a shorter one, null when unknown. Mixing
them hides both numbers (a 300 ms warm P50 and 40 % cold starts of 9 s make a P95 that
describes neither), so :func:`cold_start_stats` keeps them apart (pure, over rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from store.stats import percentile


@dataclass(frozen=True, slots=True)
class TtftSummary:
    """TTFT percentiles of one set of successful probes (ms); None without samples."""

    samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


def _summary(values: list[float]) -> TtftSummary:
    ordered = sorted(values)
    return TtftSummary(
        len(ordered), percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)
    )


@dataclass(frozen=True, slots=True)
class ColdStartStats:
    """Warm and cold TTFT, kept apart.

    Attributes:
        warm: successful probes with ``cold`` false.
        cold: successful probes with ``cold`` true.
        probes: probes whose ``cold`` is known (failures included: a cold start that times
            out is still a cold start).
        cold_probes: of them, cold.
        unknown: probes whose ``cold`` is null (no window configured, or the first probe
            after a prober start).
        cold_start_rate: ``cold_probes / probes``, or None without known probes.
        cold_penalty_ms: cold P50 − warm P50, ms, or None when either is missing.
        cold_penalty_p95_ms: cold P95 − warm P95, ms, or None.
    """

    warm: TtftSummary
    cold: TtftSummary
    probes: int
    cold_probes: int
    unknown: int
    cold_start_rate: float | None
    cold_penalty_ms: float | None
    cold_penalty_p95_ms: float | None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def cold_start_stats(rows: Iterable[Mapping[str, Any]]) -> ColdStartStats:
    """Warm/cold TTFT percentiles, cold-start rate and penalty from probe rows with ``status``,
    ``ttft_ms`` and ``cold`` (0/1/None or a bool) (pure)."""
    warm: list[float] = []
    cold: list[float] = []
    known = cold_n = unknown = 0
    for row in rows:
        flag = row.get("cold")
        if flag is None:
            unknown += 1
            continue
        known += 1
        cold_n += bool(flag)
        ttft = row.get("ttft_ms")
        if row.get("status") == "ok" and ttft is not None:
            (cold if flag else warm).append(float(ttft))
    w, c = _summary(warm), _summary(cold)
    return ColdStartStats(
        warm=w,
        cold=c,
        probes=known,
        cold_probes=cold_n,
        unknown=unknown,
        cold_start_rate=cold_n / known if known else None,
        cold_penalty_ms=_diff(c.p50_ms, w.p50_ms),
        cold_penalty_p95_ms=_diff(c.p95_ms, w.p95_ms),
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def cold_text(stats: ColdStartStats) -> str:
    """One line: ``cold 12 % of 50 probes · P50 cold 4.2 s vs warm 310 ms (+3.9 s)``."""
    if stats.cold_start_rate is None:
        return "cold starts: – (no scaledown_window_s, or no probe yet)"
    rate = f"cold {stats.cold_start_rate * 100:.0f} % of {stats.probes} probes"
    penalty = stats.cold_penalty_ms
    sign = "+" if penalty is not None and penalty >= 0 else "−"
    extra = f" ({sign}{_ms(abs(penalty))})" if penalty is not None else ""
    return f"{rate} · P50 cold {_ms(stats.cold.p50_ms)} vs warm {_ms(stats.warm.p50_ms)}{extra}"

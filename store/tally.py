"""The one reduction of probes into figures: counts, errors by kind, histograms, sums.

Every path that summarises probes goes through :class:`Tally`, so they cannot disagree:

* the rollup writer (:mod:`store.rollups`) tallies each minute's probes of a target and stores
  the tally as a rollup row (hour and day rows are sums of minute tallies);
* a long dashboard window (:mod:`store.rollup_window`) adds stored rollup rows, signed, and
  tallies the probes not rolled up yet;
* a short window (:mod:`store.raw_window`) tallies raw rows and keeps the exact values, for
  exact percentiles;
* the cost screen's measurements (:mod:`store.costs`) tally a target's raw rows the same way.

:meth:`Tally.figures` turns a tally into the :class:`WindowFigures` the dashboard shows. The
definitions (docs/metrics.md, "Which samples feed which statistics"): latency, decode rate,
cost and cache figures use successful probes only; failures count in the error rate, by kind.
A failed probe whose row carries no error kind (a row written by an older or foreign writer;
the runner always classifies) is counted under :data:`UNKNOWN_KIND`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from store import histogram
from store.outage import Outcome, classify
from store.stats import median, percentile

#: The kind a failure without an error kind is counted under (docs/metrics.md, "Samples").
UNKNOWN_KIND = "unknown"

#: The probe fields a tally reads, in this order, at the start of every row it is given.
TALLY_FIELDS: tuple[str, ...] = (
    "status",
    "error_kind",
    "ttft_ms",
    "total_ms",
    "decode_tps",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cost_usd",
)
#: The same as an SQL select list.
TALLY_COLUMNS = ", ".join(TALLY_FIELDS)

#: Values kept to draw a distribution from histograms (spread over their quantiles).
SAMPLE_POINTS = 100

#: A histogram as tallies keep it: bucket index as text (as in the stored JSON) -> count.
Hist = dict[str, int]


def error_label(kind: str | None) -> str:
    """The key a failed probe is counted under in errors by kind."""
    return kind or UNKNOWN_KIND


def add_counts(into: dict[str, int], counts: Mapping[str, int], sign: int = 1) -> None:
    """Add ``sign × counts`` into ``into`` key by key (histograms and errors by kind)."""
    get = into.get
    for k, n in counts.items():
        into[k] = get(k, 0) + sign * n


@dataclass(slots=True)
class Samples:
    """The exact values of a tally's successful probes (kept only when asked for)."""

    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)
    input_tokens: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Tally:
    """Counts, histograms and sums of some probes of one target.

    Attributes:
        probes: probes counted (successful and failed).
        ok: successful probes.
        errors: failed probes by error kind (:func:`error_label`).
        ttft: histogram of successful probes' ``ttft_ms`` (:mod:`store.histogram` buckets).
        total: histogram of their ``total_ms``.
        tps: histogram of their ``decode_tps``.
        ttft_sum, ttft_n: sum (ms) and count of those TTFTs (means for trends).
        total_sum, total_n: the same for ``total_ms``.
        tps_sum, tps_n: the same for ``decode_tps`` (tokens/s).
        input_tokens, output_tokens: token totals of successful probes that reported them.
        cache_read_tokens, cache_input_tokens: cached input tokens, and the input tokens of the
            probes that reported a cache count (the cache share is their ratio).
        cost_usd, cost_n: total cost (USD) of the successful probes with a known cost, and
            how many there were.
        samples: the exact values, when the tally keeps them (:meth:`exact`); histograms are
            then left empty.
    """

    probes: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ttft: Hist = field(default_factory=dict)
    total: Hist = field(default_factory=dict)
    tps: Hist = field(default_factory=dict)
    ttft_sum: float = 0.0
    ttft_n: int = 0
    total_sum: float = 0.0
    total_n: int = 0
    tps_sum: float = 0.0
    tps_n: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_input_tokens: int = 0
    cost_usd: float = 0.0
    cost_n: int = 0
    samples: Samples | None = None

    @classmethod
    def exact(cls) -> Tally:
        """A tally that keeps every value (exact percentiles) instead of histograms."""
        return cls(samples=Samples())

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Count probe rows that start with the :data:`TALLY_COLUMNS` values.

        Column by column over the rows rather than row by row: a dashboard window tallies
        thousands of rows per refresh.
        """
        self.probes += len(rows)
        ok = [r for r in rows if r[0] == "ok"]
        self.ok += len(ok)
        if len(ok) != len(rows):
            errors = self.errors
            for r in rows:
                if r[0] != "ok":
                    key = r[1] or UNKNOWN_KIND
                    errors[key] = errors.get(key, 0) + 1
        ttft = [v for r in ok if (v := r[2]) is not None]
        total = [v for r in ok if (v := r[3]) is not None]
        tps = [v for r in ok if (v := r[4]) is not None]
        self.ttft_sum += sum(ttft)
        self.ttft_n += len(ttft)
        self.total_sum += sum(total)
        self.total_n += len(total)
        self.tps_sum += sum(tps)
        self.tps_n += len(tps)
        if self.samples is not None:
            self.samples.ttft_ms += ttft
            self.samples.total_ms += total
            self.samples.decode_tps += tps
            self.samples.input_tokens += [v for r in ok if (v := r[5]) is not None]
        else:
            for hist, values in ((self.ttft, ttft), (self.total, total), (self.tps, tps)):
                for v in values:
                    if v == v:  # NaN never has a bucket
                        k = str(histogram.bucket_index(v))
                        hist[k] = hist.get(k, 0) + 1
        for r in ok:
            inp = r[5]
            if inp is not None:
                self.input_tokens += inp
                if r[7] is not None:
                    self.cache_read_tokens += r[7]
                    self.cache_input_tokens += inp
            if r[6] is not None:
                self.output_tokens += r[6]
            if r[8] is not None:
                self.cost_usd += r[8]
                self.cost_n += 1

    def add(self, other: Tally, sign: int = 1) -> None:
        """Add ``sign × other`` into this tally (``other`` is left as it is)."""
        self.probes += sign * other.probes
        self.ok += sign * other.ok
        for mine, theirs in (
            (self.errors, other.errors),
            (self.ttft, other.ttft),
            (self.total, other.total),
            (self.tps, other.tps),
        ):
            add_counts(mine, theirs, sign)
        self.ttft_sum += sign * other.ttft_sum
        self.ttft_n += sign * other.ttft_n
        self.total_sum += sign * other.total_sum
        self.total_n += sign * other.total_n
        self.tps_sum += sign * other.tps_sum
        self.tps_n += sign * other.tps_n
        self.input_tokens += sign * other.input_tokens
        self.output_tokens += sign * other.output_tokens
        self.cache_read_tokens += sign * other.cache_read_tokens
        self.cache_input_tokens += sign * other.cache_input_tokens
        self.cost_usd += sign * other.cost_usd
        self.cost_n += sign * other.cost_n

    def add_json(self, into: dict[str, int], arrays: str | None, sign: int = 1) -> None:
        """Add a JSON array of stored ``{key: count}`` objects (SQLite's ``group_concat`` of a
        histogram or errors column) into one of this tally's count maps."""
        if not arrays:  # every row NULL: group_concat gives NULL
            return
        get = into.get
        for counts in json.loads(arrays):
            if not into and sign > 0:
                into.update(counts)  # the first object: a copy, no per-key adds
                continue
            # Inlined (not add_counts): a long window adds tens of thousands of these objects.
            for k, n in counts.items():
                into[k] = get(k, 0) + sign * n

    def figures(self) -> WindowFigures:
        """The figures of these probes (exact when the tally kept its values)."""
        ranked = rank_errors(self.errors)
        errors = self.probes - self.ok
        common: dict[str, Any] = {
            "count": self.probes,
            "errors": errors,
            "error_rate": errors / self.probes if self.probes > 0 else None,
            "errors_by_kind": ranked,
            "top_error_kind": next(iter(ranked), None),
            "cost_per_request_usd": self.cost_usd / self.cost_n if self.cost_n else None,
            "cache_hit_share": (
                self.cache_read_tokens / self.cache_input_tokens
                if self.cache_input_tokens
                else None
            ),
        }
        if self.samples is not None:
            ttft = sorted(self.samples.ttft_ms)
            total = sorted(self.samples.total_ms)
            tps = sorted(self.samples.decode_tps)
            return WindowFigures(
                **common,
                ttft_p50_ms=percentile(ttft, 50),
                ttft_p95_ms=percentile(ttft, 95),
                ttft_p99_ms=percentile(ttft, 99),
                total_p50_ms=percentile(total, 50),
                total_p95_ms=percentile(total, 95),
                total_p99_ms=percentile(total, 99),
                decode_tps_p50=percentile(tps, 50),
                ttft_values_ms=tuple(ttft),
                total_values_ms=tuple(total),
                tps_values=tuple(tps),
                from_rollups=False,
            )
        # Bucket keys back to integers; a subtracted edge may have emptied some buckets.
        ttft_h = _int_keys(self.ttft)
        total_h = _int_keys(self.total)
        t50, t95, t99 = histogram.quantiles(ttft_h, (50, 95, 99))
        o50, o95, o99 = histogram.quantiles(total_h, (50, 95, 99))
        return WindowFigures(
            **common,
            ttft_p50_ms=t50,
            ttft_p95_ms=t95,
            ttft_p99_ms=t99,
            total_p50_ms=o50,
            total_p95_ms=o95,
            total_p99_ms=o99,
            decode_tps_p50=histogram.quantile(_int_keys(self.tps), 50),
            ttft_values_ms=tuple(histogram.sample(ttft_h, SAMPLE_POINTS)),
            # Sampling costs ~70 µs per histogram and target; nothing draws a TPS
            # distribution from rollups, so its samples are only kept for raw windows.
            total_values_ms=tuple(histogram.sample(total_h, SAMPLE_POINTS)),
            tps_values=(),
            from_rollups=True,
        )

    def input_tokens_p50(self) -> float | None:
        """Median prompt size of the successful probes (exact tallies only, else None)."""
        return median(self.samples.input_tokens) if self.samples is not None else None


#: Ties between error kinds go to the one that says most about the provider's health.
_OUTCOME_RANK = {
    Outcome.FAILURE: 0,
    Outcome.CONNECT: 1,
    Outcome.RATE_LIMITED: 2,
    Outcome.IGNORED: 3,
    Outcome.OK: 4,
}


def _kind_rank(item: tuple[str, int]) -> tuple[int, int, str]:
    """Sort key of errors by kind: most failures first; on a tie the provider-side kind
    (down before rate limited before our own faults), then the name. The same on every path:
    a raw window and its rollups list the same top kind."""
    kind, n = item
    return (-n, _OUTCOME_RANK[classify("error", kind)], kind)


def rank_errors(counts: Mapping[str, int]) -> dict[str, int]:
    """Failures by kind, most frequent first (ties: :func:`_kind_rank`); empty kinds dropped."""
    return dict(sorted(((k, n) for k, n in counts.items() if n > 0), key=_kind_rank))


def _int_keys(hist: Hist) -> dict[int, int]:
    return {int(k): n for k, n in hist.items() if n > 0}


def tally_rows(rows: Iterable[Sequence[Any]], exact: bool = False) -> Tally:
    """A tally of rows that start with the :data:`TALLY_COLUMNS` values."""
    t = Tally.exact() if exact else Tally()
    t.add_rows(list(rows))
    return t


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowFigures:
    """What the dashboard shows of some probes of one target (from :meth:`Tally.figures`).

    Durations in ms, rates in tokens/s, costs in USD; None when no sample could give the
    figure. Percentiles are linear-interpolated over the exact values (raw windows) or read
    from merged histograms, within one bucket (9 %) of the exact ones (rollup windows).

    Attributes:
        count: probes.
        errors: failed probes.
        error_rate: ``errors / count`` (0..1), None without probes.
        errors_by_kind: failures per kind, most frequent first (:func:`rank_errors`).
        top_error_kind: the first of them, None without failures.
        ttft_p50_ms, ttft_p95_ms, ttft_p99_ms: TTFT percentiles of successful probes.
        total_p50_ms, total_p95_ms, total_p99_ms: total-time percentiles of successful probes.
        decode_tps_p50: median decode rate of successful probes.
        cost_per_request_usd: mean cost of the successful probes with a known cost.
        cache_hit_share: cached input tokens / input tokens (probes that reported both).
        ttft_values_ms, total_values_ms: the sorted values, or up to :data:`SAMPLE_POINTS`
            values spread over the histogram's quantiles (the same shape).
        tps_values: sorted decode rates (exact tallies only; empty from histograms).
        from_rollups: True when the figures come from histograms.
    """

    count: int = 0
    errors: int = 0
    error_rate: float | None = None
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    top_error_kind: str | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    total_p50_ms: float | None = None
    total_p95_ms: float | None = None
    total_p99_ms: float | None = None
    decode_tps_p50: float | None = None
    cost_per_request_usd: float | None = None
    cache_hit_share: float | None = None
    ttft_values_ms: tuple[float, ...] = ()
    total_values_ms: tuple[float, ...] = ()
    tps_values: tuple[float, ...] = ()
    from_rollups: bool = False


#: The figures of a window without probes.
NO_FIGURES = WindowFigures()

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
from store.stats import median, percentile

#: The kind a failure without an error kind is counted under (docs/metrics.md, "Samples").
UNKNOWN_KIND = "unknown"

#: The probe kind the headline figures count (``probes.record.ProbeRecord.kind``): the short
#: default prompt on the target's interval. Cache checks, long-prompt workloads and the cold
#: schedule answer their own questions (docs/questions.md, "Probe kinds"); a 10k-token
#: prefill is not a canary's latency.
CANARY = "canary"
#: The same as an SQL condition on ``probes`` (a literal: the planner keeps its indexes).
CANARY_SQL = "kind = 'canary'"

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

        One pass with the sums in local variables (unrolled per column: the rollup writer
        calls it for every minute of every target, a dashboard window for thousands of rows
        per refresh).
        """
        errors, kept = self.errors, self.samples
        th, oh, ph = self.ttft, self.total, self.tps
        bucket = histogram.bucket_key
        ttft_sum = total_sum = tps_sum = cost = 0.0
        ok = ttft_n = total_n = tps_n = cost_n = 0
        input_tokens = output_tokens = cache_read = cache_input = 0
        for r in rows:
            if r[0] != "ok":
                key = r[1] or UNKNOWN_KIND
                errors[key] = errors.get(key, 0) + 1
                continue
            ok += 1
            if (v := r[2]) is not None:
                ttft_sum += v
                ttft_n += 1
                if kept is not None:
                    kept.ttft_ms.append(v)
                elif v == v:  # NaN never has a bucket
                    k = bucket(v)
                    th[k] = th.get(k, 0) + 1
            if (v := r[3]) is not None:
                total_sum += v
                total_n += 1
                if kept is not None:
                    kept.total_ms.append(v)
                elif v == v:
                    k = bucket(v)
                    oh[k] = oh.get(k, 0) + 1
            if (v := r[4]) is not None:
                tps_sum += v
                tps_n += 1
                if kept is not None:
                    kept.decode_tps.append(v)
                elif v == v:
                    k = bucket(v)
                    ph[k] = ph.get(k, 0) + 1
            if (inp := r[5]) is not None:
                input_tokens += inp
                if kept is not None:
                    kept.input_tokens.append(inp)
                if r[7] is not None:
                    cache_read += r[7]
                    cache_input += inp
            if r[6] is not None:
                output_tokens += r[6]
            if r[8] is not None:
                cost += r[8]
                cost_n += 1
        self.probes += len(rows)
        self.ok += ok
        self.ttft_sum += ttft_sum
        self.ttft_n += ttft_n
        self.total_sum += total_sum
        self.total_n += total_n
        self.tps_sum += tps_sum
        self.tps_n += tps_n
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cache_read_tokens += cache_read
        self.cache_input_tokens += cache_input
        self.cost_usd += cost
        self.cost_n += cost_n

    def add(self, other: Tally) -> None:
        """Add ``other`` into this tally (``other`` is left as it is)."""
        # Field by field, not a loop over fields(): the rollup writer adds two tallies per
        # minute of every target, the dashboard one per target per refresh.
        self.probes += other.probes
        self.ok += other.ok
        for mine, theirs in (
            (self.errors, other.errors),
            (self.ttft, other.ttft),
            (self.total, other.total),
            (self.tps, other.tps),
        ):
            if not mine:
                mine.update(theirs)  # an empty map: a copy, no per-key adds
                continue
            get = mine.get
            for k, n in theirs.items():
                mine[k] = get(k, 0) + n
        self.ttft_sum += other.ttft_sum
        self.ttft_n += other.ttft_n
        self.total_sum += other.total_sum
        self.total_n += other.total_n
        self.tps_sum += other.tps_sum
        self.tps_n += other.tps_n
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_input_tokens += other.cache_input_tokens
        self.cost_usd += other.cost_usd
        self.cost_n += other.cost_n

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
            # Inlined: a long window adds tens of thousands of these objects.
            for k, n in counts.items():
                into[k] = get(k, 0) + sign * n

    def figures(self) -> WindowFigures:
        """The figures of these probes (exact when the tally kept its values)."""
        qs = (50.0, 95.0, 99.0)
        if self.samples is not None:
            ttft = sorted(self.samples.ttft_ms)
            total = sorted(self.samples.total_ms)
            tps = sorted(self.samples.decode_tps)
            ttft_q = [percentile(ttft, q) for q in qs]
            total_q = [percentile(total, q) for q in qs]
            tps_p50 = percentile(tps, 50)
            values = (tuple(ttft), tuple(total), tuple(tps))
        else:
            # Bucket keys back to integers; a subtracted edge may have emptied some buckets.
            ttft_h, total_h = _int_keys(self.ttft), _int_keys(self.total)
            ttft_q = histogram.quantiles(ttft_h, qs)
            total_q = histogram.quantiles(total_h, qs)
            tps_p50 = histogram.quantile(_int_keys(self.tps), 50)
            # Sampling costs ~70 µs per histogram and target; nothing draws a TPS distribution
            # from rollups, so its samples are only kept for raw windows.
            values = (
                tuple(histogram.sample(ttft_h, SAMPLE_POINTS)),
                tuple(histogram.sample(total_h, SAMPLE_POINTS)),
                (),
            )
        ranked = rank_errors(self.errors)
        errors = self.probes - self.ok
        return WindowFigures(
            count=self.probes,
            errors=errors,
            error_rate=errors / self.probes if self.probes > 0 else None,
            errors_by_kind=ranked,
            top_error_kind=next(iter(ranked), None),
            ttft_p50_ms=ttft_q[0],
            ttft_p95_ms=ttft_q[1],
            ttft_p99_ms=ttft_q[2],
            total_p50_ms=total_q[0],
            total_p95_ms=total_q[1],
            total_p99_ms=total_q[2],
            decode_tps_p50=tps_p50,
            cost_per_request_usd=self.cost_usd / self.cost_n if self.cost_n else None,
            cache_hit_share=(
                self.cache_read_tokens / self.cache_input_tokens
                if self.cache_input_tokens
                else None
            ),
            ttft_values_ms=values[0],
            total_values_ms=values[1],
            tps_values=values[2],
            from_rollups=self.samples is None,
        )

    def input_tokens_p50(self) -> float | None:
        """Median prompt size of the successful probes (exact tallies only, else None)."""
        return median(self.samples.input_tokens) if self.samples is not None else None


#: Ties between error kinds go to the one that says most about the provider's health (by
#: ``store.outage.Outcome``, a string enum).
_OUTCOME_RANK = {"failure": 0, "connect": 1, "rate_limited": 2, "ignored": 3, "ok": 4}


def _kind_rank(item: tuple[str, int]) -> tuple[int, int, str]:
    """Sort key of errors by kind: most failures first; on a tie the provider-side kind
    (down before rate limited before our own faults), then the name. The same on every path:
    a raw window and its rollups list the same top kind."""
    # Imported on first use: the outage rules load the config models (pydantic), which the
    # dashboard's first paint (summary types, no figures yet) does without.
    from store.outage import classify

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

"""The shared measurement core: time points of one stream and the metrics derived from them.

Every dialect feeds the same :class:`StreamMeasurement`, so TTFT, TPS and token rules
(docs/metrics.md §1–§4) are implemented once. It never reads a clock itself: the runner passes the
``perf_counter`` reading taken when each event's bytes were read (before any parsing), which
keeps it pure and testable with injected times (docs/field-cases.md FC-10).

Work is linear: :meth:`StreamMeasurement.on_event` is O(1) per event (the largest number of
tokens completed by one transport read is kept as a running count, since reads arrive in
order) and :meth:`StreamMeasurement.derive` walks the token stamps once (plus the sort of
the median gap). A stream of 100,000 one-token reads costs 100,000 steps, not 10^10.
Numbers a provider reports (usage, charge, server timings) that are out of range become
None here, before anything is derived from them, and are named in ``out_of_range``.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from itertools import pairwise

from probes.dialects.base import ParsedEvent, Usage
from probes.errors import ErrorKind
from probes.sanitize import in_range

#: Usage attribute -> record field it lands in (the same names).
_USAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))

#: Below this first→last token window a decode rate is noise (docs/metrics.md §3).
MIN_DECODE_WINDOW_S = 0.010
#: A stream is "buffered" when this share of token events completed in one transport read.
BUFFERED_SHARE = 0.9
#: A provider-reported model load time (Ollama ``load_duration``) at least this long means the
#: model was loaded cold inside this request's TTFT (a warm load reports a few ms).
COLD_LOAD_MIN_MS = 100.0


@dataclass(slots=True)
class DerivedMetrics:
    """Metrics computed at the end of a stream; all durations in ms, rates in tokens/s."""

    ttft_ms: float | None = None
    ttfat_ms: float | None = None
    decode_tps: float | None = None
    e2e_output_tps: float | None = None
    itl_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_max_ms: float | None = None
    buffered: bool = False
    reasoning_hidden: bool = False
    no_visible_output: bool = False
    usage_inconsistent: bool = False
    cold_load: bool = False
    usage: Usage = field(default_factory=Usage)
    usage_source: str = "none"


@dataclass(slots=True)
class StreamMeasurement:
    """Accumulates one stream's events with their monotonic arrival times (seconds).

    Attributes:
        t0: ``perf_counter()`` right before the request was handed to httpx.
        token_times: arrival time of each token-bearing event, in order.
        most_tokens_one_read: the largest number of token events one transport read
            completed (a buffered stream completes nearly all of them in one).
        out_of_range: record field names whose provider value was out of range (dropped).
    """

    t0: float
    t_headers: float | None = None
    t_first_token: float | None = None
    t_first_answer: float | None = None
    t_last_token: float | None = None
    token_times: list[float] = field(default_factory=list)
    most_tokens_one_read: int = 0
    _read: int = -1  # read index of the latest token event
    _tokens_this_read: int = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    saw_terminal: bool = False
    t_terminal: float | None = None
    saw_reasoning_text: bool = False
    answer_chars: int = 0
    keepalives: int = 0
    request_id: str | None = None
    upstream_provider: str | None = None
    provider_cost_usd: float | None = None
    server_timings_ms: dict[str, float] = field(default_factory=dict)
    response_model: str | None = None
    stop_kind: ErrorKind | None = None
    out_of_range: set[str] = field(default_factory=set)

    def on_headers(self, now: float) -> None:
        """Stamp the arrival of the response headers."""
        self.t_headers = now

    def on_event(self, now: float, read_index: int, event: ParsedEvent) -> None:
        """Record one parsed event whose bytes were read at ``now`` by read ``read_index``
        (read indices never decrease). O(1) apart from copying the event's own numbers."""
        if event.has_token:
            if self.t_first_token is None:
                self.t_first_token = now
            self.t_last_token = now
            self.token_times.append(now)
            if read_index == self._read:
                self._tokens_this_read += 1
            else:
                self._read, self._tokens_this_read = read_index, 1
            if self._tokens_this_read > self.most_tokens_one_read:
                self.most_tokens_one_read = self._tokens_this_read
        if event.answer and self.t_first_answer is None:
            self.t_first_answer = now
        self.answer_chars += len(event.answer)
        if event.reasoning or event.opaque_reasoning:
            self.saw_reasoning_text = True
        if event.usage is not None:
            # Cumulative usage is replaced, never summed (FC-04).
            self.usage = self._checked_usage(event.usage)
        if event.finish_reason:
            self.finish_reason = event.finish_reason
        if event.terminal or event.final:
            self.saw_terminal = True
        self.request_id = event.request_id or self.request_id
        self.upstream_provider = event.upstream_provider or self.upstream_provider
        if event.provider_cost_usd is not None:
            if in_range(event.provider_cost_usd):
                self.provider_cost_usd = event.provider_cost_usd
            else:
                self.out_of_range.add("provider_cost_usd")
        if event.server_timings_ms:
            for key, value in event.server_timings_ms.items():
                if in_range(value):
                    self.server_timings_ms[key] = value
                else:
                    self.out_of_range.add(f"server_{key}_ms")
        if event.response_model:
            self.response_model = event.response_model
        if event.stop_kind is not None:
            self.stop_kind = event.stop_kind

    def _checked_usage(self, usage: Usage) -> Usage:
        """``usage`` with counts out of range (``10**20``) as None, named in out_of_range."""
        bad = [n for n in _USAGE_FIELDS if (v := getattr(usage, n)) is not None and not in_range(v)]
        if not bad:
            return usage
        self.out_of_range.update(bad)
        return dataclasses.replace(usage, **{n: None for n in bad})

    @property
    def has_token(self) -> bool:
        """True once any token-bearing event arrived."""
        return self.t_first_token is not None

    def derive(self, t_end: float) -> DerivedMetrics:
        """Compute the metrics of docs/metrics.md for a stream that ended at ``t_end``."""
        m = DerivedMetrics()
        ms = 1000.0
        if self.t_first_token is not None:
            m.ttft_ms = (self.t_first_token - self.t0) * ms
        if self.t_first_answer is not None:
            m.ttfat_ms = (self.t_first_answer - self.t0) * ms
        total_s = t_end - self.t0

        usage = self.usage or Usage()
        # usage_source says where output_tokens came from. Partial usage (Anthropic's input
        # side from message_start when the stream failed before message_delta, Ollama without
        # eval_count) keeps its input buckets but its output stays null: "none".
        m.usage_source = "reported" if usage.output_tokens is not None else "none"
        if usage.output_tokens == 0 and self.has_token:
            # Usage of 0 while tokens streamed contradicts the stream (FC-03 variant B).
            m.usage_inconsistent = True
            usage = Usage(usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
            m.usage_source = "none"
        m.usage = usage

        # One pass over the stamps: the gaps (for their median and max) and the window.
        times = self.token_times
        gaps = [b - a for a, b in pairwise(times)]
        if gaps:
            m.itl_p50_ms = statistics.median(gaps) * ms
            m.itl_max_ms = max(gaps) * ms

        n_tokens = len(times)
        if n_tokens >= 2:
            window = self.t_last_token - self.t_first_token  # type: ignore[operator]
            same_read = self.most_tokens_one_read
            m.buffered = window < MIN_DECODE_WINDOW_S or same_read >= BUFFERED_SHARE * n_tokens

        out = usage.output_tokens
        reasoning = usage.reasoning_tokens or 0
        m.reasoning_hidden = reasoning > 0 and not self.saw_reasoning_text and self.has_token
        if out is not None and total_s > 0:
            m.e2e_output_tps = out / total_s
        if out is not None and self.t_first_token is not None and self.t_last_token is not None:
            delivered = out - reasoning if m.reasoning_hidden else out
            window = self.t_last_token - self.t_first_token
            if delivered >= 2 and window >= MIN_DECODE_WINDOW_S and not m.buffered:
                m.decode_tps = (delivered - 1) / window
                m.itl_ms = ms / m.decode_tps
        m.no_visible_output = self.has_token and self.t_first_answer is None
        load_ms = self.server_timings_ms.get("load")
        m.cold_load = load_ms is not None and load_ms >= COLD_LOAD_MIN_MS
        return m

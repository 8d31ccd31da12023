"""The probe record: one row per probe, the public schema of the database, CSV and ``--json``.

Names, units and null rules follow docs/metrics.md. The field order here is the
column order of the CSV export; :data:`FIELD_DOCS` documents every field and
``docs/fields.md`` is generated from it (a test keeps them in step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "error"]


@dataclass(slots=True)
class ProbeRecord:
    """One finished probe. Durations in ms from ``time.perf_counter``; ``None`` means unknown.

    No field is ever ``inf``, NaN, negative or a sentinel: what cannot be computed is ``None``.
    A number the provider sent out of range is ``None`` too and named in
    ``out_of_range_fields`` (``probes.sanitize``).
    """

    started_at: str
    target: str
    provider: str
    model: str
    status: Status
    error_kind: str | None = None
    http_status: int | None = None
    error_message: str | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    ttfat_ms: float | None = None
    total_ms: float | None = None
    decode_tps: float | None = None
    e2e_output_tps: float | None = None
    itl_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_max_ms: float | None = None
    token_events: int = 0
    input_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_source: str = "none"
    finish_reason: str | None = None
    cost_usd: float | None = None
    cost_source: str | None = None
    provider_cost_usd: float | None = None
    cost_mismatch: bool | None = None
    request_id: str | None = None
    upstream_provider: str | None = None
    conn_reused: bool | None = None
    buffered: bool = False
    reasoning_hidden: bool = False
    no_visible_output: bool = False
    usage_inconsistent: bool = False
    retry_after_s: float | None = None
    ratelimit_remaining_requests: int | None = None
    ratelimit_remaining_tokens: int | None = None
    ratelimit_reset_requests_s: float | None = None
    ratelimit_reset_tokens_s: float | None = None
    server_queue_ms: float | None = None
    server_load_ms: float | None = None
    server_prefill_ms: float | None = None
    server_decode_ms: float | None = None
    server_total_ms: float | None = None
    # Issue #13 (docs/questions.md): probe kinds, cold starts, Replicate's own figures.
    kind: str = "canary"
    workload: str | None = None
    idle_s: float | None = None
    cold: bool | None = None
    server_ttft_ms: float | None = None
    server_predict_ms: float | None = None
    vantage: str | None = None
    out_of_range_fields: str | None = None
    # Appended, issues 9 then 15: the column order is public (docs/fields.md).
    response_model: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    cost_estimate_usd: float | None = None
    cold_load: bool = False
    start_late_ms: float | None = None
    loop_lag_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a plain dict in schema order (JSON- and DB-ready)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ProbeRecord))

#: name -> (unit, definition). Units: "" for text and flags.
FIELD_DOCS: dict[str, tuple[str, str]] = {
    "started_at": ("UTC ISO 8601", "wall-clock time the probe started; never subtracted"),
    "target": ("", "the target's unique name from the config"),
    "provider": ("", "provider name from the config (e.g. openai, groq, openai-compatible)"),
    "model": ("", "model id sent in the request"),
    "status": ("", "ok, or error (then error_kind says why)"),
    "response_model": (
        "",
        "model that actually answered, as the stream names it (OpenAI model, Anthropic "
        "message.model, Gemini modelVersion, Ollama model; OTel gen_ai.response.model); "
        "routers and aliases differ from the requested model",
    ),
    "error_kind": ("", "failure class, one of the closed set in docs/fields.md#error-kinds"),
    "http_status": ("", "HTTP status of the response, when one arrived (200 for in-stream errors)"),
    "error_message": (
        "",
        "short provider or network message, secrets redacted, control characters escaped "
        "(`\\x1b`), <= 300 chars",
    ),
    "ttfb_ms": ("ms", "request sent -> response headers received (includes connection setup)"),
    "ttft_ms": ("ms", "request sent -> first event carrying a generated token of any channel"),
    "ttfat_ms": ("ms", "request sent -> first event carrying visible answer text"),
    "total_ms": ("ms", "request sent -> terminal marker processed or the failure"),
    "decode_tps": (
        "tokens/s",
        "(output_tokens - 1) / (t_last_token - t_first_token); null below 2 tokens, "
        "a 10 ms window, unreported usage or a buffered stream",
    ),
    "e2e_output_tps": ("tokens/s", "output_tokens / total time, TTFT included"),
    "itl_ms": ("ms/token", "mean inter-token latency, 1000 / decode_tps"),
    "itl_p50_ms": ("ms", "median gap between consecutive token-bearing events"),
    "itl_max_ms": ("ms", "largest gap between consecutive token-bearing events (stall indicator)"),
    "token_events": ("count", "number of token-bearing events (chunks) received"),
    "input_tokens": ("tokens", "whole prompt processed, cache reads and writes included"),
    "cache_read_tokens": ("tokens", "input tokens served from the provider's prompt cache"),
    "cache_write_tokens": ("tokens", "input tokens written to the provider's prompt cache"),
    "output_tokens": ("tokens", "generated tokens from provider usage, reasoning included"),
    "reasoning_tokens": ("tokens", "reasoning/thinking tokens, a part of output_tokens"),
    "usage_source": (
        "",
        "where output_tokens came from: reported (provider usage), estimated, or none "
        "(not reported; input buckets may still be reported)",
    ),
    "finish_reason": (
        "",
        "the provider's stop reason as sent (stop, length, end_turn, ...), <= 64 chars",
    ),
    "cost_usd": (
        "USD",
        "cost of this request: the provider's reported charge when it sends one "
        "(OpenRouter usage.cost), else the price-table estimate; null when unpriced",
    ),
    "cost_source": (
        "",
        "where the prices came from: genai-prices <version> (bundled snapshot), config, "
        "config+genai-prices <version> (partial override), provider (the provider's "
        "reported charge), or unpriced",
    ),
    "cost_estimate_usd": (
        "USD",
        "price-table estimate from usage (config and/or genai-prices), kept beside a "
        "provider-reported charge; equals cost_usd when the provider reports none",
    ),
    "provider_cost_usd": ("USD", "the provider's own reported charge (OpenRouter usage.cost)"),
    "cost_mismatch": (
        "",
        "cost_estimate_usd (from prices) and provider_cost_usd disagree: |difference| > 5% "
        "of provider_cost_usd and > $0.000001; null unless both exist",
    ),
    "request_id": (
        "",
        "provider request id (x-request-id, request-id, chunk id), secrets redacted, <= 200 chars",
    ),
    "upstream_provider": (
        "",
        "upstream that served a routed request (OpenRouter provider), <= 100 chars",
    ),
    "conn_reused": ("", "true when the HTTP connection came from the pool (no handshake)"),
    "dns_ms": (
        "ms",
        "name resolution of a new connection, under its own deadline (~0 for an IP "
        "address); null when a pooled connection was reused or none was opened",
    ),
    "connect_ms": (
        "ms",
        "TCP connect of a new connection to the resolved address; null when reused",
    ),
    "tls_ms": (
        "ms",
        "TLS handshake of a new connection; null when reused or plain HTTP. ttfb_ms and "
        "ttft_ms include dns_ms + connect_ms + tls_ms",
    ),
    "buffered": ("", "the stream arrived at once; decode_tps is then null"),
    "reasoning_hidden": ("", "usage reports reasoning tokens but no reasoning text streamed"),
    "no_visible_output": ("", "tokens were generated but no answer text arrived"),
    "usage_inconsistent": ("", "usage contradicted the stream (e.g. 0 tokens with content)"),
    "cold_load": (
        "",
        "the provider reported loading the model inside this request (server_load_ms >= "
        "100 ms): ttft_ms includes a cold model load",
    ),
    "retry_after_s": ("s", "server's Retry-After on 429/503/529, capped at 3600"),
    "ratelimit_remaining_requests": ("requests", "remaining requests in the provider's window"),
    "ratelimit_remaining_tokens": ("tokens", "remaining tokens in the provider's window"),
    "ratelimit_reset_requests_s": (
        "s",
        "seconds until the request window resets; an absolute reset time counts from the "
        "response's Date header; null when unparseable",
    ),
    "ratelimit_reset_tokens_s": (
        "s",
        "seconds until the token window resets (absolute times from the Date header)",
    ),
    "server_queue_ms": (
        "ms",
        "provider-reported queue time (Groq x_groq.usage.queue_time; Replicate started_at - "
        "created_at: queue and model boot)",
    ),
    "server_load_ms": (
        "ms",
        "provider-reported model load time before the request ran (Ollama load_duration, "
        "ns converted); large values mean a cold model load inside ttft_ms",
    ),
    "server_prefill_ms": (
        "ms",
        "provider-reported prompt processing time (llama.cpp prompt_ms, Ollama "
        "prompt_eval_duration)",
    ),
    "server_decode_ms": (
        "ms",
        "provider-reported generation time (llama.cpp predicted_ms, Ollama eval_duration)",
    ),
    "server_total_ms": (
        "ms",
        "provider-reported total time (Groq total_time, Ollama total_duration, Bedrock "
        "metadata.metrics.latencyMs, Replicate metrics.total_time)",
    ),
    "kind": (
        "",
        "which schedule sent the probe: canary (the short default), cache_check (the prompt-"
        "caching check's two requests), workload (a long-prompt workload), cold_start (the "
        "deliberately cold schedule); see docs/questions.md",
    ),
    "workload": ("", "the [[workloads]] entry a workload probe belongs to; null otherwise"),
    "idle_s": (
        "s",
        "time since the previous probe of the same endpoint ended (any kind; monotonic "
        "clock); null for the first probe after the prober started",
    ),
    "cold": (
        "",
        "idle_s exceeded the target's scaledown_window_s (the endpoint had scaled to zero); "
        "null when the target sets no window or idle_s is unknown",
    ),
    "server_ttft_ms": (
        "ms",
        "provider-reported time to first token (Replicate metrics.time_to_first_token; its "
        "start point is the provider's, not ours)",
    ),
    "server_predict_ms": (
        "ms",
        "provider-reported run time of the model (Replicate metrics.predict_time, queue and "
        "boot excluded)",
    ),
    "vantage": (
        "",
        "where the probe ran from: the prober's [prober] vantage, default its host name "
        "(docs/fleet.md)",
    ),
    "out_of_range_fields": (
        "",
        "comma-separated names of the fields whose provider value was out of range (not "
        "finite, negative or above 10^15, e.g. a header `inf` or a count of 10^20); those "
        "fields are null. Null when none",
    ),
    "start_late_ms": (
        "ms",
        "how long after its scheduled start the probe began (intervals are start to start, "
        "jitter included); large values mean the prober could not keep its schedule",
    ),
    "loop_lag_ms": (
        "ms",
        "worst lag of the prober's event loop while this probe ran (see Reading loop_lag_ms); "
        "its timings may include up to this much waiting of ours",
    ),
}


def fields_markdown() -> str:
    """The CSV/JSON field reference as Markdown (``docs/fields.md`` is this text; a test checks)."""
    from probes.errors import ERROR_KIND_DOCS, SIDE_DOCS, SIDES

    lines = [
        "# Probe record fields",
        "",
        "One row per probe, in this column order, in the database, `inferwatch export --csv`"
        " and `inferwatch probe --once --json`. Generated from `probes/record.py`"
        " (`python -m probes.record > docs/fields.md`); durations come from a monotonic clock."
        " Empty (CSV) or `null` (JSON) means unknown, never 0."
        " Timestamps are UTC ISO 8601; booleans are `true`/`false`."
        " Text a provider sent (`error_message`, `request_id`, `finish_reason`,"
        " `upstream_provider`) has API keys redacted, is valid UTF-8 with control and bidi"
        " characters escaped (`\\x1b`, `\\u202e`) and is capped at the length given.",
        "",
        "| field | unit | definition |",
        "| --- | --- | --- |",
    ]
    for name in FIELD_NAMES:
        unit, doc = FIELD_DOCS[name]
        lines.append(f"| `{name}` | {unit} | {doc} |")
    lines += [
        "",
        "## Error kinds",
        "",
        "Each kind is on one side, which decides what it means for uptime (docs/uptime.md):",
        "",
    ]
    lines += [f"* **{side.value}**: {doc}" for side, doc in SIDE_DOCS.items()]
    lines += ["", "| error_kind | side | meaning |", "| --- | --- | --- |"]
    for kind, doc in ERROR_KIND_DOCS.items():
        lines.append(f"| `{kind.value}` | {SIDES[kind].value} | {doc} |")
    lines += [
        "",
        "## Reading loop_lag_ms",
        "",
        "A probe stamps each block of bytes when the prober's event loop polls and finds it"
        " (docs/metrics.md §1), so work already queued on the loop no longer counts. While the"
        " loop does not poll at all (a garbage collection, one long callback, the process"
        " not scheduled on a busy machine), bytes that already arrived wait, and the wait lands"
        " in `ttfb_ms`, `ttft_ms`, `itl_*` and `total_ms`. A 20 ms timer on the same loop"
        " notes how late it fires; `loop_lag_ms` is the worst such lateness seen while the"
        " probe ran (null for probes that ran outside the scheduler).",
        "",
        "- Up to about 1 ms is the timer's own granularity: the probe's timings are as good as"
        " the machine's.",
        "- Above that, the probe's timings may each include up to `loop_lag_ms` of waiting that"
        " was ours, not the provider's: read its `ttft_ms` as an upper bound, and do not page on"
        " a latency outlier whose `loop_lag_ms` is of the same size.",
        "- Many probes with a large `loop_lag_ms` (and a growing `start_late_ms`) mean the"
        " prober is overloaded: fewer targets per worker (`[prober] workers`), or a busy"
        " machine. From 50 ms the dashboard's status line says"
        ' "prober overloaded" for two minutes after the last late report.',
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(fields_markdown(), end="")

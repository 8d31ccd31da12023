"""The public column order of a probe row, written out by hand.

The database, ``export --csv`` and ``probe --once --json`` all promise this order (docs/fields.md).
Tests compare the code's ``FIELD_NAMES`` and what each output really wrote with this list, not
with the code's own list: reordering, renaming or dropping a public column must change this file
on purpose. New fields are appended (and added here in the same change).
"""

from __future__ import annotations

PUBLIC_COLUMNS: tuple[str, ...] = (
    "started_at",
    "target",
    "provider",
    "model",
    "status",
    "error_kind",
    "http_status",
    "error_message",
    "ttfb_ms",
    "ttft_ms",
    "ttfat_ms",
    "total_ms",
    "decode_tps",
    "e2e_output_tps",
    "itl_ms",
    "itl_p50_ms",
    "itl_max_ms",
    "token_events",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_source",
    "finish_reason",
    "cost_usd",
    "cost_source",
    "provider_cost_usd",
    "cost_mismatch",
    "request_id",
    "upstream_provider",
    "conn_reused",
    "buffered",
    "reasoning_hidden",
    "no_visible_output",
    "usage_inconsistent",
    "retry_after_s",
    "ratelimit_remaining_requests",
    "ratelimit_remaining_tokens",
    "ratelimit_reset_requests_s",
    "ratelimit_reset_tokens_s",
    "server_queue_ms",
    "server_load_ms",
    "server_prefill_ms",
    "server_decode_ms",
    "server_total_ms",
    "start_late_ms",
    "loop_lag_ms",
)

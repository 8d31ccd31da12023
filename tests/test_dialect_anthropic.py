"""Anthropic Messages dialect: recorded-shape streams replayed by a real server on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md (ANT-PY ``basic_response.txt``,
``tool_use_response.txt``, ``refusal_response.txt``, ``test_streaming.py::test_error_type``;
PAI ``test_anthropic_model_thinking_part_stream.yaml``,
``test_anthropic_compaction_usage_with_cache_streaming.yaml``) and field cases FC-02, FC-04 B,
FC-05 C, FC-08, FC-10 and FC-12 B of docs/field-cases.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.probing import (
    KEY,
    assert_fc10,
    decode_tps_near,
    e2e_tps_near,
    gaps_near,
    last_request,
    near,
    probe,
    stepped_clocks,
)
from tests.servers import ReplayServer, Script

# Real servers and real time on a shared machine: see pyproject.toml (pytest-rerunfailures).
pytestmark = pytest.mark.flaky(reruns=2)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-tokens-remaining": "39000",
    "anthropic-ratelimit-requests-reset": "2026-10-21T12:00:30Z",
    "anthropic-ratelimit-tokens-reset": "2026-10-21T12:00:10Z",
    # The provider's clock: resets count from here, not from the probe's wall clock.
    "Date": "Wed, 21 Oct 2026 12:00:00 GMT",
}
ANT = {"provider": "anthropic", "model": "claude-sonnet-4-5"}


def ev(name: str, data: str) -> bytes:
    """One Anthropic SSE event (``event:`` + ``data:`` + blank line)."""
    return f"event: {name}\ndata: {data}\n\n".encode()


MESSAGE_START = ev(
    "message_start",
    '{"type":"message_start","message":{"id":"msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK","type":"message","role":"assistant","content":[],"model":"claude-3-opus-latest","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":1}}}',
)
TEXT_START = ev(
    "content_block_start",
    '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
)
PING = ev("ping", '{"type": "ping"}')


def text(chunk: str, index: int = 0) -> bytes:
    return ev(
        "content_block_delta",
        f'{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":"{chunk}"}}}}',
    )


def block_stop(index: int = 0) -> bytes:
    return ev("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}')


MESSAGE_STOP = ev("message_stop", '{"type":"message_stop"}')


async def test_basic_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ANT-PY basic_response.txt, with the final blank line appended (an SSE event is only
    # dispatched at a blank line).
    reads = [
        (0.20, MESSAGE_START),
        (0.21, TEXT_START),
        (0.22, PING),
        (0.40, text("Hello")),
        (0.50, text(" there")),
        (0.60, text("!")),
        (0.61, block_stop()),
        (
            0.62,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}',
            ),
        ),
        (0.63, MESSAGE_STOP),
    ]
    r = await probe(
        replay, "ant-basic", Script(reads=reads, headers=HEADERS), monkeypatch=monkeypatch, **ANT
    )
    assert r.status == "ok", r.error_message
    assert r.error_kind is None and r.http_status == 200
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 400) and near(r.ttfat_ms, 400)
    assert near(r.total_ms, 630)
    assert r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 400, 500, 600)
    assert (r.input_tokens, r.output_tokens) == (11, 6)
    assert r.cache_read_tokens is None and r.cache_write_tokens is None
    assert r.reasoning_tokens is None and r.usage_source == "reported"
    assert decode_tps_near(r.decode_tps, 6, 400, 600)  # (6 - 1) / 0.2 s = 25, naive 30
    assert e2e_tps_near(r.e2e_output_tps, 6, 630)  # 6 / 0.63 s
    assert r.response_model == "claude-3-opus-latest"  # requested claude-sonnet-4-5
    assert r.finish_reason == "end_turn"
    assert r.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"  # the header wins over msg_ id
    assert not (r.buffered or r.reasoning_hidden or r.no_visible_output or r.usage_inconsistent)
    assert r.ratelimit_remaining_requests == 49 and r.ratelimit_remaining_tokens == 39000
    # RFC 3339 resets minus the response's Date (12:00:00), whatever our own clock says.
    assert r.ratelimit_reset_requests_s == 30.0 and r.ratelimit_reset_tokens_s == 10.0
    assert r.conn_reused is False
    assert r.server_total_ms is None and r.retry_after_s is None
    assert r.cost_source is not None and r.cost_usd is not None  # genai-prices knows the model

    sent = last_request(replay, "ant-basic")
    assert sent["path"] == "/ant-basic/v1/messages"
    assert sent["headers"]["x-api-key"] == KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent["headers"]
    body = sent["json"]
    assert body["model"] == "claude-sonnet-4-5" and body["stream"] is True
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "user", "content": body["messages"][0]["content"]}]
    assert "thinking" not in body
    assert KEY not in str(r.to_dict())


async def test_fc04b_cumulative_usage_is_replaced_not_summed(replay: ReplayServer) -> None:
    reads = [
        (
            0.20,
            b'event: message_start\ndata: {"type":"message_start","message":{"role":"assistant","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}\n\n',
        ),
        (
            0.21,
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
        ),
        (
            0.45,
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello!"}}\n\n',
        ),
        (0.46, b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'),
        (
            0.47,
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":25,"output_tokens":15}}\n\n',
        ),
        (0.48, b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
    ]
    r = await probe(replay, "ant-fc04b", Script(reads=reads), **ANT)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.output_tokens) == (25, 15)  # naive: 50 / 16
    assert near(r.ttft_ms, 450) and near(r.ttfat_ms, 450)
    assert r.token_events == 1 and r.decode_tps is None  # one event: no window
    assert r.finish_reason == "end_turn" and r.usage_source == "reported"


async def test_fc05c_ping_never_stamps_ttft(replay: ReplayServer) -> None:
    reads = [
        (0.15, MESSAGE_START),
        (0.16, TEXT_START),
        (0.30, PING),
        (0.55, text("Hi")),
        (0.56, block_stop()),
        (
            0.57,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
            ),
        ),
        (0.58, MESSAGE_STOP),
    ]
    r = await probe(replay, "ant-fc05c", Script(reads=reads), **ANT)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 550) and r.token_events == 1


THINKING_READS = [
    (
        0.20,
        ev(
            "message_start",
            '{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514","usage":{"input_tokens":43,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}}',
        ),
    ),
    (
        0.21,
        ev(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}',
        ),
    ),
    (0.22, PING),
    (
        0.40,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"This"}}',
        ),
    ),
    (
        0.70,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" accidents."}}',
        ),
    ),
    (
        0.75,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":""}}',
        ),
    ),
    (
        0.76,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EvMCCkYIBhgCKkA"}}',
        ),
    ),
    # Padded JSON, verbatim shape of the recording (valid JSON).
    (0.77, ev("content_block_stop", '{"type":"content_block_stop","index":0      }')),
    (
        0.78,
        ev(
            "content_block_start",
            '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
        ),
    ),
    (1.00, text("Here are", 1)),
    (1.10, text(" three.", 1)),
    (1.11, block_stop(1)),
    (
        1.12,
        ev(
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":43,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":282,"output_tokens_details":{"thinking_tokens":240}}}',
        ),
    ),
    (1.13, MESSAGE_STOP),
]


async def test_fc02_thinking_counts_for_ttft_answer_for_ttfat(replay: ReplayServer) -> None:
    r = await probe(replay, "ant-think", Script(reads=THINKING_READS, scale=0.5), **ANT)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 200) and near(r.ttfat_ms, 500)  # first thinking_delta / text_delta
    # The empty thinking_delta and the signature_delta are not tokens.
    assert r.token_events == 4
    assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (43, 282, 240)
    assert (r.cache_read_tokens, r.cache_write_tokens) == (0, 0)
    # 282 tokens over the window 0.20 -> 0.55 s (the "- 1" is lost in the noise here; see
    # test_tool_use_block_starts_the_clock for a window that tells it apart).
    assert decode_tps_near(r.decode_tps, 282, 200, 550, minus_one=False)
    assert not r.reasoning_hidden and not r.no_visible_output
    assert r.request_id == "msg_01"  # no request-id header here: the message id


async def test_fc12b_cache_write_is_outside_input_tokens(replay: ReplayServer) -> None:
    reads = [
        (
            0.10,
            ev(
                "message_start",
                '{"type":"message_start","message":{"id":"msg_c","role":"assistant","content":[],"usage":{"input_tokens":3,"cache_creation_input_tokens":12304,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":12304,"ephemeral_1h_input_tokens":0},"output_tokens":1}}}',
            ),
        ),
        (0.11, TEXT_START),
        (0.30, text("Sea")),
        (0.35, text(" foam.")),
        (
            0.36,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":550}}',
            ),
        ),
        (0.37, MESSAGE_STOP),
    ]
    r = await probe(
        replay,
        "ant-fc12b",
        Script(reads=reads),
        input_usd_per_mtok=3.0,
        cache_write_usd_per_mtok=3.75,
        cache_read_usd_per_mtok=0.30,
        output_usd_per_mtok=15.0,
        **ANT,
    )
    assert r.status == "ok", r.error_message
    assert r.input_tokens == 12307  # 3 + 12304 + 0: the whole prompt processed
    assert (r.cache_write_tokens, r.cache_read_tokens, r.output_tokens) == (12304, 0, 550)
    assert r.cost_usd == pytest.approx(0.054399)  # naive 0.091311
    assert r.cost_source == "config"
    assert r.finish_reason == "max_tokens"


async def test_cache_read_is_added_to_input(replay: ReplayServer) -> None:
    reads = [
        (
            0.10,
            ev(
                "message_start",
                '{"type":"message_start","message":{"id":"msg_r","role":"assistant","content":[],"usage":{"input_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":55096,"output_tokens":3}}}',
            ),
        ),
        (0.11, TEXT_START),
        (0.20, text("Ok")),
        (
            0.21,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
            ),
        ),
        (0.22, MESSAGE_STOP),
    ]
    r = await probe(replay, "ant-cache-read", Script(reads=reads), **ANT)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens) == (55196, 55096, 0)
    assert r.output_tokens == 2


async def test_tool_use_input_json_deltas_are_tokens(replay: ReplayServer) -> None:
    # ANT-PY tool_use_response.txt: text block, then tool_use with input_json_delta (first empty).
    reads = [
        (0.10, MESSAGE_START),
        (0.11, TEXT_START),
        (0.20, text("Let me check.")),
        (0.21, block_stop()),
        (
            0.22,
            ev(
                "content_block_start",
                '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}',
            ),
        ),
        (
            0.23,
            ev(
                "content_block_delta",
                '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}',
            ),
        ),
        (
            0.30,
            ev(
                "content_block_delta",
                '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"SF\\"}"}}',
            ),
        ),
        (0.31, block_stop(1)),
        (
            0.32,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":65}}',
            ),
        ),
        (0.33, MESSAGE_STOP),
    ]
    r = await probe(replay, "ant-tool", Script(reads=reads), **ANT)
    assert r.status == "ok", r.error_message
    # text, the tool_use block start (the model chose a tool), the non-empty input_json_delta;
    # the empty first input_json_delta is not a token.
    assert r.token_events == 3
    assert near(r.ttft_ms, 200) and r.finish_reason == "tool_use" and r.output_tokens == 65


TOOL_ONLY_READS = [
    (0.10, MESSAGE_START),
    (
        0.30,
        ev(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}',
        ),
    ),
    (
        0.31,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}',
        ),
    ),
    (
        0.50,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": "}}',
        ),
    ),
    (
        0.70,
        ev(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\\"SF\\"}"}}',
        ),
    ),
    (0.71, block_stop()),
    (
        0.72,
        ev(
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}',
        ),
    ),
    (0.73, MESSAGE_STOP),
]


async def test_tool_use_block_starts_the_clock(replay: ReplayServer) -> None:
    # A tool call without text: the tool_use block start is the first generated output.
    r = await probe(replay, "ant-tool-only", Script(reads=TOOL_ONLY_READS), **ANT)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 300)  # naive (deltas only): 500
    assert r.ttfat_ms is None and r.no_visible_output
    assert r.token_events == 3  # block start + two non-empty deltas; the empty one is not
    assert decode_tps_near(r.decode_tps, 4, 300, 700)  # (4 - 1) / 0.4 s = 7.5, naive 10


async def test_redacted_thinking_block_is_a_token_event(replay: ReplayServer) -> None:
    # redacted_thinking carries encrypted reasoning in the block start and has no deltas.
    reads = [
        (0.10, MESSAGE_START),
        (
            0.30,
            ev(
                "content_block_start",
                '{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}',
            ),
        ),
        (0.31, block_stop()),
        (
            0.32,
            ev(
                "content_block_start",
                '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
            ),
        ),
        (0.60, text("Sure.", 1)),
        (0.61, block_stop(1)),
        (
            0.62,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":90}}',
            ),
        ),
        (0.63, MESSAGE_STOP),
    ]
    r = await probe(replay, "ant-redacted", Script(reads=reads), **ANT)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 300) and near(r.ttfat_ms, 600)  # naive TTFT: 600
    assert r.token_events == 2 and not r.reasoning_hidden


async def test_refusal_without_content_is_empty_not_transport_failure(
    replay: ReplayServer,
) -> None:
    reads = [
        (0.10, MESSAGE_START),
        (0.11, TEXT_START),
        (0.12, block_stop()),
        (
            0.13,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"refusal","stop_sequence":null,"stop_details":{"type":"refusal","category":"cyber","explanation":"…"}},"usage":{"output_tokens":0}}',
            ),
        ),
        (0.14, MESSAGE_STOP),
    ]
    r = await probe(replay, "ant-refusal", Script(reads=reads), **ANT)
    assert r.status == "error" and r.error_kind == "empty_response"
    assert r.finish_reason == "refusal" and r.ttft_ms is None
    assert r.output_tokens == 0 and not r.usage_inconsistent


async def test_in_stream_overloaded_error_before_content(replay: ReplayServer) -> None:
    reads = [
        (0.10, MESSAGE_START),
        (
            0.30,
            ev(
                "error",
                '{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"},"request_id":"req_01overload"}',
            ),
        ),
    ]
    r = await probe(replay, "ant-err-early", Script(reads=reads), **ANT)
    assert r.status == "error" and r.error_kind == "overloaded" and r.http_status == 200
    assert "overloaded_error" in (r.error_message or "")
    assert r.ttft_ms is None and r.token_events == 0
    # message_start's input side is kept; its output_tokens is a placeholder, so null.
    assert r.input_tokens == 11 and r.output_tokens is None and r.usage_source == "none"
    assert not r.usage_inconsistent and r.cost_usd is None
    assert r.request_id == "req_01overload"


async def test_in_stream_error_after_partial_text_keeps_ttft(replay: ReplayServer) -> None:
    reads = [
        (0.10, MESSAGE_START),
        (0.11, TEXT_START),
        (0.25, text("The sea")),
        (
            0.40,
            ev(
                "error",
                '{"type":"error","error":{"type":"api_error","message":"Internal server error"}}',
            ),
        ),
    ]
    r = await probe(replay, "ant-err-late", Script(reads=reads), **ANT)
    # api_error is Anthropic's documented "internal error": the provider's side.
    assert r.status == "error" and r.error_kind == "server_error" and r.http_status == 200
    assert "type=api_error" in (r.error_message or "")
    assert near(r.ttft_ms, 250) and r.decode_tps is None and r.e2e_output_tps is None


async def test_missing_message_stop_is_truncated(replay: ReplayServer) -> None:
    reads = [
        (0.10, MESSAGE_START),
        (0.11, TEXT_START),
        (0.20, text("Hi")),
        (
            0.21,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
            ),
        ),
    ]
    r = await probe(replay, "ant-trunc", Script(reads=reads), **ANT)
    assert r.status == "error" and r.error_kind == "truncated"
    assert r.output_tokens == 2  # reported usage is kept on failures


@pytest.mark.parametrize(
    ("case", "status", "body", "headers", "kind", "retry"),
    [
        (
            "ant-429",  # FC-08 A
            429,
            b'{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"},"request_id":"req_429"}',
            {"retry-after": "20", "request-id": "req_429"},
            "rate_limited",
            20.0,
        ),
        (
            "ant-529",  # FC-08 B
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            {"x-should-retry": "true"},
            "overloaded",
            None,
        ),
        (
            "ant-429-date",  # FC-08 C: sent at 07:28:00 GMT
            429,
            b'{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"}}',
            {
                "retry-after": "Wed, 21 Oct 2026 07:28:20 GMT",
                "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            "rate_limited",
            20.0,
        ),
        (
            "ant-429-skew",  # our clock says 07:28:00, the provider's Date says 07:28:05
            429,
            b'{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"}}',
            {
                "retry-after": "Wed, 21 Oct 2026 07:28:20 GMT",
                "Date": "Wed, 21 Oct 2026 07:28:05 GMT",
            },
            "rate_limited",
            15.0,
        ),
        (
            "ant-401",
            401,
            b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-test-SECRET-0123456789abcdef"}}',
            {},
            "auth",
            None,
        ),
        (
            "ant-400",
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}',
            {},
            "probe_config",
            None,
        ),
        (
            "ant-404",
            404,
            b'{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}',
            {},
            "model_not_found",
            None,
        ),
    ],
)
async def test_fc08_pre_stream_errors(
    replay: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: str,
    retry: float | None,
) -> None:
    script = Script(
        status=status, body=body, headers={"Content-Type": "application/json", **headers}
    )
    r = await probe(
        replay,
        case,
        script,
        monkeypatch=monkeypatch,
        wall_clock=lambda: datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC),
        **ANT,
    )
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert r.retry_after_s == retry
    assert r.ttft_ms is None and r.decode_tps is None and r.output_tokens is None
    assert KEY not in str(r.to_dict())
    if status == 429 and "request-id" in headers:
        assert r.request_id == "req_429"


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [
        (0.10, MESSAGE_START),
        (0.11, TEXT_START),
        (0.80, text("Hi")),
        (
            0.81,
            ev(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
            ),
        ),
        (0.82, MESSAGE_STOP),
    ]
    r = await probe(
        replay, f"ant-fc10-{step_s:+.0f}", Script(reads=reads), clock=mono, wall_clock=wall, **ANT
    )
    assert_fc10(r, 800)

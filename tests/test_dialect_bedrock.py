"""Bedrock ConverseStream dialect: binary event-stream frames replayed on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md, T45 (PAI
``test_bedrock_model_stream_with_extra_headers.yaml`` for Nova Micro,
``test_bedrock_model_thinking_part_stream.yaml`` for Claude thinking), with frames built by
``tests/eventstream.py`` (lengths + CRC32) and decoded by botocore in the probe; field cases
FC-02, FC-07 (exception frames in a 200 stream), FC-10 and FC-12 (cache buckets).
"""

from __future__ import annotations

import pytest

from tests.eventstream import event, exception
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

BED = {"provider": "bedrock", "model": "us.amazon.nova-micro-v1:0"}
HEADERS = {
    "Content-Type": "application/vnd.amazon.eventstream",
    "x-amzn-RequestId": "6e0e7f4a-1b2c-4d5e-8f90-123456789abc",
}


def text(chunk: str, index: int = 0) -> bytes:
    return event(
        "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": chunk}, "p": "abcdef"}
    )


START = event("messageStart", {"p": "abcdefgh", "role": "assistant"})
STOP = event("messageStop", {"p": "abcdefghijkl", "stopReason": "end_turn"})


def metadata(inp: int, out: int, latency: int = 660, **cache: int) -> bytes:
    usage = {"inputTokens": inp, "outputTokens": out, "serverToolUsage": {}, **cache}
    usage["totalTokens"] = inp + out + sum(cache.values())
    return event("metadata", {"metrics": {"latencyMs": latency}, "p": "ab", "usage": usage})


NOVA = [
    (0.20, START),
    (0.30, text("Hello")),
    (0.40, text("! How can I assist")),
    (0.50, text(" you today?")),
    (0.51, event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcd"})),
    (0.52, STOP),
    (0.53, metadata(2, 32)),
]


async def test_nova_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await probe(
        replay, "bed-nova", Script(reads=NOVA, headers=HEADERS), monkeypatch=monkeypatch, **BED
    )
    assert r.status == "ok", r.error_message
    assert r.http_status == 200 and r.error_kind is None
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 300) and near(r.ttfat_ms, 300)
    assert near(r.total_ms, 530) and r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 300, 400, 500)
    assert (r.input_tokens, r.output_tokens, r.usage_source) == (2, 32, "reported")
    assert r.cache_read_tokens is None and r.cache_write_tokens is None
    assert r.reasoning_tokens is None and r.finish_reason == "end_turn"
    assert r.server_total_ms == 660.0  # metadata.metrics.latencyMs
    assert decode_tps_near(r.decode_tps, 32, 300, 500, minus_one=False)  # 31 / 0.2 s
    assert e2e_tps_near(r.e2e_output_tps, 32, 530)
    assert r.response_model is None  # ConverseStream does not name the model
    assert not (r.buffered or r.reasoning_hidden or r.no_visible_output or r.usage_inconsistent)
    assert r.cost_usd is not None and (r.cost_source or "").startswith("genai-prices")

    sent = last_request(replay, "bed-nova")
    # The model id is URL-encoded in the path (':' -> %3A).
    assert sent["raw_path"] == "/bed-nova/v1/model/us.amazon.nova-micro-v1%3A0/converse-stream"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    body = sent["json"]
    assert body["messages"][0]["role"] == "user"
    assert body["messages"][0]["content"][0]["text"]
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.0}
    assert KEY not in str(r.to_dict())


async def test_fc02_claude_reasoning_content_then_text(replay: ReplayServer) -> None:
    reads = [
        (0.10, START),
        (
            0.30,
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "The user"}}},
            ),
        ),
        (
            0.50,
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": " asks."}}},
            ),
        ),
        (
            0.55,
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqoB"}}},
            ),
        ),
        (0.56, event("contentBlockStop", {"contentBlockIndex": 0})),
        (0.70, text("Waves.", 1)),
        (0.71, event("contentBlockStop", {"contentBlockIndex": 1})),
        (0.72, STOP),
        (0.73, metadata(40, 90, 700)),
    ]
    r = await probe(
        replay,
        "bed-think",
        Script(reads=reads, headers=HEADERS),
        provider="bedrock",
        model="us.anthropic.claude-sonnet-4-20250514-v1:0",
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 300) and near(r.ttfat_ms, 700)
    assert r.token_events == 3  # the signature is not a token
    assert (r.input_tokens, r.output_tokens) == (40, 90)


async def test_fc12_cache_tokens_are_added_to_input(replay: ReplayServer) -> None:
    reads = [
        (0.10, START),
        (0.20, text("Hi")),
        (0.21, STOP),
        (0.22, metadata(10, 3, cacheReadInputTokens=100, cacheWriteInputTokens=50)),
    ]
    r = await probe(replay, "bed-cache", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens) == (160, 100, 50)


async def test_frames_split_at_odd_bytes_are_stamped_when_complete(replay: ReplayServer) -> None:
    first, second = text("Hello"), text(" there")
    blob = START + first + second + STOP + metadata(2, 2)
    a = len(START) + 7  # inside the first delta's prelude
    b = len(START) + len(first) + len(second) - 3  # inside the second delta's CRC
    reads = [(0.20, blob[:a]), (0.35, blob[a:b]), (0.50, blob[b:])]
    r = await probe(replay, "bed-split", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 350) and near(r.total_ms, 500) and r.token_events == 2


@pytest.mark.parametrize(
    ("exception_type", "kind"),
    [  # every exception of ConverseStreamOutput, by its documented meaning
        ("throttlingException", "rate_limited"),
        ("serviceUnavailableException", "overloaded"),
        ("internalServerException", "server_error"),
        ("modelStreamErrorException", "stream_error"),
        ("validationException", "probe_config"),
    ],
)
async def test_exception_frame_in_200_stream(
    replay: ReplayServer, exception_type: str, kind: str
) -> None:
    reads = [
        (0.10, START),
        (0.20, text("Hel")),
        (0.30, exception(exception_type, "Too many tokens, please wait.")),
    ]
    r = await probe(replay, f"bed-{exception_type}", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "error" and r.error_kind == kind and r.http_status == 200
    assert f"type={exception_type}" in (r.error_message or "")
    assert near(r.ttft_ms, 200)


async def test_bad_crc_is_bad_format(replay: ReplayServer) -> None:
    broken = bytearray(text("Hello"))
    broken[-1] ^= 0xFF
    reads = [(0.10, START), (0.20, bytes(broken))]
    r = await probe(replay, "bed-crc", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "error" and r.error_kind == "bad_format"
    assert "frame" in (r.error_message or "")


async def test_message_stop_then_eof_without_metadata_is_ok(replay: ReplayServer) -> None:
    reads = [(0.10, START), (0.20, text("Hi")), (0.21, STOP)]
    r = await probe(replay, "bed-nometa", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "ok", r.error_message
    assert r.output_tokens is None and r.usage_source == "none" and r.finish_reason == "end_turn"


async def test_eof_inside_a_frame_or_before_message_stop_is_a_failure(
    replay: ReplayServer,
) -> None:
    reads = [(0.10, START), (0.20, text("Hi")), (0.21, STOP[:10])]
    r = await probe(replay, "bed-cut", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "error" and r.error_kind == "bad_format"
    reads = [(0.10, START), (0.20, text("Hi"))]
    r = await probe(replay, "bed-trunc", Script(reads=reads, headers=HEADERS), **BED)
    assert r.status == "error" and r.error_kind == "truncated"


@pytest.mark.parametrize(
    ("case", "status", "body", "kind"),
    [
        (
            "bed-403",
            403,
            b'{"message":"Authentication failed: Please make sure your API Key is valid."}',
            "auth",
        ),
        (
            "bed-400",
            400,
            b'{"message":"The model returned the following errors: maxTokens must be positive"}',
            "probe_config",
        ),
        ("bed-429", 429, b'{"message":"Too many requests, please wait."}', "rate_limited"),
    ],
)
async def test_pre_stream_errors(
    replay: ReplayServer, case: str, status: int, body: bytes, kind: str
) -> None:
    script = Script(status=status, body=body, headers={"Content-Type": "application/json"})
    r = await probe(replay, case, script, **BED)
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert body.decode()[12:40] in (r.error_message or "")


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [(0.10, START), (0.80, text("Hi")), (0.81, STOP), (0.82, metadata(2, 1))]
    r = await probe(
        replay,
        f"bed-fc10-{step_s:+.0f}",
        Script(reads=reads, headers=HEADERS),
        clock=mono,
        wall_clock=wall,
        **BED,
    )
    assert_fc10(r, 800)

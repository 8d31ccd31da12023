"""Gemini ``streamGenerateContent?alt=sse`` dialect, replayed by a real server on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md (PAI
``test_google_stream_usage_is_live_mid_stream.yaml``, ``test_google_model_stream.yaml``,
``test_google_model_thinking_part_iter.yaml``,
``test_google_model_mobile_youtube_video_url_input.yaml``; vercel/ai#5217 for the raw error
tail; python-genai#2044 for the 429 body) and field cases FC-02, FC-04 A, FC-10 and FC-12 C.
"""

from __future__ import annotations

import json
from typing import Any

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

GEM = {"provider": "gemini", "model": "gemini-2.5-flash"}
HEADERS = {"Content-Type": "text/event-stream", "server-timing": "gfet4t7; dur=379"}


def chunk(obj: dict[str, Any]) -> bytes:
    """One Gemini SSE event, ``\\r\\n\\r\\n``-separated as Gemini sends them."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n\r\n"


def cand(parts: list[dict[str, Any]], finish: str | None = None) -> list[dict[str, Any]]:
    c: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        c["finishReason"] = finish
    return [c]


def usage(prompt: int, cands: int | None, thoughts: int | None = None, **extra: int) -> dict:
    u: dict[str, Any] = {"promptTokenCount": prompt, **extra}
    if cands is not None:
        u["candidatesTokenCount"] = cands
    if thoughts is not None:
        u["thoughtsTokenCount"] = thoughts
    u["totalTokenCount"] = prompt + (cands or 0) + (thoughts or 0)
    return u


LIVE_USAGE = [  # T26: running usageMetadata, thoughts excluded from candidates
    (
        0.30,
        chunk(
            {
                "candidates": cand([{"text": "1\n2\n3"}]),
                "usageMetadata": usage(18, 31, 35) | {"serviceTier": "standard"},
                "modelVersion": "gemini-2.5-flash",
                "responseId": "ru1gaM3",
            }
        ),
    ),
    (
        0.45,
        chunk(
            {
                "candidates": cand([{"text": "4\n15\n3"}]),
                "usageMetadata": usage(18, 79, 35),
                "modelVersion": "gemini-2.5-flash",
                "responseId": "ru1gaM3",
            }
        ),
    ),
    (
        0.60,
        chunk(
            {
                "candidates": cand([{"text": "0"}], "STOP"),
                "usageMetadata": usage(18, 80, 35),
                "modelVersion": "gemini-2.5-flash",
                "responseId": "ru1gaM3",
            }
        ),
    ),
]


async def test_live_usage_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await probe(
        replay,
        "gem-live",
        Script(reads=LIVE_USAGE, headers=HEADERS),
        monkeypatch=monkeypatch,
        **GEM,
    )
    assert r.status == "ok", r.error_message
    assert r.http_status == 200 and r.error_kind is None
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 300) and near(r.ttfat_ms, 300)
    assert near(r.total_ms, 600)
    assert r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 300, 450, 600)
    assert r.response_model == "gemini-2.5-flash"
    # Final chunk only: 18 in, 80 candidates + 35 thoughts out.
    assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (18, 115, 35)
    assert r.cache_read_tokens is None and r.cache_write_tokens is None
    assert r.usage_source == "reported" and r.finish_reason == "STOP"
    assert r.request_id == "ru1gaM3"
    # 35 thought tokens were billed but no thought part streamed: hidden reasoning, and the
    # rate counts only the 80 delivered tokens.
    assert r.reasoning_hidden and not r.no_visible_output
    # (80 - 1) / 0.3 s; naive (115 - 1) / 0.3 s. The "- 1" itself is below this window's noise.
    assert decode_tps_near(r.decode_tps, 80, 300, 600, minus_one=False)
    assert e2e_tps_near(r.e2e_output_tps, 115, 600)
    assert not r.buffered and not r.usage_inconsistent
    assert r.cost_usd is not None and (r.cost_source or "").startswith("genai-prices")

    sent = last_request(replay, "gem-live")
    assert sent["path"] == "/gem-live/v1/models/gemini-2.5-flash:streamGenerateContent"
    assert sent["query"] == {"alt": "sse"}  # the key is never in the URL
    assert KEY not in sent["raw_path"] and "key" not in sent["query"]
    assert sent["headers"]["x-goog-api-key"] == KEY
    assert "Authorization" not in sent["headers"]
    body = sent["json"]
    assert body["contents"][0]["role"] == "user"
    assert body["generationConfig"] == {
        "maxOutputTokens": 64,
        "temperature": 0.0,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert KEY not in str(r.to_dict())


async def test_fc04a_cumulative_usage_metadata_is_replaced(replay: ReplayServer) -> None:
    reads = [
        (
            0.70,
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1,"totalTokenCount":9}}\n\n',
        ),
        (
            0.90,
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo th"}]}}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":3,"totalTokenCount":11}}\n\n',
        ),
        (
            1.10,
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"ere"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":5,"totalTokenCount":13}}\n\n',
        ),
    ]
    r = await probe(replay, "gem-fc04a", Script(reads=reads), **GEM)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.output_tokens) == (8, 5)  # naive: 24 / 9
    assert near(r.ttft_ms, 700) and r.reasoning_tokens is None and not r.reasoning_hidden
    assert decode_tps_near(r.decode_tps, 5, 700, 1100)  # (5 - 1) / 0.4 s = 10, naive 12.5


THOUGHTS = [  # T27 / FC-02: thought parts first, thoughtsTokenCount 68 -> 787
    (
        0.40,
        chunk(
            {
                "candidates": cand([{"text": "**Clarifying User Goals**", "thought": True}]),
                "usageMetadata": usage(12, None, 68),
            }
        ),
    ),
    (
        0.90,
        chunk(
            {
                "candidates": cand([{"text": "**Picking a fact**", "thought": True}]),
                "usageMetadata": usage(12, None, 787),
            }
        ),
    ),
    (
        1.20,
        chunk(
            {
                "candidates": cand([{"text": "The sea", "thoughtSignature": "CiIB"}]),
                "usageMetadata": usage(12, 3, 787),
            }
        ),
    ),
    (
        1.30,
        chunk(
            {
                "candidates": cand([{"text": " is salty."}], "STOP"),
                "usageMetadata": usage(12, 6, 787),
            }
        ),
    ),
]


async def test_fc02_thought_parts_are_reasoning(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "gem-fc02",
        Script(reads=THOUGHTS, scale=0.5),
        provider="gemini",
        model="gemini-2.5-pro",
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 200) and near(r.ttfat_ms, 600)
    assert (r.output_tokens, r.reasoning_tokens) == (793, 787)
    assert not r.reasoning_hidden and not r.no_visible_output
    assert decode_tps_near(r.decode_tps, 793, 200, 650, minus_one=False)
    config = last_request(replay, "gem-fc02")["json"]["generationConfig"]
    # 2.5 Pro cannot switch thinking off: minimum budget, thoughts streamed, room for an answer.
    assert config["thinkingConfig"] == {"thinkingBudget": 128, "includeThoughts": True}
    assert config["maxOutputTokens"] == 64 + 128


async def test_fc12c_thoughts_are_billed_as_output(replay: ReplayServer) -> None:
    reads = [
        (0.20, chunk({"candidates": cand([{"text": "Sure", "thought": True}])})),
        (
            0.30,
            chunk(
                {
                    "candidates": cand([{"text": "Waves."}], "STOP"),
                    "usageMetadata": {
                        "promptTokenCount": 8,
                        "candidatesTokenCount": 13,
                        "thoughtsTokenCount": 554,
                        "totalTokenCount": 575,
                    },
                }
            ),
        ),
    ]
    r = await probe(
        replay,
        "gem-fc12c",
        Script(reads=reads),
        input_usd_per_mtok=0.30,
        output_usd_per_mtok=2.50,
        **GEM,
    )
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (8, 567, 554)  # naive: 13
    assert r.cost_usd == pytest.approx(0.0014199, abs=1e-10)  # (8 x 0.30 + 567 x 2.50) / 1e6


async def test_implicit_cache_is_inside_prompt_count(replay: ReplayServer) -> None:
    reads = [
        (
            0.20,
            chunk(
                {
                    "candidates": cand([{"text": "A video."}], "STOP"),
                    "usageMetadata": usage(17713, 4, None, cachedContentTokenCount=17379),
                }
            ),
        ),
    ]
    r = await probe(replay, "gem-cache", Script(reads=reads), **GEM)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens) == (17713, 17379, None)
    assert r.output_tokens == 4


async def test_shifting_prompt_count_takes_final_chunk(replay: ReplayServer) -> None:
    # T25: gemini-2.0-flash-exp reported promptTokenCount 15 early and 13 at the end.
    reads = [
        (0.20, chunk({"candidates": cand([{"text": "a"}]), "usageMetadata": usage(15, 1)})),
        (0.30, chunk({"candidates": cand([{"text": "b"}], "STOP"), "usageMetadata": usage(13, 2)})),
    ]
    r = await probe(replay, "gem-shift", Script(reads=reads), **GEM)
    assert (r.input_tokens, r.output_tokens) == (13, 2)


async def test_no_finish_reason_is_truncated(replay: ReplayServer) -> None:
    reads = [(0.20, chunk({"candidates": cand([{"text": "Okay"}]), "usageMetadata": usage(5, 1)}))]
    r = await probe(replay, "gem-trunc", Script(reads=reads), **GEM)
    assert r.status == "error" and r.error_kind == "truncated"
    assert near(r.ttft_ms, 200)


async def test_connection_dropped_after_finish_is_truncated(replay: ReplayServer) -> None:
    # The terminal rule is "finishReason, then a clean EOF".
    reads = [(0.20, chunk({"candidates": cand([{"text": "Ok"}], "STOP")}))]
    r = await probe(replay, "gem-drop", Script(reads=reads, abort_at_end=True), **GEM)
    assert r.status == "error" and r.error_kind == "truncated"


async def test_data_error_event_in_200_stream(replay: ReplayServer) -> None:
    reads = [
        (0.20, chunk({"candidates": cand([{"text": "Okay"}])})),
        (
            0.30,
            b'data: {"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}\r\n\r\n',
        ),
    ]
    r = await probe(replay, "gem-err", Script(reads=reads), **GEM)
    # error.status UNAVAILABLE is Gemini's documented overload (google.rpc.Code).
    assert r.status == "error" and r.error_kind == "overloaded" and r.http_status == 200
    assert "type=UNAVAILABLE code=503" in (r.error_message or "") and near(r.ttft_ms, 200)


async def test_raw_json_error_appended_after_stop(replay: ReplayServer) -> None:
    # vercel/ai#5217: the error body is not an SSE event and comes after a STOP chunk.
    reads = [
        (0.20, chunk({"candidates": cand([{"text": "Okay"}])})),
        (0.25, chunk({"candidates": cand([{"text": ""}], "STOP")})),
        (
            0.30,
            b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded. Please try again later.",\n    "status": "UNAVAILABLE"\n  }\n}\n',
        ),
    ]
    r = await probe(replay, "gem-raw-err", Script(reads=reads), **GEM)
    assert r.status == "error" and r.error_kind == "overloaded"
    assert "overloaded" in (r.error_message or "")


async def test_blocked_prompt_is_a_safety_block(replay: ReplayServer) -> None:
    reads = [
        (
            0.20,
            chunk({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage(9, None)}),
        )
    ]
    r = await probe(replay, "gem-blocked", Script(reads=reads), **GEM)
    # Its own outcome: not empty_response, not a plain ok, not provider downtime.
    assert r.status == "error" and r.error_kind == "safety_block"
    assert r.finish_reason == "SAFETY" and r.input_tokens == 9 and r.output_tokens is None


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_answer_stopped_by_a_filter_is_content_filter(
    replay: ReplayServer, reason: str
) -> None:
    reads = [
        (0.20, chunk({"candidates": cand([{"text": "Once upon"}]), "usageMetadata": usage(9, 2)})),
        (
            0.30,
            chunk({"candidates": cand([{"text": ""}], reason), "usageMetadata": usage(9, 3)}),
        ),
    ]
    r = await probe(
        replay,
        f"gem-filter-{reason}",
        Script(reads=reads),
        input_usd_per_mtok=0.30,
        output_usd_per_mtok=2.50,
        **GEM,
    )
    assert r.status == "error" and r.error_kind == "content_filter"  # naive: ok
    assert r.finish_reason == reason and near(r.ttft_ms, 200)
    assert (r.input_tokens, r.output_tokens) == (9, 3)
    assert r.cost_usd == pytest.approx(0.0000102, abs=1e-10)  # billed: 9 x 0.30 + 3 x 2.50


RATE_LIMIT_BODY = json.dumps(
    {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "47s"},
            ],
        }
    }
).encode()


@pytest.mark.parametrize(
    ("case", "status", "body", "headers", "kind", "retry"),
    [
        ("gem-429", 429, RATE_LIMIT_BODY, {}, "rate_limited", 47.0),
        ("gem-429-header", 429, RATE_LIMIT_BODY, {"Retry-After": "5"}, "rate_limited", 5.0),
        (
            "gem-503",
            503,
            b'{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}',
            {},
            "overloaded",
            None,
        ),
        (
            "gem-400",
            400,
            b'{"error":{"code":400,"message":"API key not valid. key=AIzaSyA-0123456789abcdefghijklmn","status":"INVALID_ARGUMENT"}}',
            {},
            "probe_config",
            None,
        ),
        (
            "gem-404",
            404,
            b'{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}',
            {},
            "model_not_found",
            None,
        ),
    ],
)
async def test_pre_stream_errors(
    replay: ReplayServer,
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
    r = await probe(replay, case, script, **GEM)
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert r.retry_after_s == retry
    assert "AIza" not in (r.error_message or "")


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [(0.80, chunk({"candidates": cand([{"text": "Hi"}], "STOP")}))]
    r = await probe(
        replay, f"gem-fc10-{step_s:+.0f}", Script(reads=reads), clock=mono, wall_clock=wall, **GEM
    )
    assert_fc10(r, 800)

"""OpenAI Responses API dialect, replayed by a real server on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md (T10 PAI
``test_openai_responses_stream.yaml``, T11 ``test_openai_responses_streaming_usage.yaml``,
T12 ``test_openai_responses_model_web_search_tool_stream.yaml``, T13 synthetic from the
openai-python types) and field cases FC-02 (hidden reasoning) and FC-10.
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

RESP = {"provider": "openai-responses", "model": "gpt-4o-mini"}
HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "x-request-id": "req_7f3a9c",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-remaining-tokens": "199980",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-reset-tokens": "6m0s",
}


def ev(obj: dict[str, Any]) -> bytes:
    """One Responses event: ``event: <type>`` + ``data: <json>`` + blank line."""
    data = json.dumps(obj, separators=(",", ":"))
    return f"event: {obj['type']}\ndata: {data}\n\n".encode()


def response(status: str, usage: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_68c97b94",
        "object": "response",
        "model": "gpt-4o-mini-2024-07-18",
        "status": status,
        "usage": usage,
        **extra,
    }


def text_delta(delta: str) -> bytes:
    return ev(
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": delta,
        }
    )


PRELUDE = [
    (0.15, ev({"type": "response.created", "response": response("in_progress")})),
    (0.16, ev({"type": "response.in_progress", "response": response("in_progress")})),
    (
        0.17,
        ev(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {
                    "type": "message",
                    "id": "msg_1",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            }
        ),
    ),
    (
        0.18,
        ev(
            {
                "type": "response.content_part.added",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": ""},
            }
        ),
    ),
]
USAGE_T10 = {
    "input_tokens": 14,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 8,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 22,
}
TEXT_READS = [
    *PRELUDE,
    (0.40, text_delta("The")),
    (0.45, text_delta(" capital of France")),
    (0.50, text_delta(" is Paris.")),
    (
        0.51,
        ev(
            {
                "type": "response.output_text.done",
                "item_id": "msg_1",
                "text": "The capital of France is Paris.",
            }
        ),
    ),
    (0.52, ev({"type": "response.content_part.done", "item_id": "msg_1"})),
    (0.53, ev({"type": "response.output_item.done", "output_index": 0})),
    (0.55, ev({"type": "response.completed", "response": response("completed", USAGE_T10)})),
]


async def test_text_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await probe(
        replay,
        "resp-text",
        Script(reads=TEXT_READS, headers=HEADERS),
        monkeypatch=monkeypatch,
        **RESP,
    )
    assert r.status == "ok", r.error_message
    assert r.http_status == 200 and r.error_kind is None
    # response.created arrives at once: never a token.
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 400) and near(r.ttfat_ms, 400)
    assert near(r.total_ms, 550) and r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 400, 450, 500)
    assert r.response_model == "gpt-4o-mini-2024-07-18"  # requested gpt-4o-mini
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens) == (14, 0, None)
    assert (r.output_tokens, r.reasoning_tokens, r.usage_source) == (8, 0, "reported")
    assert r.finish_reason == "completed"
    assert r.request_id == "req_7f3a9c"  # header x-request-id before the resp_ id
    assert r.ratelimit_remaining_requests == 499 and r.ratelimit_remaining_tokens == 199980
    assert r.ratelimit_reset_requests_s == pytest.approx(0.12)
    assert r.ratelimit_reset_tokens_s == pytest.approx(360.0)
    assert decode_tps_near(r.decode_tps, 8, 400, 500)  # (8 - 1) / 0.1 s = 70, naive 80
    assert e2e_tps_near(r.e2e_output_tps, 8, 550)
    assert not (r.buffered or r.reasoning_hidden or r.no_visible_output or r.usage_inconsistent)
    assert r.cost_usd is not None

    sent = last_request(replay, "resp-text")
    assert sent["path"] == "/resp-text/v1/responses"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    body = sent["json"]
    assert body == {
        "model": "gpt-4o-mini",
        "input": body["input"],
        "max_output_tokens": 64,
        "stream": True,
        "store": False,
        "temperature": 0.0,
    }
    assert KEY not in str(r.to_dict())


async def test_budget_is_clamped_to_the_api_minimum(replay: ReplayServer) -> None:
    r = await probe(replay, "resp-clamp", Script(reads=TEXT_READS), max_tokens=8, **RESP)
    assert r.status == "ok", r.error_message
    assert last_request(replay, "resp-clamp")["json"]["max_output_tokens"] == 16


async def test_fc02_hidden_reasoning_with_function_call(replay: ReplayServer) -> None:
    # T11: gpt-5, reasoning item with encrypted content, six argument deltas, no text.
    reads = [
        (
            0.10,
            ev(
                {
                    "type": "response.created",
                    "sequence_number": 0,
                    "response": response("in_progress"),
                }
            ),
        ),
        (
            0.11,
            ev(
                {
                    "type": "response.in_progress",
                    "sequence_number": 1,
                    "response": response("in_progress"),
                }
            ),
        ),
        (
            0.30,
            ev(
                {
                    "type": "response.output_item.added",
                    "sequence_number": 2,
                    "output_index": 0,
                    "item": {
                        "type": "reasoning",
                        "id": "rs_1",
                        "encrypted_content": "gAAAA",
                        "summary": [],
                    },
                }
            ),
        ),
        (0.31, ev({"type": "response.output_item.done", "sequence_number": 3, "output_index": 0})),
    ]
    reads += [
        (
            0.40 + 0.02 * i,
            ev(
                {
                    "type": "response.function_call_arguments.delta",
                    "sequence_number": 5 + i,
                    "item_id": "fc_1",
                    "output_index": 1,
                    "delta": frag,
                    "obfuscation": "x1",
                }
            ),
        )
        for i, frag in enumerate(['{"', "city", '":"', "Paris", '"', "}"])
    ]
    usage = {
        "input_tokens": 53,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 469,
        "output_tokens_details": {"reasoning_tokens": 448},
        "total_tokens": 522,
    }
    reads += [
        (0.60, ev({"type": "response.function_call_arguments.done", "sequence_number": 11})),
        (0.61, ev({"type": "response.output_item.done", "sequence_number": 12, "output_index": 1})),
        (
            0.62,
            ev(
                {
                    "type": "response.completed",
                    "sequence_number": 13,
                    "response": response("completed", usage, service_tier="flex"),
                }
            ),
        ),
    ]
    # Stretched 2x so the 0.1 s argument window tells (n - 1) from n.
    r = await probe(
        replay,
        "resp-hidden",
        Script(reads=reads, scale=2.0),
        provider="openai-responses",
        model="gpt-5",
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 800) and r.ttfat_ms is None
    assert r.token_events == 6 and r.no_visible_output
    assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (53, 469, 448)
    assert r.reasoning_hidden  # reasoning billed, none streamed
    # Only the 21 tokens delivered inside the window count: (469 - 448 - 1) / 0.2 s = 100.
    assert decode_tps_near(r.decode_tps, 21, 800, 1000)
    body = last_request(replay, "resp-hidden")["json"]
    assert body["reasoning"] == {"effort": "low"} and "temperature" not in body


async def test_reasoning_summary_and_cache_hit(replay: ReplayServer) -> None:
    # T12 usage (9463 in, 8320 cached; 582 out, 512 reasoning) with streamed summaries.
    usage = {
        "input_tokens": 9463,
        "input_tokens_details": {"cached_tokens": 8320},
        "output_tokens": 582,
        "output_tokens_details": {"reasoning_tokens": 512},
        "total_tokens": 10045,
    }
    reads = [
        *PRELUDE,
        (
            0.30,
            ev(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "item_id": "rs_1",
                    "summary_index": 0,
                    "delta": "**Looking up**",
                }
            ),
        ),
        (
            0.50,
            ev(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "item_id": "rs_1",
                    "summary_index": 0,
                    "delta": " the capital",
                }
            ),
        ),
        (0.70, text_delta("Paris")),
        (0.75, ev({"type": "response.completed", "response": response("completed", usage)})),
    ]
    r = await probe(
        replay, "resp-summary", Script(reads=reads), provider="openai-responses", model="o4-mini"
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 300) and near(r.ttfat_ms, 700)
    assert (r.input_tokens, r.cache_read_tokens) == (9463, 8320)
    assert (r.output_tokens, r.reasoning_tokens) == (582, 512)
    assert not r.reasoning_hidden


async def test_fc12a_cached_input_is_inside_input_tokens(replay: ReplayServer) -> None:
    usage = {
        "input_tokens": 2006,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2306,
    }
    reads = [
        *PRELUDE,
        (0.30, text_delta("Hi")),
        (0.31, ev({"type": "response.completed", "response": response("completed", usage)})),
    ]
    r = await probe(
        replay,
        "resp-fc12a",
        Script(reads=reads),
        input_usd_per_mtok=2.50,
        cache_read_usd_per_mtok=1.25,
        output_usd_per_mtok=10.0,
        **RESP,
    )
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (2006, 1920, 300)
    assert r.cost_usd == pytest.approx(0.005615, abs=1e-10)


async def test_incomplete_for_budget_is_ok_with_reason(replay: ReplayServer) -> None:
    usage = {
        "input_tokens": 9,
        "output_tokens": 16,
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    reads = [
        *PRELUDE,
        (0.30, text_delta("The sea")),
        (0.35, text_delta(" is")),
        (
            0.40,
            ev(
                {
                    "type": "response.incomplete",
                    "response": response(
                        "incomplete", usage, incomplete_details={"reason": "max_output_tokens"}
                    ),
                }
            ),
        ),
    ]
    r = await probe(replay, "resp-incomplete", Script(reads=reads), **RESP)
    assert r.status == "ok", r.error_message
    assert r.finish_reason == "max_output_tokens" and r.output_tokens == 16


async def test_error_event_in_stream(replay: ReplayServer) -> None:
    reads = [
        *PRELUDE,
        (0.30, text_delta("The")),
        (
            0.40,
            ev(
                {
                    "type": "error",
                    "code": "server_error",
                    "message": "The server had an error.",
                    "param": None,
                    "sequence_number": 7,
                }
            ),
        ),
    ]
    r = await probe(replay, "resp-error", Script(reads=reads), **RESP)
    assert r.status == "error" and r.error_kind == "server_error" and r.http_status == 200
    assert "[code=server_error]: The server had an error." in (r.error_message or "")
    assert near(r.ttft_ms, 300)


async def test_response_failed_is_a_failure(replay: ReplayServer) -> None:
    # Several clients treated response.failed as success (langchain#39041).
    reads = [
        *PRELUDE,
        (
            0.30,
            ev(
                {
                    "type": "response.failed",
                    "response": response(
                        "failed",
                        None,
                        error={"code": "server_error", "message": "Something went wrong"},
                    ),
                }
            ),
        ),
    ]
    r = await probe(replay, "resp-failed", Script(reads=reads), **RESP)
    assert r.status == "error" and r.error_kind == "server_error"
    assert r.finish_reason == "failed" and "Something went wrong" in (r.error_message or "")
    assert "code=server_error" in (r.error_message or "")  # response.error.code is kept
    assert r.output_tokens is None and r.usage_source == "none"


async def test_rate_limit_failure_keeps_its_code(replay: ReplayServer) -> None:
    failed = response("failed", None, error={"code": "rate_limit_exceeded", "message": "Slow down"})
    reads = [*PRELUDE, (0.30, ev({"type": "response.failed", "response": failed}))]
    r = await probe(replay, "resp-failed-429", Script(reads=reads), **RESP)
    assert r.status == "error" and r.error_kind == "rate_limited" and r.http_status == 200
    assert "code=rate_limit_exceeded" in (r.error_message or "")


async def test_incomplete_by_content_filter_is_a_policy_stop(replay: ReplayServer) -> None:
    usage = {"input_tokens": 9, "output_tokens": 2}
    incomplete = response("incomplete", usage, incomplete_details={"reason": "content_filter"})
    reads = [
        *PRELUDE,
        (0.30, text_delta("The")),
        (0.40, ev({"type": "response.incomplete", "response": incomplete})),
    ]
    r = await probe(replay, "resp-filter", Script(reads=reads), **RESP)
    assert r.status == "error" and r.error_kind == "content_filter"
    assert r.finish_reason == "content_filter" and near(r.ttft_ms, 300)


async def test_no_terminal_event_is_truncated(replay: ReplayServer) -> None:
    reads = [*PRELUDE, (0.30, text_delta("The"))]
    r = await probe(replay, "resp-trunc", Script(reads=reads), **RESP)
    assert r.status == "error" and r.error_kind == "truncated"


async def test_budget_below_minimum_is_probe_config(replay: ReplayServer) -> None:
    body = b'{"error":{"message":"Invalid \'max_output_tokens\': integer below minimum value. Expected a value >= 16, but got 8 instead.","type":"invalid_request_error","param":"max_output_tokens","code":"integer_below_min_value"}}'
    script = Script(status=400, body=body, headers={"Content-Type": "application/json"})
    r = await probe(replay, "resp-400", script, **RESP)
    assert r.status == "error" and r.error_kind == "probe_config" and r.http_status == 400


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [
        (0.10, ev({"type": "response.created", "response": response("in_progress")})),
        (0.80, text_delta("Hi")),
        (0.81, ev({"type": "response.completed", "response": response("completed", USAGE_T10)})),
    ]
    r = await probe(
        replay, f"resp-fc10-{step_s:+.0f}", Script(reads=reads), clock=mono, wall_clock=wall, **RESP
    )
    assert_fc10(r, 800)

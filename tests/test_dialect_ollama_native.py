"""Ollama native ``/api/chat`` (NDJSON) dialect, replayed by a real server on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md (T39 OLLAMA ``docs/api.md`` "Chat
request (Streaming)", T40 ``docs/api/errors.mdx``, T41 the cached-prompt line without
``prompt_eval_count``) and its field cases FC-02, FC-07 C, FC-10 and FC-12 (Ollama counts).
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

OLL = {"provider": "ollama-native", "model": "llama3.2"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def line(content: str = "", *, thinking: str | None = None, **extra: Any) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    obj = {"model": "llama3.2", "created_at": "2026-10-21T12:00:00Z", "message": message}
    obj |= {"done": False} | extra
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


DONE = line(
    done=True,
    done_reason="stop",
    total_duration=4883583458,
    load_duration=1334875,
    prompt_eval_count=26,
    prompt_eval_duration=342546000,
    eval_count=282,
    eval_duration=4535599000,
)


async def test_chat_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = [(0.30, line("The")), (0.40, line(" sea")), (0.50, line(" is calm.")), (0.51, DONE)]
    r = await probe(
        replay, "oll-basic", Script(reads=reads, headers=NDJSON), monkeypatch=monkeypatch, **OLL
    )
    assert r.status == "ok", r.error_message
    assert r.http_status == 200 and r.error_kind is None
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 300) and near(r.ttfat_ms, 300)
    assert near(r.total_ms, 510) and r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 300, 400, 500)
    assert (r.input_tokens, r.output_tokens, r.usage_source) == (26, 282, "reported")
    assert r.response_model == "llama3.2" and not r.cold_load  # a 1.3 ms load is warm
    assert r.cache_read_tokens is None and r.cache_write_tokens is None
    assert r.reasoning_tokens is None and r.finish_reason == "stop"
    # Nanoseconds converted to ms, stored apart from the client's own timings.
    assert r.server_total_ms == pytest.approx(4883.583458)
    assert r.server_load_ms == pytest.approx(1.334875)
    assert r.server_prefill_ms == pytest.approx(342.546)
    assert r.server_decode_ms == pytest.approx(4535.599)
    assert r.server_queue_ms is None
    assert r.request_id is None and r.cost_usd is None and r.cost_source == "unpriced"
    # 282 tokens over 0.30 -> 0.50 s; the "- 1" is below the noise of a 200 ms window here.
    assert decode_tps_near(r.decode_tps, 282, 300, 500, minus_one=False)
    assert e2e_tps_near(r.e2e_output_tps, 282, 510)
    assert not (r.buffered or r.reasoning_hidden or r.no_visible_output or r.usage_inconsistent)

    sent = last_request(replay, "oll-basic")
    assert sent["path"] == "/oll-basic/v1/api/chat"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    body = sent["json"]
    assert body["model"] == "llama3.2" and body["stream"] is True
    assert body["options"] == {"num_predict": 64, "temperature": 0.0}
    assert body["messages"][0]["role"] == "user" and "think" not in body
    assert KEY not in str(r.to_dict())


async def test_fc07c_error_line_after_content(replay: ReplayServer) -> None:
    reads = [
        (0.50, b'{"message":{"role":"assistant","content":"Yes"},"done":false}\n'),
        (0.60, b'{"error":"an error was encountered while running the model"}\n'),
    ]
    r = await probe(replay, "oll-fc07c", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "error" and r.error_kind == "stream_error" and r.http_status == 200
    assert "error was encountered" in (r.error_message or "")
    assert near(r.ttft_ms, 500) and r.decode_tps is None and r.output_tokens is None


async def test_cached_prompt_without_prompt_eval_count_is_unknown(replay: ReplayServer) -> None:
    # T41 / FC-12 (ollama#2068): a missing count is not reported, never 0.
    done = b'{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":120000000,"eval_count":5,"eval_duration":100000000}\n'
    reads = [(0.20, line("Hi")), (0.25, line(" there")), (0.26, done)]
    r = await probe(replay, "oll-cached", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "ok", r.error_message
    assert r.input_tokens is None and r.output_tokens == 5
    assert r.server_prefill_ms is None and r.server_total_ms == pytest.approx(120.0)


async def test_missing_eval_count_is_unknown_not_inconsistent(replay: ReplayServer) -> None:
    done = b'{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9}\n'
    reads = [(0.20, line("Hi")), (0.21, done)]
    r = await probe(replay, "oll-noeval", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.output_tokens, r.usage_source) == (9, None, "none")
    assert not r.usage_inconsistent and r.e2e_output_tps is None


async def test_fc02_thinking_then_answer(replay: ReplayServer) -> None:
    reads = [
        (0.20, line(thinking="Okay, the user")),
        (0.40, line(thinking=" wants a sentence.")),
        (0.60, line("Waves roll.")),
        (0.61, DONE),
    ]
    r = await probe(replay, "oll-think", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 200) and near(r.ttfat_ms, 600)
    assert r.reasoning_tokens is None and not r.reasoning_hidden  # Ollama has no breakdown


async def test_line_split_across_reads_is_stamped_when_complete(replay: ReplayServer) -> None:
    first = line("Hé")  # a 2-byte character split across the reads
    cut = first.index("é".encode()) + 1
    reads = [(0.20, first[:cut]), (0.35, first[cut:] + DONE[:10]), (0.40, DONE[10:])]
    r = await probe(replay, "oll-split", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 350) and near(r.total_ms, 400)


async def test_missing_done_line_is_truncated(replay: ReplayServer) -> None:
    reads = [(0.20, line("Hi"))]
    r = await probe(replay, "oll-trunc", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "error" and r.error_kind == "truncated"


async def test_done_without_tokens_is_empty_response(replay: ReplayServer) -> None:
    done = b'{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9}\n'
    r = await probe(replay, "oll-empty", Script(reads=[(0.2, done)], headers=NDJSON), **OLL)
    assert r.status == "error" and r.error_kind == "empty_response" and r.ttft_ms is None


async def test_model_loading_answer_is_its_own_outcome(replay: ReplayServer) -> None:
    # Ollama answers done_reason "load" while it loads the model instead of generating.
    done = b'{"model":"llama3.2","created_at":"2026-10-21T12:00:00Z","message":{"role":"assistant","content":""},"done_reason":"load","done":true}\n'
    r = await probe(replay, "oll-load", Script(reads=[(0.2, done)], headers=NDJSON), **OLL)
    assert r.status == "error" and r.error_kind == "model_loading"  # naive: empty_response
    assert r.finish_reason == "load" and r.ttft_ms is None


async def test_cold_load_inside_ttft_is_flagged(replay: ReplayServer) -> None:
    done = line(
        done=True,
        done_reason="stop",
        total_duration=2_700_000_000,
        load_duration=2_500_000_000,
        prompt_eval_count=26,
        eval_count=2,
        eval_duration=100_000_000,
    )
    reads = [(0.30, line("Hi")), (0.40, line("!")), (0.41, done)]
    r = await probe(replay, "oll-cold", Script(reads=reads, headers=NDJSON), **OLL)
    assert r.status == "ok", r.error_message
    assert r.cold_load and r.server_load_ms == pytest.approx(2500.0)


@pytest.mark.parametrize(
    ("case", "status", "body", "kind"),
    [
        ("oll-404", 404, b'{"error":"model \'x\' not found"}', "model_not_found"),
        ("oll-400", 400, b'{"error":"invalid options: num_predict"}', "probe_config"),
        ("oll-500", 500, b'{"error":"llama runner process has terminated"}', "server_error"),
    ],
)
async def test_pre_stream_errors(
    replay: ReplayServer, case: str, status: int, body: bytes, kind: str
) -> None:
    script = Script(status=status, body=body, headers={"Content-Type": "application/json"})
    r = await probe(replay, case, script, **OLL)
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert json.loads(body)["error"] in (r.error_message or "")


async def test_sse_body_where_ndjson_expected_is_bad_format(replay: ReplayServer) -> None:
    script = Script(body=b'data: {"x":1}\n\n', headers={"Content-Type": "text/event-stream"})
    r = await probe(replay, "oll-sse", script, **OLL)
    assert r.status == "error" and r.error_kind == "bad_format"


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [(0.80, line("Hi")), (0.81, DONE)]
    r = await probe(
        replay,
        f"oll-fc10-{step_s:+.0f}",
        Script(reads=reads, headers=NDJSON),
        clock=mono,
        wall_clock=wall,
        **OLL,
    )
    assert_fc10(r, 800)

"""Azure OpenAI dialect, replayed by a real server on 127.0.0.1.

Shapes from the recorded streams of docs/field-cases.md (T14 MSDOCS sample and the dto-btn
fixture, T15 "blocked by filters", T16 pre-stream 400, the 429 body) and its field cases FC-01 B,
FC-08 and FC-10.
"""

from __future__ import annotations

import pytest

from probes.config import ConfigError, parse_config
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

AZ = {
    "provider": "azure",
    "model": "gpt-4o-mini",
    "deployment": "canary-4o",
    "api_version": "2024-10-21",
}
PROMPT_ANNOTATION = b'data: {"id":"","object":"","created":0,"model":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"}}}],"choices":[],"usage":null}\n\n'
ROLE = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":null,"delta":{"role":"assistant"},"content_filter_results":{}}],"usage":null}\n\n'
FILTER_RESULTS = '"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}'


def content(text: str, finish: str | None = None) -> bytes:
    fr = f'"{finish}"' if finish else "null"
    return (
        f'data: {{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[{{"index":0,"finish_reason":{fr},"delta":{{"content":"{text}"}},{FILTER_RESULTS}}}],"usage":null}}\n\n'
    ).encode()


FINISH = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop","delta":{}}],"usage":null}\n\n'
ASYNC_ANNOTATION = b'data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":null,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"content_filter_offsets":{"check_offset":44,"start_offset":44,"end_offset":198}}],"usage":null}\n\n'
USAGE = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":3,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
HEADERS = {
    "Content-Type": "text/event-stream",
    "apim-request-id": "3c0f5a2e-6d4b-4d57-9b47-0c0e6a1d2f11",
    "x-ratelimit-remaining-requests": "79",
    "x-ratelimit-remaining-tokens": "79000",
}


async def test_async_filter_stream_every_field(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # T14: prompt annotation first, an annotation without delta after the finish chunk.
    reads = [
        (0.11, PROMPT_ANNOTATION),
        (0.12, ROLE),
        (0.30, content("Color")),
        (0.40, content(" blue")),
        (0.50, content(".")),
        (0.51, FINISH),
        (0.55, ASYNC_ANNOTATION),
        (0.56, USAGE),
        (0.57, b"data: [DONE]\n\n"),
    ]
    r = await probe(
        replay, "az-async", Script(reads=reads, headers=HEADERS), monkeypatch=monkeypatch, **AZ
    )
    assert r.status == "ok", r.error_message
    assert r.http_status == 200 and r.error_kind is None
    assert near(r.ttfb_ms, 100) and near(r.ttft_ms, 300) and near(r.ttfat_ms, 300)
    assert near(r.total_ms, 570) and r.token_events == 3
    assert gaps_near(r.itl_p50_ms, r.itl_max_ms, 300, 400, 500)
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (20, 0, 3)
    assert r.response_model == "gpt-4o-mini"  # annotation chunks' model "" does not count
    assert r.reasoning_tokens == 0 and r.usage_source == "reported"
    assert r.finish_reason == "stop"  # the late annotation does not clear it
    assert r.request_id == "3c0f5a2e-6d4b-4d57-9b47-0c0e6a1d2f11"
    assert r.ratelimit_remaining_requests == 79 and r.ratelimit_remaining_tokens == 79000
    assert decode_tps_near(r.decode_tps, 3, 300, 500)  # (3 - 1) / 0.2 s = 10, naive 15
    assert e2e_tps_near(r.e2e_output_tps, 3, 570)
    assert not (r.buffered or r.reasoning_hidden or r.no_visible_output or r.usage_inconsistent)
    assert r.cost_usd is not None and (r.cost_source or "").startswith("genai-prices")

    sent = last_request(replay, "az-async")
    assert sent["path"] == "/az-async/v1/openai/deployments/canary-4o/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == KEY
    assert "Authorization" not in sent["headers"]
    body = sent["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert KEY not in str(r.to_dict())


async def test_fc01b_prompt_annotation_chunk_first(replay: ReplayServer) -> None:
    reads = [
        (
            0.11,
            b'data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n',
        ),
        (
            0.12,
            b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
        ),
        (
            0.80,
            b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n',
        ),
        (
            0.95,
            b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}\n\n',
        ),
        (0.96, b"data: [DONE]\n\n"),
    ]
    r = await probe(replay, "az-fc01b", Script(reads=reads), **AZ)
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 800) and r.finish_reason == "stop" and r.token_events == 2
    assert r.output_tokens is None and r.usage_source == "none"


async def test_blocked_mid_stream_is_a_billed_content_filter(replay: ReplayServer) -> None:
    # T15: the filter stops the output; usage still follows and is priced (billed). A policy
    # stop is its own outcome (content_filter), not a provider failure.
    blocked = b'data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":"content_filter","content_filter_results":{"protected_material_text":{"detected":true,"filtered":true}},"content_filter_offsets":{"check_offset":65,"start_offset":65,"end_offset":1056}}],"usage":null}\n\n'
    reads = [
        (0.11, PROMPT_ANNOTATION),
        (0.12, ROLE),
        (0.30, content("Once")),
        (0.40, content(" upon")),
        (0.45, blocked),
        (0.46, USAGE),
        (0.47, b"data: [DONE]\n\n"),
    ]
    r = await probe(
        replay,
        "az-blocked",
        Script(reads=reads),
        input_usd_per_mtok=0.15,
        output_usd_per_mtok=0.60,
        **AZ,
    )
    assert r.status == "error" and r.error_kind == "content_filter" and r.http_status == 200
    assert r.finish_reason == "content_filter" and "content filter" in (r.error_message or "")
    assert near(r.ttft_ms, 300) and r.decode_tps is None
    assert (r.input_tokens, r.output_tokens) == (20, 3)
    assert r.cost_usd == pytest.approx(0.0000048, abs=1e-10)  # (20 x 0.15 + 3 x 0.60) / 1e6


async def test_fc12a_cached_tokens_are_inside_prompt_tokens(replay: ReplayServer) -> None:
    usage = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
    reads = [(0.11, PROMPT_ANNOTATION), (0.20, content("Hi")), (0.25, content("!", "stop"))]
    reads += [(0.26, usage), (0.27, b"data: [DONE]\n\n")]
    r = await probe(
        replay,
        "az-fc12a",
        Script(reads=reads),
        input_usd_per_mtok=2.50,
        cache_read_usd_per_mtok=1.25,
        output_usd_per_mtok=10.0,
        **AZ,
    )
    assert r.status == "ok", r.error_message
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (2006, 1920, 300)
    assert r.reasoning_tokens == 0
    assert r.cost_usd == pytest.approx(0.005615, abs=1e-10)  # naive 0.008015 or 0.010415


async def test_default_filter_mode_arrives_buffered(replay: ReplayServer) -> None:
    # Default streaming mode releases filtered blocks: every token in one transport read.
    block = content("The") + content(" sea") + content(" is") + content(" wide.")
    reads = [
        (0.11, PROMPT_ANNOTATION + ROLE),
        (0.60, block + FINISH),
        (0.61, USAGE + b"data: [DONE]\n\n"),
    ]
    r = await probe(replay, "az-buffered", Script(reads=reads), **AZ)
    assert r.status == "ok", r.error_message
    assert r.buffered and r.decode_tps is None and r.itl_ms is None
    assert near(r.ttft_ms, 600) and r.e2e_output_tps is not None


async def test_reasoning_deployment_gets_max_completion_tokens(replay: ReplayServer) -> None:
    reads = [(0.2, content("Hi", "stop")), (0.21, b"data: [DONE]\n\n")]
    r = await probe(replay, "az-o3", Script(reads=reads), **(AZ | {"model": "o3-mini"}))
    assert r.status == "ok", r.error_message
    body = last_request(replay, "az-o3")["json"]
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body and "temperature" not in body


@pytest.mark.parametrize(
    ("case", "status", "body", "headers", "kind", "retry"),
    [
        (
            "az-400-filter",  # T16: the canary's own prompt was filtered
            400,
            b'{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI\'s content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}',
            {},
            "safety_block",  # the prompt was blocked: a policy outcome, not our bad request
            None,
        ),
        (
            "az-429",
            429,
            b'{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current tier. Please retry after 6 seconds."}}',
            {"Retry-After": "6", "x-ratelimit-remaining-tokens": "0"},
            "rate_limited",
            6.0,
        ),
        (
            "az-401",
            401,
            b'{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}',
            {},
            "auth",
            None,
        ),
        (
            "az-404",
            404,
            b'{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}',
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
    r = await probe(replay, case, script, **AZ)
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert r.retry_after_s == retry
    if status == 429:
        assert r.ratelimit_remaining_tokens == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"api_version": "2024-10-21"}, "needs deployment"),
        ({"deployment": "d"}, "needs api_version"),
        ({"deployment": "d", "api_version": "latest"}, "api_version"),
    ],
)
def test_azure_config_requires_deployment_and_version(extra: dict[str, str], message: str) -> None:
    lines = [
        "[[targets]]",
        'name = "az"',
        'provider = "azure"',
        'base_url = "https://res.openai.azure.com"',
        'model = "gpt-4o"',
        *[f'{k} = "{v}"' for k, v in extra.items()],
    ]
    with pytest.raises(ConfigError, match=message):
        parse_config("\n".join(lines))


def test_deployment_is_rejected_for_other_providers() -> None:
    text = '[[targets]]\nname = "o"\nprovider = "openai"\nmodel = "gpt-4o"\ndeployment = "d"\n'
    with pytest.raises(ConfigError, match="deployment is used only by provider azure"):
        parse_config(text)


@pytest.mark.parametrize("step_s", [-2.0, 2.0])
async def test_fc10_wall_clock_steps_do_not_move_durations(
    replay: ReplayServer, step_s: float
) -> None:
    mono, wall = stepped_clocks(step_s)
    reads = [(0.11, PROMPT_ANNOTATION), (0.80, content("Hi", "stop")), (0.81, b"data: [DONE]\n\n")]
    r = await probe(
        replay, f"az-fc10-{step_s:+.0f}", Script(reads=reads), clock=mono, wall_clock=wall, **AZ
    )
    assert_fc10(r, 800)

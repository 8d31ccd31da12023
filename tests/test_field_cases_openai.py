"""Field cases FC-01 … FC-09 (docs/field-cases.md) for the OpenAI chat dialect.

Each case is replayed read by read, at its stated times, by a real HTTP server on 127.0.0.1
in its own process; the probe runs unpatched. Stamps are compared with when the server really
sent each read, to within a few milliseconds (tests/probing.py).
"""

from __future__ import annotations

import json

import httpx
import pytest

from probes.runner import run_probe
from probes.transport import make_client
from tests.conftest import make_target
from tests.probing import decode_tps_near, e2e_tps_near, near, probe
from tests.servers import ReplayServer, Script

# Real servers and real time on a shared machine: see pyproject.toml (pytest-rerunfailures).
pytestmark = pytest.mark.flaky(reruns=2)

ROLE = b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'


async def test_fc01a_role_prelude_is_not_a_token(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc01a",
        Script(
            reads=[
                (0.12, ROLE),
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
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 800) and near(r.ttfat_ms, 800)
    assert near(r.ttfb_ms, 100)
    assert r.finish_reason == "stop"
    assert r.token_events == 2
    assert r.output_tokens is None and r.usage_source == "none"  # no usage chunk was sent
    assert r.decode_tps is None and r.cost_usd is None


async def test_fc01b_azure_filter_chunk_first(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc01b",
        Script(
            reads=[
                (
                    0.11,
                    b'data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n',
                ),
                (0.12, ROLE),
                (
                    0.80,
                    b'data: {"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n',
                ),
                (
                    0.95,
                    b'data: {"choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}\n\n',
                ),
                (0.96, b"data: [DONE]\n\n"),
            ]
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 800)


FC02_READS = [
    (0.15, b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'),
    (0.40, b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"Let me think"}}]}\n\n'),
    (3.00, b'data: {"choices":[{"index":0,"delta":{"reasoning_content":" more"}}]}\n\n'),
    (6.10, b'data: {"choices":[{"index":0,"delta":{"reasoning_content":" done"}}]}\n\n'),
    (6.20, b'data: {"choices":[{"index":0,"delta":{"content":"Paris"}}]}\n\n'),
    (6.25, b'data: {"choices":[{"index":0,"delta":{"content":"."},"finish_reason":"stop"}]}\n\n'),
    (
        6.26,
        b'data: {"choices":[],"usage":{"prompt_tokens":15,"completion_tokens":412,"total_tokens":427,"completion_tokens_details":{"reasoning_tokens":410}}}\n\n',
    ),
    (6.27, b"data: [DONE]\n\n"),
]


async def test_fc02_reasoning_counts_for_ttft_and_tps(replay: ReplayServer) -> None:
    # Compressed 10x in time: every duration is a tenth, every rate ten times the stated value.
    r = await probe(replay, "fc02", Script(reads=FC02_READS, scale=0.1))
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 40) and near(r.ttfat_ms, 620)
    assert r.output_tokens == 412 and r.reasoning_tokens == 410 and r.input_tokens == 15
    # 411 / (0.625 - 0.040) = 703 tok/s (the "- 1" of 412 tokens is inside this noise; see
    # test_decode_tps_subtracts_one for a case that tells them apart).
    assert decode_tps_near(r.decode_tps, 412, 40, 625, minus_one=False)
    assert not r.no_visible_output and not r.reasoning_hidden


async def test_fc02_variant_reasoning_only_is_ok_without_answer(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc02v",
        Script(
            reads=[
                (
                    0.15,
                    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
                ),
                (0.40, b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"Hmm"}}]}\n\n'),
                (
                    0.60,
                    b'data: {"choices":[{"index":0,"delta":{"reasoning_content":" so"},"finish_reason":"length"}]}\n\n',
                ),
                (
                    0.61,
                    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":16,"total_tokens":25,"completion_tokens_details":{"reasoning_tokens":16}}}\n\n',
                ),
                (0.62, b"data: [DONE]\n\n"),
            ]
        ),
    )
    assert r.status == "ok"
    assert near(r.ttft_ms, 400) and r.ttfat_ms is None
    assert r.finish_reason == "length" and r.no_visible_output


async def test_fc03_usage_in_empty_choices_chunk(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc03",
        Script(
            reads=[
                (
                    0.70,
                    b'data: {"choices":[{"index":0,"delta":{"content":"OK"},"finish_reason":null}],"usage":null}\n\n',
                ),
                (
                    0.75,
                    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
                ),
                (
                    0.76,
                    b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}\n\n',
                ),
                (0.77, b"data: [DONE]\n\n"),
            ]
        ),
        input_usd_per_mtok=2.5,
        output_usd_per_mtok=10.0,
    )
    assert r.status == "ok"
    assert near(r.ttft_ms, 700)
    assert (r.input_tokens, r.output_tokens, r.usage_source) == (12, 5, "reported")
    assert r.cost_usd == pytest.approx(0.00008, abs=1e-10)  # FC-11: 12 x 2.5e-6 + 5 x 1e-5
    body = replay.requests["fc03"][-1]["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_fc03b_zero_usage_with_content_is_inconsistent(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc03b",
        Script(
            reads=[
                (
                    0.70,
                    b'data: {"choices":[{"index":0,"delta":{"content":"OK"},"finish_reason":"stop"}]}\n\n',
                ),
                (
                    0.76,
                    b'data: {"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}\n\n',
                ),
                (0.77, b"data: [DONE]\n\n"),
            ]
        ),
        input_usd_per_mtok=1,
        output_usd_per_mtok=1,
    )
    assert r.status == "ok"
    assert r.usage_inconsistent and r.output_tokens is None and r.cost_usd is None


async def test_fc05a_comments_before_first_token(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc05a",
        Script(
            reads=[
                (0.10, b": OPENROUTER PROCESSING\n\n"),
                (1.10, b": OPENROUTER PROCESSING\n\n"),
                (
                    1.40,
                    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
                ),
                (
                    1.45,
                    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n',
                ),
                (1.50, b"data: [DONE]\n\n"),
            ]
        ),
    )
    assert r.status == "ok"
    assert near(r.ttft_ms, 1450)


async def test_fc05b_comment_after_id_events(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc05b",
        Script(
            reads=[
                (0.50, b'id: 1\ndata: {"choices":[{"index":0,"delta":{"content":"A"}}]}\n\n'),
                (15.50, b": ping\n\n"),
                (
                    16.00,
                    b'id: 2\ndata: {"choices":[{"index":0,"delta":{"content":"B"},"finish_reason":"stop"}]}\n\n',
                ),
                (16.01, b"data: [DONE]\n\n"),
            ],
            scale=0.1,
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 50) and r.token_events == 2


async def test_fc06a_event_split_across_reads(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc06a",
        Script(
            reads=[
                (0.80, b'data: {"choices":[{"index":0,"delta":{"content":"Hel'),
                (0.85, b'lo"},"finish_reason":"stop"}]}\n\ndata: [DO'),
                (0.86, b"NE]\n\n"),
            ]
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 850)  # stamped when the event is complete


async def test_fc06b_multiline_data(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc06b",
        Script(
            reads=[
                (
                    0.80,
                    b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
                ),
            ]
        ),
    )
    assert r.status == "ok"
    assert near(r.ttft_ms, 800)


async def test_fc06_crlf_and_split_utf8(replay: ReplayServer) -> None:
    event = '{"choices":[{"index":0,"delta":{"content":"é€"},"finish_reason":"stop"}]}'.encode()
    cut = event.index("€".encode()) + 1  # split inside the 3-byte character
    r = await probe(
        replay,
        "fc06c",
        Script(
            reads=[
                (0.30, b"data: " + event[:cut]),
                (0.35, event[cut:] + b"\r\n\r\n"),
                (0.36, b"data: [DONE]\r"),
                (0.37, b"\n\r\n"),
            ]
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 350)


async def test_fc07a_error_object_in_200_stream(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc07a",
        Script(
            reads=[
                (
                    0.06,
                    b'data: {"error":{"code":400,"message":"request (4390 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4390,"n_ctx":4096}}\n\n',
                ),
            ]
        ),
    )
    # The server's documented type says our prompt does not fit: our side, never downtime.
    assert r.status == "error" and r.error_kind == "probe_config"
    assert r.http_status == 200
    assert "[type=exceed_context_size_error code=400]" in (r.error_message or "")
    assert r.ttft_ms is None


async def test_fc07b_error_after_partial_output(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc07b",
        Script(
            reads=[
                (0.90, b'data: {"choices":[{"index":0,"delta":{"content":"The answer"}}]}\n\n'),
                (
                    1.40,
                    b'data: {"object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n',
                ),
            ]
        ),
    )
    # OpenRouter's error.code is the HTTP status the upstream failed with.
    assert r.status == "error" and r.error_kind == "server_error"
    assert "code=502" in (r.error_message or "")
    assert near(r.ttft_ms, 900)  # kept for diagnosis
    assert r.decode_tps is None  # failures are never rate samples


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (
            401,
            b'{"error":{"message":"Incorrect API key provided: sk-abcdef1234567890","type":"invalid_request_error","code":"invalid_api_key"}}',
            {},
            "auth",
        ),
        (
            404,
            b'{"error":{"message":"The model does not exist","type":"invalid_request_error","code":"model_not_found"}}',
            {},
            "model_not_found",
        ),
        (
            400,
            b'{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}',
            {},
            "probe_config",
        ),
        (
            429,
            b'{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"}}',
            {"retry-after": "20"},
            "rate_limited",
        ),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            {},
            "overloaded",
        ),
        (
            500,
            b'{"error":{"message":"The server had an error","type":"server_error"}}',
            {},
            "server_error",
        ),
        (
            502,
            b"<html><body>Bad gateway</body></html>",
            {"Content-Type": "text/html"},
            "server_error",
        ),
    ],
)
async def test_fc08_http_errors_are_classified(
    replay: ReplayServer, status: int, body: bytes, headers: dict[str, str], kind: str
) -> None:
    script = Script(
        status=status, body=body, headers={"Content-Type": "application/json", **headers}
    )
    r = await probe(replay, f"http{status}", script)
    assert r.status == "error" and r.error_kind == kind and r.http_status == status
    assert r.ttft_ms is None and r.decode_tps is None
    assert "sk-abc" not in (r.error_message or "")
    if status == 429:
        assert r.retry_after_s == 20.0


async def test_fc09a_one_output_token(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc09a",
        Script(
            reads=[
                (
                    0.50,
                    b'data: {"choices":[{"index":0,"delta":{"content":"OK"},"finish_reason":"stop"}]}\n\n',
                ),
                (
                    0.51,
                    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\n',
                ),
                (0.52, b"data: [DONE]\n\n"),
            ]
        ),
    )
    assert r.status == "ok"
    assert r.output_tokens == 1 and r.decode_tps is None and r.itl_ms is None
    assert e2e_tps_near(r.e2e_output_tps, 1, 520)  # 1 / 0.52 s = 1.92 tok/s


async def test_decode_tps_subtracts_one(replay: ReplayServer) -> None:
    # Five tokens at 0.20, 0.30, 0.40, 0.50, 0.60 s: four intervals over 0.4 s.
    reads = [
        (
            0.20 + 0.1 * i,
            f'data: {{"choices":[{{"index":0,"delta":{{"content":"t{i}"}}}}]}}\n\n'.encode(),
        )
        for i in range(5)
    ]
    reads += [
        (0.61, b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'),
        (0.62, b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5}}\n\n'),
        (0.63, b"data: [DONE]\n\n"),
    ]
    r = await probe(replay, "tps-minus-one", Script(reads=reads))
    assert r.status == "ok", r.error_message
    assert decode_tps_near(r.decode_tps, 5, 200, 600)  # (5 - 1) / 0.4 = 10.0, naive 12.5
    assert r.itl_ms is not None and abs(r.itl_ms - 1000.0 / r.decode_tps) < 1e-9
    assert e2e_tps_near(r.e2e_output_tps, 5, 630)  # 5 / 0.63 = 7.94: TTFT included


async def test_fc09b_zero_tokens_is_empty_response(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "fc09b",
        Script(
            reads=[
                (
                    0.40,
                    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
                ),
                (0.45, b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'),
                (
                    0.46,
                    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":0,"total_tokens":9}}\n\n',
                ),
                (0.47, b"data: [DONE]\n\n"),
            ]
        ),
    )
    assert r.status == "error" and r.error_kind == "empty_response"
    assert r.ttft_ms is None and r.output_tokens == 0 and r.decode_tps is None


async def test_truncated_stream_without_done(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "trunc",
        Script(
            reads=[
                (0.20, b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'),
            ]
        ),
    )
    assert r.status == "error" and r.error_kind == "truncated"


async def test_connection_dropped_mid_stream(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "drop",
        Script(
            reads=[
                (0.20, b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'),
            ],
            abort_at_end=True,
        ),
    )
    assert r.status == "error" and r.error_kind == "truncated"


async def test_stall_mid_stream_even_with_keepalives(replay: ReplayServer) -> None:
    reads = [(0.20, b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n')]
    reads += [(0.20 + 0.2 * i, b": keep-alive\n\n") for i in range(1, 20)]
    r = await probe(replay, "stall", Script(reads=reads), stall_timeout_s=1.0)
    assert r.status == "error" and r.error_kind == "stall"
    assert r.total_ms is not None and 1100 < r.total_ms < 2500
    assert "keep-alive" in (r.error_message or "")


async def test_no_first_token(replay: ReplayServer) -> None:
    reads = [(0.2 * i, b": keep-alive\n\n") for i in range(1, 20)]
    r = await probe(replay, "nofirst", Script(reads=reads), first_token_timeout_s=1.0)
    assert r.status == "error" and r.error_kind == "first_token_timeout"


async def test_total_deadline(replay: ReplayServer) -> None:
    reads = [
        (0.1 * i, b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
        for i in range(1, 40)
    ]
    r = await probe(replay, "deadline", Script(reads=reads), timeout_s=1.0)
    assert r.status == "error" and r.error_kind == "deadline"
    assert r.total_ms is not None and 950 < r.total_ms < 1500


async def test_html_page_with_200_is_bad_format(replay: ReplayServer) -> None:
    script = Script(
        body=b"<!DOCTYPE html><html>Sign in to the Wi-Fi</html>",
        headers={"Content-Type": "text/html"},
    )
    r = await probe(replay, "html200", script)
    assert r.status == "error" and r.error_kind == "bad_format"
    assert "HTML" in (r.error_message or "")


async def test_ndjson_where_sse_expected_is_bad_format(replay: ReplayServer) -> None:
    script = Script(
        body=b'{"message":{"content":"a"},"done":false}\n{"done":true}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    r = await probe(replay, "ndjson", script)
    assert r.status == "error" and r.error_kind == "bad_format"


async def test_invalid_json_event_is_bad_format(replay: ReplayServer) -> None:
    r = await probe(replay, "badjson", Script(reads=[(0.1, b"data: {not json\n\n")]))
    assert r.status == "error" and r.error_kind == "bad_format"


async def test_connect_refused_is_classified() -> None:
    target = make_target("http://127.0.0.1:9/v1")
    async with make_client() as client:
        r = await run_probe(target, client)
    assert r.status == "error" and r.error_kind == "connect_refused"
    assert r.ttfb_ms is None and r.total_ms is not None


async def test_api_key_is_sent_but_never_recorded(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IW_TEST_KEY", "sk-test-SECRET-0123456789")
    body = b'{"error":{"message":"bad key sk-test-SECRET-0123456789","type":"auth"}}'
    url = replay.add(
        "keyed", Script(status=401, body=body, headers={"Content-Type": "application/json"})
    )
    target = make_target(url, api_key_env="IW_TEST_KEY")
    async with make_client() as client:
        r = await run_probe(target, client)
    sent = replay.requests["keyed"][-1]["headers"]
    assert sent["Authorization"] == "Bearer sk-test-SECRET-0123456789"
    assert "SECRET" not in str(r.to_dict())
    assert r.error_kind == "auth"


async def test_unset_key_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IW_UNSET_KEY", raising=False)
    target = make_target("http://127.0.0.1:9/v1", api_key_env="IW_UNSET_KEY")
    async with httpx.AsyncClient() as client:
        r = await run_probe(target, client)
    assert r.error_kind == "not_configured" and "IW_UNSET_KEY" in (r.error_message or "")


async def test_body_left_open_after_done_is_still_ok(replay: ReplayServer) -> None:
    r = await probe(
        replay,
        "openafter",
        Script(
            reads=[
                (
                    0.10,
                    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n',
                ),
                (0.20, b"data: [DONE]\n\n"),
                (5.00, b": still here\n\n"),
            ]
        ),
    )
    assert r.status == "ok", r.error_message
    assert near(r.total_ms, 200)  # ends at the terminal marker, not at the drain


async def test_connection_is_reused_after_a_complete_stream(replay: ReplayServer) -> None:
    url = replay.add(
        "reuse",
        Script(
            headers_at=0.0,
            reads=[
                (
                    0.01,
                    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n',
                ),
                (0.02, b"data: [DONE]\n\n"),
            ],
        ),
    )
    target = make_target(url)
    async with make_client() as client:
        first = await run_probe(target, client)
        second = await run_probe(target, client)
    assert first.conn_reused is False and second.conn_reused is True


async def test_inline_think_is_reasoning_until_the_tag_closes(replay: ReplayServer) -> None:
    # Together DeepSeek-R1 / Groq raw: reasoning inside <think>…</think> in content; the first
    # answer token is the first non-whitespace content after </think> (docs/metrics.md).
    def content(text: str) -> bytes:
        return (
            b'data: {"choices":[{"index":0,"delta":{"content":'
            + json.dumps(text).encode()
            + b"}}]}\n\n"
        )

    reads = [
        (0.10, content("<think>")),
        (0.30, content("Let me think")),
        (0.50, content("</think>")),
        (0.60, content("\n\n")),
        (0.80, content("Paris")),
        (0.81, b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'),
        (0.82, b"data: [DONE]\n\n"),
    ]
    r = await probe(replay, "inline-think", Script(reads=reads))
    assert r.status == "ok", r.error_message
    assert near(r.ttft_ms, 100)  # the <think> tag: reasoning has begun
    assert near(r.ttfat_ms, 800)  # naive: 100 (the tag) or 600 (whitespace after it)
    assert r.token_events == 5 and not r.no_visible_output

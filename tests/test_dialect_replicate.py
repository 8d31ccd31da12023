"""Replicate: create → stream → read the prediction, against a fake Replicate on 127.0.0.1.

The create response's recorded fields (id, version, created_at, status) come from
replicate-python's cassette ``tests/cassettes/predictions-stream.yaml`` (a real
``POST /v1/predictions`` with ``"stream": true``, answered 201); the output texts are the first
outputs of the recorded llama-2-70b-chat prediction in the same cassette. No recorded event
stream was available, so the events are composed in the documented format (``event`` /
``id`` / ``data`` lines, ``done`` with ``{}``), as replicate-javascript's stream tests send them.
Expected values are computed by hand from the scripted times below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from probes.config import ResolvedTarget
from probes.dialects.replicate import ReplicateParser, create_url, prediction_event
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from tests.conftest import make_target
from tests.fake_replicate import FakeReplicate, ReplicateScript, event
from tests.probing import KEY, KEY_ENV
from tests.probing import near_schedule as near
from tests.servers import ServerThread

pytestmark = pytest.mark.flaky(reruns=2)

#: Recorded create response fields (replicate-python predictions-stream.yaml).
RECORDED_ID = "4awn473bsrztjzlx2b6ufoxkkm"
RECORDED_VERSION = "02e509c789964a7ea8736978a43525956ef40397be9033abf9fd2badfe68c9e3"
RECORDED_CREATED_AT = "2023-10-29T11:19:59.558752983Z"
RECORDED = {
    "id": RECORDED_ID,
    "version": RECORDED_VERSION,
    "input": {"prompt": "write a sonnet about camelids"},
    "logs": "",
    "error": None,
    "status": "starting",
    "created_at": RECORDED_CREATED_AT,
    "stream": True,
}
#: The recorded llama-2-70b-chat prediction's first outputs ("" first: not a token).
OUTPUTS = ["", " Sure!", " Here's", " a", " poem", " about", " open", " source", " machine"]
OUTPUTS += [" learning", " in"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReplicate]:
    server = FakeReplicate()
    thread = ServerThread(server.app)
    server.port = thread.start()
    yield server
    thread.stop()


async def _probe(
    fake: FakeReplicate,
    case: str,
    script: ReplicateScript,
    monkeypatch: pytest.MonkeyPatch,
    model: str = "meta/meta-llama-3-8b-instruct",
    **settings: object,
) -> ProbeRecord:
    monkeypatch.setenv(KEY_ENV, KEY)
    target: ResolvedTarget = make_target(
        fake.add(case, script),
        provider="replicate",
        model=model,
        api_key_env=KEY_ENV,
        **settings,
    )
    async with make_client() as client:
        return await run_probe(target, client)


def _stream(token_times: list[float], done_at: float, outputs: list[str] = OUTPUTS) -> list:
    reads = [(token_times[0] - 0.05, event("output", outputs[0], "1698578399:0"))]
    reads += [
        (t, event("output", text, f"1698578399:{i + 1}"))
        for i, (t, text) in enumerate(zip(token_times, outputs[1:], strict=False))
    ]
    reads.append((done_at, event("done", "{}", "1698578399:99")))
    return reads


async def test_recorded_prediction_create_stream_then_metrics(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten tokens 100 ms apart from 300 ms after the create request; done at 1250 ms.
    times = [0.30 + 0.1 * i for i in range(10)]
    final = {
        "status": "succeeded",
        "started_at": "2023-10-29T11:19:59.676752Z",
        "completed_at": "2023-10-29T11:20:00.768752Z",
        "metrics": {
            "input_token_count": 23,
            "output_token_count": 10,
            "predict_time": 1.092,
            "total_time": 1.21,
            "time_to_first_token": 0.182,
            "tokens_per_second": 9.157,
        },
    }
    script = ReplicateScript(prediction=RECORDED, reads=_stream(times, 1.25), final=final)
    record = await _probe(
        fake,
        "recorded",
        script,
        monkeypatch,
        input_usd_per_mtok=0.05,
        output_usd_per_mtok=0.25,
    )
    assert record.status == "ok", record.error_message
    assert record.provider == "replicate"
    # The clock starts at the create request: TTFT is the first non-empty output, 300 ms
    # (a clock started at the stream request would read ~200 ms and fail the early bound).
    assert near(record.ttft_ms, 300.0)
    assert near(record.ttfat_ms, 300.0)
    assert near(record.ttfb_ms, 100.0)  # the stream response's headers
    assert near(record.total_ms, 1250.0)
    assert record.token_events == 10
    # Usage from the finished prediction's metrics, not from counting events.
    assert record.input_tokens == 23 and record.output_tokens == 10
    assert record.usage_source == "reported"
    # (10 − 1) / (1.20 − 0.30 s) = 10.0 tok/s; the naive 10 / 0.9 = 11.1 fails.
    assert record.decode_tps == pytest.approx(10.0, rel=0.05)
    assert record.e2e_output_tps == pytest.approx(10 / 1.25, rel=0.05)
    # Replicate's own figures beside ours: started − created = 0.676752 − 0.558752 s.
    assert record.server_queue_ms == pytest.approx(118.0, abs=1e-6)
    assert record.server_ttft_ms == pytest.approx(182.0, abs=1e-6)
    assert record.server_predict_ms == pytest.approx(1092.0, abs=1e-6)
    assert record.server_total_ms == pytest.approx(1210.0, abs=1e-6)
    assert record.request_id == RECORDED_ID
    # 23 × 0.05e-6 + 10 × 0.25e-6
    assert record.cost_usd == pytest.approx(3.65e-6, abs=1e-12)
    assert record.cost_source == "config"

    create, stream, result = fake.requests["recorded"]
    assert create["method"] == "POST"
    assert create["path"] == "/recorded/v1/models/meta/meta-llama-3-8b-instruct/predictions"
    assert create["json"] == {
        "input": {"prompt": record_prompt(), "max_tokens": 64, "temperature": 0.0},
        "stream": True,
    }
    assert create["headers"]["Authorization"] == f"Bearer {KEY}"
    assert stream["path"] == "/recorded/stream/pred-recorded"
    assert stream["headers"]["Accept"] == "text/event-stream"
    assert stream["headers"]["Authorization"] == f"Bearer {KEY}"
    assert result["path"] == "/recorded/v1/predictions/pred-recorded"
    assert KEY not in json.dumps(record.to_dict())


def record_prompt() -> str:
    from probes.config import DEFAULT_PROMPT

    return DEFAULT_PROMPT


async def test_cold_boot_shows_in_ttft_and_in_replicate_queue_time(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The container boots for 1.25 s (started_at − created_at); the first token follows at
    # 1.50 s after the create request, so our TTFT carries the boot.
    times = [1.50, 1.55, 1.60]
    final = {
        "status": "succeeded",
        "created_at": "2026-10-21T12:00:00.000000Z",
        "started_at": "2026-10-21T12:00:01.250000Z",
        "metrics": {"input_token_count": 12, "output_token_count": 3, "predict_time": 0.35},
    }
    # The first read after done still says "processing": the result is read again.
    script = ReplicateScript(reads=_stream(times, 1.62), final=final, processing_reads=1)
    record = await _probe(fake, "coldboot", script, monkeypatch)
    assert record.status == "ok", record.error_message
    assert near(record.ttft_ms, 1500.0)
    assert record.server_queue_ms == pytest.approx(1250.0, abs=1e-6)
    assert record.server_predict_ms == pytest.approx(350.0, abs=1e-6)
    assert record.server_ttft_ms is None  # not reported: null, never 0
    assert record.cost_usd is None and record.cost_source == "unpriced"
    assert [r["method"] for r in fake.requests["coldboot"]] == ["POST", "GET", "GET", "GET"]


async def test_error_event_after_output_is_a_stream_error(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = [
        (0.20, event("output", "Hello", "1:0")),
        (0.25, event("output", " there", "1:1")),
        (0.30, event("error", json.dumps({"detail": "CUDA error: out of memory"}), "1:2")),
        (0.31, event("done", json.dumps({"reason": "error"}), "1:3")),
    ]
    record = await _probe(fake, "errevent", ReplicateScript(reads=reads), monkeypatch)
    assert record.status == "error"
    assert record.error_kind == "stream_error"
    assert "CUDA error: out of memory" in (record.error_message or "")
    assert near(record.ttft_ms, 200.0)  # kept for diagnosis
    assert record.decode_tps is None
    # No result read after a failed stream.
    assert [r["method"] for r in fake.requests["errevent"]] == ["POST", "GET"]


async def test_prediction_that_fails_before_streaming(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model fails while booting: an error event (plain text) before any output.
    reads = [
        (0.40, event("error", "Prediction failed: model setup failed", "1:0")),
        (0.41, event("done", json.dumps({"reason": "error"}), "1:1")),
    ]
    record = await _probe(fake, "bootfail", ReplicateScript(reads=reads), monkeypatch)
    assert record.status == "error" and record.error_kind == "stream_error"
    assert "model setup failed" in (record.error_message or "")
    assert record.ttft_ms is None


async def test_created_prediction_already_failed(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ReplicateScript(prediction={"status": "failed", "error": "NSFW content detected"})
    record = await _probe(fake, "failedcreate", script, monkeypatch)
    assert record.status == "error" and record.error_kind == "stream_error"
    assert "NSFW content detected" in (record.error_message or "")
    assert len(fake.requests["failedcreate"]) == 1  # nothing streamed


async def test_model_without_streaming(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = await _probe(fake, "nostream", ReplicateScript(stream=False), monkeypatch)
    assert record.status == "error" and record.error_kind == "stream_error"
    assert "does not stream" in (record.error_message or "")


async def test_create_rejected_by_validation_is_the_probes_fault(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {
        "title": "Input validation failed",
        "detail": "- input.temperature: Must be greater than or equal to 0.01",
        "status": 422,
    }
    script = ReplicateScript(create_status=422, create_body=json.dumps(body).encode())
    record = await _probe(fake, "invalid", script, monkeypatch)
    assert record.error_kind == "probe_config" and record.http_status == 422
    assert "greater than or equal to 0.01" in (record.error_message or "")


async def test_create_rate_limited_keeps_retry_after(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"title": "Request was throttled", "detail": "Request was throttled.", "status": 429}
    script = ReplicateScript(
        create_status=429,
        create_body=json.dumps(body).encode(),
        create_headers={"Retry-After": "7"},
    )
    record = await _probe(fake, "throttled", script, monkeypatch)
    assert record.error_kind == "rate_limited" and record.retry_after_s == 7.0


async def test_community_version_and_deployment_routes(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = [(0.2, event("output", "ok", "1:0")), (0.21, event("done", "{}", "1:1"))]
    await _probe(
        fake,
        "version",
        ReplicateScript(reads=reads),
        monkeypatch,
        model=f"meta/llama-2-70b-chat:{RECORDED_VERSION}",
    )
    create = fake.requests["version"][0]
    assert create["path"] == "/version/v1/predictions"
    assert create["json"]["version"] == RECORDED_VERSION
    await _probe(
        fake,
        "deploy",
        ReplicateScript(reads=reads),
        monkeypatch,
        model="deployments/acme/llama-prod",
    )
    create = fake.requests["deploy"][0]
    assert create["path"] == "/deploy/v1/deployments/acme/llama-prod/predictions"
    assert "version" not in create["json"]


async def test_key_never_sent_to_an_untrusted_stream_host(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # urls.stream on another host (plain http, not replicate.com): the stream is still read,
    # without the key.
    reads = [(0.2, event("output", "ok", "1:0")), (0.21, event("done", "{}", "1:1"))]
    script = ReplicateScript(reads=reads, stream_host=f"localhost:{fake.port}")
    record = await _probe(fake, "foreign", script, monkeypatch)
    assert record.status == "ok", record.error_message
    create, stream, result = fake.requests["foreign"]
    assert create["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in stream["headers"]
    assert "Authorization" not in result["headers"]


def test_create_url_routes_each_model_form() -> None:
    base = "https://api.replicate.com/v1"
    assert create_url(base, "meta/meta-llama-3-8b-instruct") == (
        f"{base}/models/meta/meta-llama-3-8b-instruct/predictions",
        None,
    )
    assert create_url(base, f"meta/llama-2-70b-chat:{RECORDED_VERSION}") == (
        f"{base}/predictions",
        RECORDED_VERSION,
    )
    assert create_url(base, RECORDED_VERSION) == (f"{base}/predictions", RECORDED_VERSION)
    assert create_url(base, "deployments/acme/prod") == (
        f"{base}/deployments/acme/prod/predictions",
        None,
    )


def test_parser_events() -> None:
    parser = ReplicateParser()
    assert parser.parse("output", "") is None  # an empty output carries no token
    out = parser.parse("output", "line one\nline two")
    assert out is not None and out.answer == "line one\nline two"
    assert parser.parse("logs", "loading weights") is None
    done = parser.parse("done", "{}")
    assert done is not None and done.terminal and done.error is None
    canceled = parser.parse("done", '{"reason": "canceled"}')
    assert canceled is not None and canceled.terminal and canceled.error is not None
    assert canceled.finish_reason == "canceled"
    with pytest.raises(ValueError):
        parser.parse("done", "not json")


def test_prediction_event_ignores_what_is_missing_or_odd() -> None:
    ev = prediction_event(
        {
            "id": "p1",
            "created_at": "2026-10-21T12:00:05Z",
            "started_at": "2026-10-21T12:00:01Z",  # before created: not a duration
            "metrics": {"input_token_count": True, "output_token_count": -3, "predict_time": "x"},
        }
    )
    assert ev.request_id == "p1"
    assert ev.usage is None and not ev.server_timings_ms

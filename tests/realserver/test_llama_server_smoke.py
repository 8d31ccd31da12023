"""Smoke test of a real llama.cpp llama-server with a locally made random-weight model.

It checks the server itself (not inferwatch's probes): the raw SSE body of a streaming
``/v1/chat/completions`` with ``stream_options.include_usage`` has the shape the probes rely on.
The first run on a machine builds llama-server (about 6 minutes on 2 cores); later runs reuse
the cached binary. ``recorded_llama_stream.txt`` beside this file is a trimmed real recording.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .make_model import make_model
from .server import LlamaServer, ensure_llama_server

pytestmark = pytest.mark.realserver

MAX_TOKENS = 16


@pytest.fixture(scope="module")
def llama_server_binary() -> pathlib.Path:
    """A working llama-server binary (built once per machine, then cached)."""
    return ensure_llama_server()


@pytest.fixture
def tiny_server(llama_server_binary: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[LlamaServer]:
    """llama-server serving a freshly made tiny model under the alias ``tiny``."""
    model = make_model(tmp_path / "tiny.gguf", size="tiny", seed=0)
    with LlamaServer(
        llama_server_binary, model, alias="tiny", log_path=tmp_path / "server.log"
    ) as server:
        yield server


def test_streaming_chat_completion_shape(tiny_server: LlamaServer) -> None:
    """A streamed chat completion has a role chunk, content, a usage chunk and [DONE]."""
    request = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        # A fixed sampling seed makes the output repeatable (the model is seeded too), so a
        # rare early end-of-turn cannot leave the stream without content.
        "seed": 1,
    }
    with (
        httpx.Client(timeout=30.0) as client,
        client.stream("POST", tiny_server.base_url + "/chat/completions", json=request) as resp,
    ):
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = list(resp.iter_lines())

    data_lines = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data_lines, lines
    assert data_lines[-1] == "[DONE]", data_lines[-3:]
    chunks: list[dict[str, Any]] = [json.loads(d) for d in data_lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)

    first = chunks[0]
    assert len(first["choices"]) == 1
    first_delta = first["choices"][0]["delta"]
    assert first_delta.get("role") == "assistant"
    assert not first_delta.get("content"), "the first chunk should carry only the role"

    contents = [
        c["choices"][0]["delta"].get("content")
        for c in chunks[1:]
        if c["choices"] and c["choices"][0].get("delta")
    ]
    assert any(contents), chunks

    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert 1 <= usage["completion_tokens"] <= MAX_TOKENS
    assert usage["prompt_tokens"] >= 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    finish_reasons = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"] and c["choices"][0].get("finish_reason")
    ]
    assert finish_reasons in (["length"], ["stop"]), finish_reasons

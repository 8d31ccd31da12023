"""Issue #13's checks against a real llama.cpp llama-server on 127.0.0.1.

* The prompt-caching check: llama-server keeps a slot's prompt and reports the reused part in
  ``usage.prompt_tokens_details.cached_tokens`` (and ``timings.cache_n``); with the 'medium'
  model prefill costs about 1 ms per token, so the cached second request is much faster.
* Long-prompt workloads: the prompt generator reaches a target input size as llama-server's
  own tokenizer counts it (the reported ``input_tokens``), not as we guess it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes.cache_check import run_cache_check
from probes.question_config import WorkloadConfig
from probes.runner import make_client
from probes.workloads import WorkloadRunner
from store.cache_checks import cache_text
from tests.conftest import make_target

from .make_model import make_model
from .server import LlamaServer, ensure_llama_server

pytestmark = pytest.mark.realserver


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """'medium' (ctx 4096) with one slot, so both requests of a check share the slot."""
    binary = ensure_llama_server()
    folder = tmp_path_factory.mktemp("llama-q")
    model = make_model(folder / "medium.gguf", size="medium", seed=0)
    with LlamaServer(
        binary, model, alias="medium", ctx_size=4096, parallel=1, log_path=folder / "log"
    ) as server:
        yield server


def _target(server: LlamaServer) -> object:
    return make_target(
        server.base_url,
        name="llama-local",
        provider="llama.cpp",
        model="medium",
        input_usd_per_mtok=0.0,
        output_usd_per_mtok=0.0,
    )


async def test_cache_check_sees_llama_server_prompt_cache(medium: LlamaServer) -> None:
    target = _target(medium)

    async def no_wait(_: float) -> None:
        return None

    async with make_client() as client:
        check = await run_cache_check(
            target,  # type: ignore[arg-type]
            client,
            prefix_tokens=100,
            max_tokens=4,
            sleep=no_wait,
        )
    first, second = check.records
    result = check.result
    assert first.status == second.status == "ok", (first.error_message, second.error_message)
    assert first.cache_read_tokens == 0  # a fresh prefix: nothing to reuse
    assert second.input_tokens is not None and second.input_tokens >= 100
    assert result.verdict == "caching", result
    # llama-server re-evaluates at least the last prompt token, so all but a few are cached.
    assert second.cache_read_tokens is not None
    assert second.input_tokens - 8 <= second.cache_read_tokens < second.input_tokens
    # Prefill of a few hundred tokens at ~1 ms each against a handful: far lower when cached.
    assert result.ttft_saved is not None and result.ttft_saved > 0.5
    assert result.cost_saved is None  # free self-hosted model: nothing to save, not "0 %"
    assert cache_text(result).startswith("cache ✔ ")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary = ensure_llama_server()
    folder = tmp_path_factory.mktemp("llama-t")
    model = make_model(folder / "tiny.gguf", size="tiny", seed=0)
    with LlamaServer(
        binary, model, alias="tiny", ctx_size=2048, parallel=1, log_path=folder / "log"
    ) as server:
        yield server


async def test_workload_prompt_reaches_its_size_by_llama_servers_count(
    tiny: LlamaServer,
) -> None:
    target = make_target(tiny.base_url, provider="llama.cpp", model="tiny")
    # 500 tokens: the first guess (4 characters per token, 2,000 characters) must still fit
    # the tiny model's 2,048-token context, since an error reports no size to learn from.
    workload = WorkloadConfig(name="500", input_tokens=500, max_tokens=4)
    runner = WorkloadRunner()
    sizes = []
    async with make_client() as client:
        for _ in range(3):
            (record,) = await runner.run(target, client, workload)
            assert record.status == "ok", record.error_message
            assert record.kind == "workload" and record.workload == "500"
            sizes.append(record.input_tokens)
            # Each run starts with different text: at most the chat template's first tokens
            # are reused from the previous run, never the prompt.
            assert record.cache_read_tokens is not None and record.cache_read_tokens <= 10
    # The first guess (4 characters per token) is far off for this byte-level tokenizer; one
    # reported size is enough to land within ±5 %, and it stays there.
    assert sizes[0] is not None and abs(sizes[0] - 500) > 100
    assert all(s is not None and abs(s - 500) <= 25 for s in sizes[1:]), sizes

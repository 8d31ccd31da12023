"""Is prompt caching working? Two requests with the same long prefix, the second one judged.

Per provider, what the request needs for a cache hit (docs/questions.md, "Prompt caching"):

* OpenAI (Chat Completions and Responses): automatic from 1,024 tokens; a ``prompt_cache_key``
  keeps both requests on the same cache shard.
* Anthropic: explicit ``cache_control: {"type": "ephemeral"}`` on the prefix block; minimum
  1,024–4,096 tokens by model, so 4,096 is used.
* Fireworks: the ``x-session-affinity`` header routes both requests to the same replica.
* Gemini (implicit caching, minimum 1,024–4,096 by model: 4,096 used), DeepSeek (on by
  default), Azure OpenAI, Groq, Together, OpenRouter, Cerebras, vLLM, llama.cpp and other
  OpenAI-compatible servers: implicit, nothing to add.
* Not supported (no documented prompt cache, or no cache count in the response): Mistral,
  Ollama, Bedrock (``cachePoint`` blocks are not built), Replicate.

The check builds a stable prefix locally (:func:`probes.prompts.stable_text`, seeded per check
run and placed first: nothing varies before it), sends it twice ``gap_s`` apart with a short
question after it, and judges the second request from what the provider reported and what it
costs (:func:`judge`). Both requests are ordinary probe records of kind ``cache_check``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from probes.config import ResolvedTarget
from probes.dialects import DIALECTS
from probes.dialects.base import Dialect, HttpRequest, ProviderError, StreamParser, Usage
from probes.pricing import price_usage
from probes.prompts import PromptSizer, stable_text
from probes.record import ProbeRecord
from probes.runner import run_probe
from probes.timestamps import iso, utc_now

CacheMode = Literal["prompt_cache_key", "cache_control", "session_affinity", "implicit"]
Verdict = Literal["caching", "not_caching", "not_reported", "too_short", "failed", "not_supported"]

#: The question after the prefix (short: the check is about the input side).
QUESTION = "Reply with one word: which sea is named first in the notes above?"
#: The prompt aims at this multiple of the minimum, so a small miss still clears it.
SIZE_MARGIN = 1.15
KIND = "cache_check"


@dataclass(frozen=True, slots=True)
class CacheShape:
    """What a provider needs for a prompt-cache hit.

    Attributes:
        mode: how the request asks for caching (see the module docstring).
        min_prefix_tokens: the documented minimum prefix for a hit, tokens.
    """

    mode: CacheMode
    min_prefix_tokens: int


#: Per provider name; providers that are absent are "not supported".
CACHE_SHAPES: dict[str, CacheShape] = {
    "openai": CacheShape("prompt_cache_key", 1024),
    "openai-responses": CacheShape("prompt_cache_key", 1024),
    "azure": CacheShape("implicit", 1024),
    "anthropic": CacheShape("cache_control", 4096),
    "fireworks": CacheShape("session_affinity", 1024),
    "gemini": CacheShape("implicit", 4096),
    "deepseek": CacheShape("implicit", 1024),
    "groq": CacheShape("implicit", 1024),
    "together": CacheShape("implicit", 1024),
    "openrouter": CacheShape("implicit", 4096),
    "cerebras": CacheShape("implicit", 1024),
    "vllm": CacheShape("implicit", 256),
    "llama.cpp": CacheShape("implicit", 256),
    "openai-compatible": CacheShape("implicit", 1024),
}


def cache_shape(provider: str) -> CacheShape | None:
    """The provider's cache shape, or None when the check is not supported for it."""
    return CACHE_SHAPES.get(provider)


@dataclass(frozen=True, slots=True)
class CachePrompt:
    """The two parts of a cache-check prompt: the stable prefix and the question after it."""

    prefix: str
    question: str = QUESTION

    @property
    def text(self) -> str:
        """The whole prompt as one message (prefix first)."""
        return f"{self.prefix}\n\n{self.question}"


def build_prompt(n_chars: int, seed: int | str) -> CachePrompt:
    """A prompt of about ``n_chars`` characters: the stable prefix, then the question."""
    return CachePrompt(stable_text(max(1, n_chars - len(QUESTION) - 2), seed))


def new_sizer(min_tokens: int) -> PromptSizer:
    """A sizer aiming the whole reported input at ``min_tokens × SIZE_MARGIN`` (keep one per
    target across checks: it learns the provider's tokenizer from each first request)."""
    return PromptSizer(round(min_tokens * SIZE_MARGIN))


def shape_request(
    request: HttpRequest, mode: CacheMode, prompt: CachePrompt, cache_key: str
) -> HttpRequest:
    """Add what ``mode`` needs to an already-built request (pure; returns a new request).

    * ``prompt_cache_key``: body ``prompt_cache_key`` (OpenAI Chat Completions and Responses).
    * ``cache_control``: the Anthropic user message becomes two text blocks, the prefix with
      ``cache_control: {"type": "ephemeral"}`` and the question.
    * ``session_affinity``: header ``x-session-affinity`` (Fireworks).
    * ``implicit``: unchanged.
    """
    body: dict[str, Any] = dict(request.json)
    headers = dict(request.headers)
    if mode == "prompt_cache_key":
        body["prompt_cache_key"] = cache_key
    elif mode == "cache_control":
        body["messages"] = [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": prompt.prefix,
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": prompt.question},
                ],
            }
        ]
    elif mode == "session_affinity":
        headers["x-session-affinity"] = cache_key
    return HttpRequest(request.method, request.url, headers, body)


@dataclass(frozen=True)
class CacheShapedDialect:
    """A dialect that builds its wrapped dialect's request, then :func:`shape_request`s it."""

    base: Dialect
    mode: CacheMode
    prompt: CachePrompt
    cache_key: str

    @property
    def name(self) -> str:
        """The wrapped dialect's name."""
        return self.base.name

    @property
    def framing(self) -> Any:
        """The wrapped dialect's framing."""
        return self.base.framing

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """The wrapped dialect's request with the cache shape added."""
        request = self.base.build_request(target, api_key)
        return shape_request(request, self.mode, self.prompt, self.cache_key)

    def new_parser(self) -> StreamParser:
        """The wrapped dialect's parser."""
        return self.base.new_parser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """The wrapped dialect's error reader."""
        return self.base.parse_error_body(body)


@dataclass(frozen=True, slots=True)
class CacheCheckResult:
    """The verdict on one check, from its second request.

    Attributes:
        target: target name.
        started_at: when the check started (the first request's ``started_at``).
        verdict: ``caching`` (cached tokens reported), ``not_caching`` (0 reported),
            ``not_reported`` (the provider sent no cache count), ``too_short`` (the reported
            input was below the minimum and nothing was cached), ``failed`` (a request
            failed), ``not_supported``.
        mode: the cache mode used, or None when not supported.
        prefix_tokens: the minimum prefix aimed at, tokens.
        input_tokens: the second request's reported input, tokens (cached included).
        cached_tokens: the second request's reported cache reads, tokens.
        cached_share: ``cached_tokens / input_tokens``.
        first_ttft_ms: TTFT of the first (uncached) request, ms.
        second_ttft_ms: TTFT of the second request, ms.
        ttft_saved: ``1 − second / first`` (negative when the second was slower).
        cost_usd: the second request's cost as charged (cache reads at their rate), USD.
        uncached_cost_usd: the same usage priced without any cache discount, USD.
        cost_saved: ``1 − cost_usd / uncached_cost_usd``.
        message: why the check failed or was too short, "" otherwise.
    """

    target: str
    started_at: str
    verdict: Verdict
    mode: CacheMode | None = None
    prefix_tokens: int | None = None
    input_tokens: int | None = None
    cached_tokens: int | None = None
    cached_share: float | None = None
    first_ttft_ms: float | None = None
    second_ttft_ms: float | None = None
    ttft_saved: float | None = None
    cost_usd: float | None = None
    uncached_cost_usd: float | None = None
    cost_saved: float | None = None
    message: str = ""


def _saving(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old <= 0:
        return None
    return 1.0 - new / old


def judge(
    target: ResolvedTarget,
    first: ProbeRecord,
    second: ProbeRecord,
    shape: CacheShape,
    min_tokens: int,
    when: datetime,
) -> CacheCheckResult:
    """Judge a check from its two records (pure apart from the bundled price snapshot).

    The cached share is the second request's reported ``cache_read_tokens`` over its
    reported ``input_tokens``; the TTFT saved compares its TTFT with the first (uncached)
    request's; the cost saved compares its cost as charged with the same usage priced
    without the cache discount (so output length and the first request's cache-write premium
    do not enter it).
    """
    base = CacheCheckResult(
        target.name, first.started_at, "failed", shape.mode, min_tokens, first_ttft_ms=None
    )
    for label, record in (("first", first), ("second", second)):
        if record.status != "ok":
            return dataclasses.replace(
                base,
                message=f"{label} request failed: {record.error_kind}: {record.error_message}",
            )
    cached, total = second.cache_read_tokens, second.input_tokens
    uncached_cost = None
    if total is not None and second.output_tokens is not None:
        usage = Usage(
            input_tokens=total,
            cache_read_tokens=0,
            cache_write_tokens=0,
            output_tokens=second.output_tokens,
        )
        priced = price_usage(usage, target.config, target.prices_id, when)
        uncached_cost = None if priced is None else priced.cost_usd
    verdict: Verdict
    message = ""
    if cached is None:
        verdict = "not_reported"
    elif cached > 0:
        verdict = "caching"
    elif total is not None and total < min_tokens:
        verdict = "too_short"
        message = f"prefix too short ({total:,} of {min_tokens:,} tokens)"
    else:
        verdict = "not_caching"
    return dataclasses.replace(
        base,
        verdict=verdict,
        input_tokens=total,
        cached_tokens=cached,
        cached_share=cached / total if cached is not None and total else None,
        first_ttft_ms=first.ttft_ms,
        second_ttft_ms=second.ttft_ms,
        ttft_saved=_saving(second.ttft_ms, first.ttft_ms),
        cost_usd=second.cost_usd,
        uncached_cost_usd=uncached_cost,
        cost_saved=_saving(second.cost_usd, uncached_cost),
        message=message,
    )


@dataclass(frozen=True, slots=True)
class CacheCheck:
    """One finished check: its two probe records (kind ``cache_check``) and the verdict."""

    records: tuple[ProbeRecord, ...]
    result: CacheCheckResult


ProbeFn = Callable[..., Awaitable[ProbeRecord]]


async def run_cache_check(
    target: ResolvedTarget,
    client: httpx.AsyncClient,
    *,
    prefix_tokens: int | None = None,
    gap_s: float = 2.0,
    max_tokens: int = 8,
    seed: str | None = None,
    sizer: PromptSizer | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.perf_counter,
    wall_clock: Callable[[], datetime] = utc_now,
    probe: ProbeFn = run_probe,
) -> CacheCheck:
    """Run one prompt-caching check on ``target`` (two requests, ``gap_s`` apart).

    Args:
        target: the target (its provider decides the cache shape).
        client: the probe client.
        prefix_tokens: the prefix size aimed at, tokens (default: the provider's minimum).
        gap_s: seconds between the end of the first request and the start of the second.
        max_tokens: output budget of each request.
        seed: selects the prefix text (default: random per check, so the first request of a
            check is never a hit left over from the previous check).
        sizer: sizes the prompt from the provider's reported input of earlier checks (see
            :func:`new_sizer`); the first request's report updates it. Without one, the
            prefix is estimated at :data:`~probes.prompts.DEFAULT_CHARS_PER_TOKEN`.
        sleep: the wait between the requests (injectable).
        clock: monotonic clock for the probes.
        wall_clock: UTC wall clock for the probes and the price date.
        probe: the probe function (``run_probe``).

    Returns:
        The two records (kind ``cache_check``, nothing sent when not supported) and the
        verdict.
    """
    shape = cache_shape(target.config.provider)
    if shape is None:
        result = CacheCheckResult(
            target.name,
            iso(wall_clock()),
            "not_supported",
            message=f"provider {target.config.provider} has no prompt cache this check can see",
        )
        return CacheCheck((), result)
    min_tokens = prefix_tokens or shape.min_prefix_tokens
    run_seed = seed or secrets.token_hex(8)
    sizer = sizer or new_sizer(min_tokens)
    prompt = build_prompt(sizer.chars(), f"{target.name}:{run_seed}")
    settings = target.settings.model_copy(update={"prompt": prompt.text, "max_tokens": max_tokens})
    shaped_target = dataclasses.replace(target, settings=settings)
    dialect = CacheShapedDialect(
        DIALECTS[target.dialect], shape.mode, prompt, f"inferwatch-{run_seed}"
    )
    records = []
    for i in range(2):
        if i:
            await sleep(gap_s)
        record = await probe(
            shaped_target, client, clock=clock, wall_clock=wall_clock, dialect=dialect
        )
        record.kind = KIND
        records.append(record)
        if not i:
            sizer.observe(len(prompt.text), record.input_tokens)
        if record.status != "ok":
            break
    first = records[0]
    second = records[-1] if len(records) == 2 else records[0]
    result = judge(target, first, second, shape, min_tokens, wall_clock())
    return CacheCheck(tuple(records), result)

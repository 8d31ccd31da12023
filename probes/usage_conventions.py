"""Each provider's token-count convention, normalised to the buckets cost needs.

Providers disagree on what their counts include (docs/metrics.md §4,
docs/field-cases.md FC-12):

* OpenAI chat and Responses, Azure, OpenRouter, DeepSeek, vLLM and most compatible hosts: the
  prompt count **includes** cached tokens; the completion count includes reasoning.
* Anthropic and Bedrock Converse: the input count **excludes** both cache buckets, so the
  inclusive total is ``input + cache writes + cache reads``.
* Gemini: the prompt count includes cached content, but ``candidatesTokenCount`` **excludes**
  ``thoughtsTokenCount``: output is their sum (adding thoughts is wrong everywhere else).

Every function returns a :class:`~probes.dialects.base.Usage` with an inclusive
``input_tokens`` and an ``output_tokens`` that includes reasoning, the meaning
:mod:`probes.pricing` and genai-prices' ``Usage`` expect. A count that is absent or not a
non-negative integer is ``None`` ("not reported"), never 0. Dialects may call these on the
``usage`` object they accumulated (replaced, never summed: FC-04).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from probes.dialects.base import Usage
from probes.dialects.openai_chat import parse_usage as _openai_chat


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _sum(*values: int | None) -> int | None:
    """Sum of the reported parts; None when the first (the base count) is missing."""
    if values[0] is None:
        return None
    return sum(v for v in values if v is not None)


def _obj(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def openai_chat_usage(raw: Mapping[str, Any]) -> Usage:
    """OpenAI Chat Completions ``usage`` (also Azure, OpenRouter, DeepSeek, vLLM, Together).

    ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens`` (and DeepSeek's
    ``prompt_cache_hit_tokens``); ``completion_tokens`` includes reasoning.
    """
    return _openai_chat(dict(raw))


def openai_responses_usage(raw: Mapping[str, Any]) -> Usage:
    """OpenAI Responses ``response.usage``: ``input_tokens`` includes
    ``input_tokens_details.cached_tokens``; ``output_tokens`` includes reasoning."""
    details = _obj(raw, "input_tokens_details")
    out_details = _obj(raw, "output_tokens_details")
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        cache_read_tokens=_int(details.get("cached_tokens")),
        cache_write_tokens=_int(details.get("cache_write_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        reasoning_tokens=_int(out_details.get("reasoning_tokens")),
    )


def anthropic_usage(raw: Mapping[str, Any]) -> Usage:
    """Anthropic Messages ``usage`` (the last ``message_delta``'s, cumulative).

    ``input_tokens`` excludes ``cache_creation_input_tokens`` and ``cache_read_input_tokens``:
    the inclusive total is their sum (FC-12 B: 3 + 12304 + 0 = 12307).
    """
    base = _int(raw.get("input_tokens"))
    read = _int(raw.get("cache_read_input_tokens"))
    write = _int(raw.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=_sum(base, read, write),
        cache_read_tokens=read,
        cache_write_tokens=write,
        output_tokens=_int(raw.get("output_tokens")),
        reasoning_tokens=_int(_obj(raw, "output_tokens_details").get("thinking_tokens")),
    )


def gemini_usage(raw: Mapping[str, Any]) -> Usage:
    """Gemini ``usageMetadata`` (the last one, cumulative).

    ``promptTokenCount`` (+ ``toolUsePromptTokenCount``) includes ``cachedContentTokenCount``;
    ``candidatesTokenCount`` excludes ``thoughtsTokenCount``, which is billed as output
    (FC-12 C: 13 + 554 = 567).
    """
    thoughts = _int(raw.get("thoughtsTokenCount"))
    prompt = _int(raw.get("promptTokenCount"))
    return Usage(
        input_tokens=_sum(prompt, _int(raw.get("toolUsePromptTokenCount"))),
        cache_read_tokens=_int(raw.get("cachedContentTokenCount")),
        cache_write_tokens=None,
        output_tokens=_sum(_int(raw.get("candidatesTokenCount")), thoughts),
        reasoning_tokens=thoughts,
    )


def bedrock_usage(raw: Mapping[str, Any]) -> Usage:
    """Bedrock ConverseStream ``metadata.usage``: ``inputTokens`` excludes
    ``cacheReadInputTokens`` and ``cacheWriteInputTokens``."""
    read = _int(raw.get("cacheReadInputTokens"))
    write = _int(raw.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=_sum(_int(raw.get("inputTokens")), read, write),
        cache_read_tokens=read,
        cache_write_tokens=write,
        output_tokens=_int(raw.get("outputTokens")),
        reasoning_tokens=None,
    )


#: Convention name -> normaliser. ``openai`` covers every OpenAI-shaped ``usage`` object.
CONVENTIONS: dict[str, Callable[[Mapping[str, Any]], Usage]] = {
    "openai": openai_chat_usage,
    "openai-responses": openai_responses_usage,
    "anthropic": anthropic_usage,
    "gemini": gemini_usage,
    "bedrock": bedrock_usage,
}


def normalise_usage(convention: str, raw: Mapping[str, Any]) -> Usage:
    """Normalise a provider's raw usage object by its convention name.

    Args:
        convention: a key of :data:`CONVENTIONS`.
        raw: the usage object as the provider sent it.

    Raises:
        KeyError: for an unknown convention name.
    """
    return CONVENTIONS[convention](raw)

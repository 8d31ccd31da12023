"""OpenAI Chat Completions streaming, as sent by OpenAI and the compatible hosts and servers.

Source: OpenAI API reference, "chat.completion.chunk" object (``choices[].delta.content``,
``delta.refusal``, ``delta.tool_calls``, ``finish_reason``) and ``stream_options.include_usage``
(a last chunk with ``choices: []`` and ``usage``); docs/dialects.md for the hosts.

Host quirks handled here: ``delta.reasoning_content`` (DeepSeek), ``delta.reasoning`` and
``reasoning_details`` (vLLM, OpenRouter, Groq, Ollama /v1), usage on the finish chunk (DeepSeek,
Mistral, Together), ``x_groq.usage`` (Groq, times in seconds), top-level ``usage.cached_tokens``
(Together), ``prompt_cache_hit_tokens`` (DeepSeek), ``usage.cost`` and ``provider`` (OpenRouter),
``timings`` (llama.cpp), list-valued ``delta.content`` (Mistral Magistral), inline
``<think>…</think>`` reasoning, and error objects inside a 200 stream.
"""

from __future__ import annotations

import json
from typing import Any

from probes.config import ResolvedTarget
from probes.dialects.base import (
    Framing,
    HttpRequest,
    ParsedEvent,
    ProviderError,
    Usage,
    json_or_none,
    load_json_object,
)
from probes.errors import ErrorKind

#: ``finish_reason`` values a policy filter sends when it stopped the answer (OpenAI and
#: Azure ``content_filter``); the probe's outcome is ``content_filter``, not a plain ok.
FILTER_FINISH_REASONS = frozenset({"content_filter"})

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Normalise an OpenAI-shaped ``usage`` object (docs/metrics.md §4).

    ``prompt_tokens`` already includes cached tokens; DeepSeek's ``prompt_cache_hit_tokens``
    and Together's top-level ``cached_tokens`` are read when the standard detail is absent.
    """
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cache_read = _int(prompt_details.get("cached_tokens"))
    if cache_read is None:
        cache_read = _int(usage.get("prompt_cache_hit_tokens"))
    if cache_read is None:
        cache_read = _int(usage.get("cached_tokens"))
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
    )


def parse_error_object(obj: Any) -> ProviderError:
    """Build a :class:`ProviderError` from an ``error`` value (object or bare string)."""
    if isinstance(obj, dict):
        message = str(obj.get("message") or obj.get("msg") or json.dumps(obj))
        err_type = obj.get("type") or obj.get("status")
        code = obj.get("code")
        return ProviderError(
            message=message,
            type=str(err_type) if err_type is not None else None,
            code=code if isinstance(code, str | int) else None,
        )
    return ProviderError(message=str(obj))


class OpenAIChatParser:
    """Stateful parser of one Chat Completions stream (tracks inline ``<think>`` blocks)."""

    def __init__(self) -> None:
        self._in_think = False
        self._after_think = False
        self._seen_content = False

    def _split_inline_think(self, text: str) -> tuple[str, str]:
        """Split content into (answer, reasoning) following inline ``<think>`` tags.

        Reasoning runs from an opening ``<think>`` (only at the start of the content) up to and
        including ``</think>``; whitespace right after it is still reasoning, so the first
        answer token is the first non-whitespace content after the tag (docs/metrics.md §2).
        """
        if self._seen_content and not (self._in_think or self._after_think):
            return text, ""  # past any <think> block: plain answer (the common case)
        answer, reasoning = "", ""
        while text:
            if self._in_think:
                end = text.find(_THINK_CLOSE)
                if end < 0:
                    return answer, reasoning + text
                reasoning += text[: end + len(_THINK_CLOSE)]
                text = text[end + len(_THINK_CLOSE) :]
                self._in_think, self._after_think = False, True
                continue
            stripped = text.lstrip()
            if not self._seen_content and stripped.startswith(_THINK_OPEN):
                self._in_think = self._seen_content = True
                cut = len(text) - len(stripped) + len(_THINK_OPEN)
                reasoning += text[:cut]
                text = text[cut:]
                continue
            if self._after_think and not stripped:
                return answer, reasoning + text
            self._seen_content, self._after_think = True, False
            return answer + text, reasoning
        return answer, reasoning

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one ``data:`` payload. See :class:`probes.dialects.base.StreamParser`."""
        if data[:1] != "{" and data.strip() == "[DONE]":
            return ParsedEvent(terminal=True)
        chunk = load_json_object(data)
        if chunk is None:
            return None  # empty data after id: + comment (docs/field-cases.md FC-05)
        out = ParsedEvent()
        if chunk.get("error"):
            out.error = parse_error_object(chunk["error"])
        elif event == "error":
            out.error = parse_error_object(chunk)
        if isinstance(chunk.get("id"), str) and chunk["id"]:
            out.request_id = chunk["id"]
        if isinstance(chunk.get("provider"), str):
            out.upstream_provider = chunk["provider"]
        model = chunk.get("model")
        if isinstance(model, str) and model:  # Azure annotation chunks carry model ""
            out.response_model = model
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                if choice.get("finish_reason"):
                    out.finish_reason = str(choice["finish_reason"])
                    if out.finish_reason == "error" and out.error is None:
                        out.error = ProviderError("finish_reason 'error'", type="error")
                    elif out.finish_reason in FILTER_FINISH_REASONS:
                        out.stop_kind = ErrorKind.CONTENT_FILTER
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._read_delta(delta, out)
        usage = chunk.get("usage")
        x_groq = chunk.get("x_groq")
        if isinstance(usage, dict):
            out.usage = parse_usage(usage)
            cost = usage.get("cost")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                out.provider_cost_usd = float(cost)
        elif isinstance(x_groq, dict) and isinstance(x_groq.get("usage"), dict):
            out.usage = parse_usage(x_groq["usage"])
        if isinstance(x_groq, dict):
            if isinstance(x_groq.get("id"), str):
                out.request_id = x_groq["id"]
            groq_usage = x_groq.get("usage")
            if isinstance(groq_usage, dict):
                for ours, theirs in (
                    ("queue", "queue_time"),
                    ("prefill", "prompt_time"),
                    ("decode", "completion_time"),
                    ("total", "total_time"),
                ):
                    value = groq_usage.get(theirs)
                    if isinstance(value, int | float):
                        out.timing(ours, float(value) * 1000.0)
        timings = chunk.get("timings")
        if isinstance(timings, dict):  # llama.cpp, already in ms
            for ours, theirs in (("prefill", "prompt_ms"), ("decode", "predicted_ms")):
                value = timings.get(theirs)
                if isinstance(value, int | float):
                    out.timing(ours, float(value))
            if out.usage is not None and out.usage.cache_read_tokens is None:
                cache_n = _int(timings.get("cache_n"))
                if cache_n is not None:
                    u = out.usage
                    out.usage = Usage(
                        u.input_tokens,
                        cache_n,
                        u.cache_write_tokens,
                        u.output_tokens,
                        u.reasoning_tokens,
                    )
        return out

    def _read_delta(self, delta: dict[str, Any], out: ParsedEvent) -> None:
        content = delta.get("content")
        if isinstance(content, str) and content:
            answer, reasoning = self._split_inline_think(content)
            out.answer += answer
            out.reasoning += reasoning
        elif isinstance(content, list):  # Mistral Magistral typed content
            for item in content:
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "thinking":
                    for part in item.get("thinking") or []:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            out.reasoning += part["text"]
                elif isinstance(item.get("text"), str):
                    out.answer += item["text"]
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            out.answer += refusal
        for key in ("reasoning_content", "reasoning"):
            value = delta.get(key)
            if isinstance(value, str) and value:
                out.reasoning += value
                break
        else:
            details = delta.get("reasoning_details")
            if isinstance(details, list):
                for item in details:
                    if isinstance(item, dict) and isinstance(item.get("text"), str):
                        out.reasoning += item["text"]
        if delta.get("tool_calls"):
            out.tool_call = True


class OpenAIChatDialect:
    """Dialect for ``POST {base_url}/chat/completions`` with ``stream: true``."""

    name = "openai-chat"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary request; usage is always requested in the stream."""
        s = target.settings
        body: dict[str, Any] = {
            "model": target.config.model,
            "messages": [{"role": "user", "content": s.prompt}],
            "max_tokens": s.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if s.temperature is not None:
            body["temperature"] = s.temperature
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest("POST", f"{target.base_url}/chat/completions", headers, body)

    def new_parser(self) -> OpenAIChatParser:
        """Return a fresh stream parser."""
        return OpenAIChatParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read ``{"error": {...}}`` (or vLLM's flat ``{"object": "error", ...}``) bodies."""
        obj = json_or_none(body)
        if isinstance(obj, dict):
            if "error" in obj:
                return parse_error_object(obj["error"])
            if obj.get("object") == "error":
                return parse_error_object(obj)
        return None

"""Google Gemini (Generative Language API) ``streamGenerateContent?alt=sse``.

Source: Gemini API reference, ``models.streamGenerateContent`` and ``GenerateContentResponse``
(googleapis/python-genai ``_api_client.py``, ``models.py``, ``types.py``
``GenerateContentResponseUsageMetadata``); docs/dialects.md.

* Request: ``POST {base_url}/models/{model}:streamGenerateContent?alt=sse`` with the key in the
  ``x-goog-api-key`` header. The key is never put in the URL (no ``?key=``), so it cannot
  leak into logs, records or error messages.
* Stream: ``data: <GenerateContentResponse>`` events (separated by ``\\r\\n\\r\\n``), no
  ``event:`` names, no keep-alives, no ``[DONE]``: the answer ends with the chunk carrying
  ``candidates[].finishReason``, then EOF. A stream that ends without such a chunk is
  truncated.
* Text in ``candidates[].content.parts[].text``; a part with ``"thought": true`` is reasoning;
  ``functionCall`` parts are tool calls. ``responseId`` identifies the response.
* A policy stop is its own outcome, not an empty or plain-ok answer: a prompt blocked by the
  safety system comes as ``promptFeedback.blockReason`` without candidates (``safety_block``);
  an answer stopped by a filter ends with ``finishReason`` ``SAFETY``, ``RECITATION``,
  ``BLOCKLIST``, ``PROHIBITED_CONTENT``, ``SPII`` or an ``IMAGE_*`` equivalent
  (``content_filter``). ``modelVersion`` names the model that answered.
* ``usageMetadata`` is running (cumulative) on every chunk: the latest replaces earlier ones.
  ``promptTokenCount`` includes ``cachedContentTokenCount``; ``candidatesTokenCount``
  **excludes** ``thoughtsTokenCount``, so output = candidates + thoughts
  (docs/field-cases.md FC-12 C).
* Errors: ``{"error":{"code","message","status","details"}}`` as a body (429 carries
  ``google.rpc.RetryInfo.retryDelay``, e.g. ``"47s"``), as a ``data:`` event, or as a raw JSON
  body appended after the events (read via ``probes.sse``'s raw items).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

from probes.config import ResolvedTarget
from probes.dialects.base import (
    Framing,
    HttpRequest,
    ParsedEvent,
    ProviderError,
    Usage,
    json_or_none,
    load_json,
)
from probes.dialects.openai_chat import parse_error_object
from probes.errors import ErrorKind
from probes.headers import parse_duration_s

#: Output budget added on top of ``max_tokens`` for models that cannot switch thinking off.
THINKING_HEADROOM_TOKENS = 512
#: Smallest thinking budget Gemini 2.5 Pro accepts (it cannot disable thinking).
PRO_MIN_THINKING_BUDGET = 128

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

#: ``Candidate.FinishReason`` values that mean a policy filter stopped the answer
#: (googleapis/python-genai ``types.py`` ``FinishReason``).
FILTER_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def model_name(model: str) -> str:
    """The model id without a leading ``models/`` (both spellings are accepted in configs)."""
    return model.removeprefix("models/")


def generation_config(model: str, max_tokens: int, temperature: float | None) -> dict[str, Any]:
    """The canary's ``generationConfig``, chosen per model family so it is cheap and valid.

    Thinking tokens count against ``maxOutputTokens``, so a small budget can end in
    ``MAX_TOKENS`` before any answer. Gemini 2.5 Flash / Flash-Lite: ``thinkingBudget: 0``
    (thinking off). Gemini 2.5 Pro cannot turn thinking off: the minimum budget (128) plus
    ``max_tokens``, thoughts included in the stream. Gemini 3: ``thinkingLevel: "low"`` with
    :data:`THINKING_HEADROOM_TOKENS` extra. Other models get no ``thinkingConfig``.
    """
    name = model_name(model).lower()
    config: dict[str, Any] = {"maxOutputTokens": max_tokens}
    if temperature is not None:
        config["temperature"] = temperature
    if name.startswith("gemini-2.5-pro"):
        config["thinkingConfig"] = {
            "thinkingBudget": PRO_MIN_THINKING_BUDGET,
            "includeThoughts": True,
        }
        config["maxOutputTokens"] = max_tokens + PRO_MIN_THINKING_BUDGET
    elif name.startswith("gemini-2.5-flash"):
        config["thinkingConfig"] = {"thinkingBudget": 0}
    elif name.startswith("gemini-3"):
        config["thinkingConfig"] = {"thinkingLevel": "low", "includeThoughts": True}
        config["maxOutputTokens"] = max_tokens + THINKING_HEADROOM_TOKENS
    return config


def gemini_usage(meta: dict[str, Any]) -> Usage:
    """Normalise a ``usageMetadata`` object (docs/metrics.md §4).

    input = ``promptTokenCount`` (+ ``toolUsePromptTokenCount``), inclusive of
    ``cachedContentTokenCount``; output = ``candidatesTokenCount + thoughtsTokenCount`` (either
    may be absent: candidates until the answer starts, thoughts for non-thinking models; both
    absent means not reported); reasoning = ``thoughtsTokenCount``. Gemini reports no cache
    writes (explicit caches are billed separately), so ``cache_write_tokens`` stays null.
    """
    prompt = _int(meta.get("promptTokenCount"))
    tool_prompt = _int(meta.get("toolUsePromptTokenCount"))
    candidates = _int(meta.get("candidatesTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    output = None
    if candidates is not None or thoughts is not None:
        output = (candidates or 0) + (thoughts or 0)
    return Usage(
        input_tokens=None if prompt is None else prompt + (tool_prompt or 0),
        cache_read_tokens=_int(meta.get("cachedContentTokenCount")),
        cache_write_tokens=None,
        output_tokens=output,
        reasoning_tokens=thoughts,
    )


def gemini_error(obj: Any) -> ProviderError:
    """Build a :class:`ProviderError` from an ``error`` object, with ``RetryInfo.retryDelay``.

    ``type`` is the ``status`` (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ...), ``code`` the
    HTTP-like ``code``; ``retry_after_s`` is parsed from a protobuf Duration such as ``"47s"``.
    """
    err = parse_error_object(obj)
    if isinstance(obj, dict):
        for detail in obj.get("details") or []:
            if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
                delay = detail.get("retryDelay")
                if isinstance(delay, str):
                    seconds = parse_duration_s(delay)
                    if seconds is not None:
                        err = dataclasses.replace(err, retry_after_s=seconds)
    return err


class GeminiParser:
    """Parser of one ``streamGenerateContent?alt=sse`` stream."""

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one chunk. See :class:`probes.dialects.base.StreamParser`.

        Raises:
            ValueError: when the data is not a JSON object (or a one-element error array).
        """
        obj = load_json(data)
        if obj is None:
            return None
        if isinstance(obj, list) and obj and isinstance(obj[0], dict) and "error" in obj[0]:
            obj = obj[0]
        if not isinstance(obj, dict):
            raise ValueError(f"event data is not a JSON object: {data.strip()[:80]!r}")
        out = ParsedEvent()
        if "error" in obj:
            out.error = gemini_error(obj["error"])
            return out
        if isinstance(obj.get("responseId"), str) and obj["responseId"]:
            out.request_id = obj["responseId"]
        if isinstance(obj.get("modelVersion"), str) and obj["modelVersion"]:
            out.response_model = obj["modelVersion"]
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict):
            out.usage = gemini_usage(meta)
        for candidate in obj.get("candidates") or []:
            if not isinstance(candidate, dict):
                continue
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts or []:
                if not isinstance(part, dict):
                    continue
                text = part.get("text")
                if isinstance(text, str) and text:
                    if part.get("thought") is True:
                        out.reasoning += text
                    else:
                        out.answer += text
                if part.get("functionCall"):
                    out.tool_call = True
            reason = candidate.get("finishReason")
            if isinstance(reason, str) and reason and reason != "FINISH_REASON_UNSPECIFIED":
                out.finish_reason = reason
                out.final = True
                if reason in FILTER_FINISH_REASONS:
                    out.stop_kind = ErrorKind.CONTENT_FILTER
        feedback = obj.get("promptFeedback")
        if isinstance(feedback, dict) and isinstance(feedback.get("blockReason"), str):
            # A blocked prompt: no candidates, the stream ends here.
            out.finish_reason = feedback["blockReason"]
            out.final = True
            out.stop_kind = ErrorKind.SAFETY_BLOCK
        return out


class GeminiDialect:
    """Dialect for the Gemini API (``provider = "gemini"``)."""

    name = "gemini"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary; the key goes in ``x-goog-api-key`` (never in the URL)."""
        s = target.settings
        model = model_name(target.config.model)
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": [{"text": s.prompt}]}],
            "generationConfig": generation_config(model, s.max_tokens, s.temperature),
        }
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["x-goog-api-key"] = api_key.strip()
        url = f"{target.base_url}/models/{quote(model, safe='-._')}:streamGenerateContent?alt=sse"
        return HttpRequest("POST", url, headers, body)

    def new_parser(self) -> GeminiParser:
        """Return a fresh stream parser."""
        return GeminiParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read ``{"error": {...}}`` (or ``[{"error": {...}}]``) bodies with their retry delay."""
        obj = json_or_none(body)
        if isinstance(obj, list) and obj:
            obj = obj[0]
        if isinstance(obj, dict) and "error" in obj:
            return gemini_error(obj["error"])
        return None

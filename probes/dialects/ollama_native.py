"""Ollama native chat streaming (``POST {base_url}/api/chat``), newline-delimited JSON.

Source: ollama/ollama ``docs/api.md`` "Generate a chat completion" (streaming),
``docs/api/usage.mdx``, ``docs/api/errors.mdx`` and ``api/types.go`` (``ChatResponse``,
``Metrics``); docs/dialects.md. Content type ``application/x-ndjson``,
one JSON object per line:

* ``{"message":{"role":"assistant","content":"…","thinking":"…"},"done":false}``: answer in
  ``message.content``, reasoning in ``message.thinking``, tool calls in ``message.tool_calls``;
* the last line has ``"done": true``, ``done_reason`` and the metrics ``prompt_eval_count``,
  ``eval_count`` and the durations ``total_duration``, ``load_duration``,
  ``prompt_eval_duration``, ``eval_duration`` in **nanoseconds**. Every metric is
  ``omitempty``: a missing count is "not reported" (it used to vanish when the prompt was
  cached, ollama#2068), never 0;
* ``done_reason: "load"`` means the server answered that it loaded (is loading) the model
  instead of generating: the outcome ``model_loading``, never downtime. A large
  ``load_duration`` on a normal answer is a cold load inside TTFT (flagged ``cold_load``);
* ``model`` names the model that answered;
* an error is a line ``{"error": "…"}``, before the stream as the whole body (400/404/429/500)
  or after content with the status still 200 (docs/field-cases.md FC-07 C).
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

_NS_PER_MS = 1_000_000.0
#: ``done_reason`` of an answer that only loaded the model (ollama ``server/routes.go``).
LOAD_DONE_REASON = "load"
_DURATIONS = (
    ("total", "total_duration"),
    ("load", "load_duration"),
    ("prefill", "prompt_eval_duration"),
    ("decode", "eval_duration"),
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _error(value: Any) -> ProviderError:
    if isinstance(value, dict):
        return ProviderError(str(value.get("message") or json.dumps(value)))
    return ProviderError(str(value))


class OllamaParser:
    """Parser of one ``/api/chat`` NDJSON stream (each line stands alone)."""

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one line. See :class:`probes.dialects.base.StreamParser`.

        Raises:
            ValueError: when the line is not a JSON object.
        """
        obj = load_json_object(data, "line")
        if obj is None:
            return None
        out = ParsedEvent()
        if "error" in obj:
            out.error = _error(obj["error"])
            return out
        if isinstance(obj.get("model"), str) and obj["model"]:
            out.response_model = obj["model"]
        message = obj.get("message")
        if isinstance(message, dict):
            if isinstance(message.get("content"), str):
                out.answer = message["content"]
            if isinstance(message.get("thinking"), str):
                out.reasoning = message["thinking"]
            if message.get("tool_calls"):
                out.tool_call = True
        if obj.get("done") is True:
            out.terminal = True
            if isinstance(obj.get("done_reason"), str) and obj["done_reason"]:
                out.finish_reason = obj["done_reason"]
                if out.finish_reason == LOAD_DONE_REASON:
                    out.stop_kind = ErrorKind.MODEL_LOADING
            prompt = _int(obj.get("prompt_eval_count"))
            output = _int(obj.get("eval_count"))
            if prompt is not None or output is not None:
                out.usage = Usage(input_tokens=prompt, output_tokens=output)
            for ours, theirs in _DURATIONS:
                value = obj.get(theirs)
                if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                    out.timing(ours, float(value) / _NS_PER_MS)
        return out


class OllamaNativeDialect:
    """Dialect for Ollama's native ``/api/chat`` (``provider = "ollama-native"``)."""

    name = "ollama-native"
    framing: Framing = "ndjson"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary: ``options.num_predict`` is the budget; ``think`` is not sent
        (models that think by default stream ``message.thinking``, counted as reasoning).
        A key, when configured (ollama.com), goes in ``Authorization: Bearer``."""
        s = target.settings
        options: dict[str, Any] = {"num_predict": s.max_tokens}
        if s.temperature is not None:
            options["temperature"] = s.temperature
        body: dict[str, Any] = {
            "model": target.config.model,
            "messages": [{"role": "user", "content": s.prompt}],
            "stream": True,
            "options": options,
        }
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest("POST", f"{target.base_url}/api/chat", headers, body)

    def new_parser(self) -> OllamaParser:
        """Return a fresh stream parser."""
        return OllamaParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read ``{"error": "…"}`` bodies."""
        obj = json_or_none(body)
        if isinstance(obj, dict) and "error" in obj:
            return _error(obj["error"])
        return None

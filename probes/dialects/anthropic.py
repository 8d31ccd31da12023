"""Anthropic Messages streaming (``POST {base_url}/messages`` with ``stream: true``).

Source: Anthropic API reference, "Streaming Messages" (anthropic-sdk-python
``types/raw_message_stream_event.py``, ``types/usage.py``, ``types/message_delta_usage.py``);
docs/dialects.md. Headers ``x-api-key`` and ``anthropic-version:
2023-06-01``. Each SSE event is ``event: <type>`` plus ``data: {"type": <type>, ...}``:

* ``message_start``: ``message.id`` and ``message.usage`` with the input side
  (``input_tokens``, ``cache_creation_input_tokens``, ``cache_read_input_tokens``) and a
  placeholder ``output_tokens``;
* ``content_block_start``: a block of generated output begins. A ``text`` or ``thinking``
  block starts empty and streams its content as deltas, so its start is no token; every other
  block carries generated output in the start itself (``tool_use``: the tool the model chose;
  ``redacted_thinking``: encrypted reasoning, which has no deltas at all; ``server_tool_use``
  and newer types), so its start is a token event and can start the TTFT clock. Tool results
  (``*_tool_result``) are the server's, not generated tokens;
* ``content_block_stop``, ``ping`` (keep-alive): no token;
* ``content_block_delta``: ``text_delta.text`` (answer), ``thinking_delta.thinking``
  (reasoning; the last one of a block is empty), ``input_json_delta.partial_json`` (tool
  input), ``signature_delta`` / ``citations_delta`` (no token);
* ``message_delta``: ``delta.stop_reason`` and the **cumulative** ``usage`` (replaces, never
  adds to, earlier values; newer API versions repeat the input and cache counts there);
* ``message_stop``: the terminal marker;
* ``error``: ``{"type":"error","error":{"type","message"}}`` inside a 200 stream, which then
  ends without ``message_stop``.

``message_start.message.model`` is the model that answered (``response_model``).
``input_tokens`` excludes both cache buckets, so the normalised input total is
``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` (docs/field-cases.md
FC-12 B).
"""

from __future__ import annotations

from dataclasses import dataclass
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
from probes.dialects.openai_chat import parse_error_object

#: The ``anthropic-version`` header value (the SDKs' default).
ANTHROPIC_VERSION = "2023-06-01"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(slots=True)
class _UsageState:
    """Running Anthropic usage; every field is replaced by the latest value reported."""

    input_tokens: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None

    def update_input(self, usage: dict[str, Any]) -> None:
        """Replace the input-side counts present in ``usage`` (absent ones are kept)."""
        for attr, key in (
            ("input_tokens", "input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
        ):
            value = _int(usage.get(key))
            if value is not None:
                setattr(self, attr, value)

    def normalised(self) -> Usage:
        """The running usage as :class:`Usage`, input inclusive of both cache buckets."""
        total = None
        if self.input_tokens is not None:
            total = self.input_tokens + (self.cache_read or 0) + (self.cache_write or 0)
        return Usage(
            input_tokens=total,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            output_tokens=self.output_tokens,
            reasoning_tokens=self.thinking_tokens,
        )


def anthropic_usage(usage: dict[str, Any]) -> Usage:
    """Normalise one complete Anthropic ``usage`` object (docs/metrics.md §4; FC-12 B).

    Example: ``{"input_tokens":3,"cache_creation_input_tokens":12304,
    "cache_read_input_tokens":0,"output_tokens":550}`` gives input 12307 (inclusive), cache
    write 12304, cache read 0, output 550.
    """
    state = _UsageState()
    state.update_input(usage)
    state.output_tokens = _int(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    if isinstance(details, dict):
        state.thinking_tokens = _int(details.get("thinking_tokens"))
    return state.normalised()


class AnthropicParser:
    """Parser of one Messages stream; keeps the running usage (message_start + message_delta)."""

    def __init__(self) -> None:
        self._usage = _UsageState()

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one event. See :class:`probes.dialects.base.StreamParser`.

        Raises:
            ValueError: when the data is not a JSON object.
        """
        obj = load_json_object(data)
        if obj is None:
            return None
        kind = obj.get("type") if isinstance(obj.get("type"), str) else event
        out = ParsedEvent()
        if kind == "error" or "error" in obj:
            err = obj.get("error", obj)
            out.error = parse_error_object(err)
            if isinstance(obj.get("request_id"), str):
                out.request_id = obj["request_id"]
            return out
        if kind == "ping":
            return None
        if kind == "content_block_delta":
            self._read_delta(obj.get("delta"), out)
        elif kind == "content_block_start":
            self._read_block_start(obj.get("content_block"), out)
        elif kind == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("id"), str) and message["id"]:
                    out.request_id = message["id"]
                if isinstance(message.get("model"), str) and message["model"]:
                    out.response_model = message["model"]
                usage = message.get("usage")
                if isinstance(usage, dict):
                    # The output_tokens here is a placeholder: only message_delta's counts.
                    self._usage.update_input(usage)
                    out.usage = self._usage.normalised()
        elif kind == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                out.finish_reason = str(delta["stop_reason"])
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self._usage.update_input(usage)
                output = _int(usage.get("output_tokens"))
                if output is not None:
                    self._usage.output_tokens = output
                details = usage.get("output_tokens_details")
                if isinstance(details, dict) and _int(details.get("thinking_tokens")) is not None:
                    self._usage.thinking_tokens = _int(details.get("thinking_tokens"))
                out.usage = self._usage.normalised()
        elif kind == "message_stop":
            out.terminal = True
        return out

    @staticmethod
    def _read_block_start(block: Any, out: ParsedEvent) -> None:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return
        btype = block["type"]
        if btype == "text":
            if isinstance(block.get("text"), str):
                out.answer = block["text"]
        elif btype == "thinking":
            if isinstance(block.get("thinking"), str):
                out.reasoning = block["thinking"]
        elif btype == "redacted_thinking":
            out.opaque_reasoning = True
        elif not btype.endswith("_tool_result"):
            out.tool_call = True  # tool_use, server_tool_use, mcp_tool_use and newer blocks

    @staticmethod
    def _read_delta(delta: Any, out: ParsedEvent) -> None:
        if not isinstance(delta, dict):
            return
        dtype = delta.get("type")
        if dtype == "text_delta" and isinstance(delta.get("text"), str):
            out.answer = delta["text"]
        elif dtype == "thinking_delta" and isinstance(delta.get("thinking"), str):
            out.reasoning = delta["thinking"]
        elif dtype == "input_json_delta":
            out.tool_call = bool(delta.get("partial_json"))


class AnthropicDialect:
    """Dialect for ``POST {base_url}/messages`` (``provider = "anthropic"``)."""

    name = "anthropic"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary: ``max_tokens`` (required by the API), one user message, no
        extended thinking (so the budget cannot be consumed by thinking)."""
        s = target.settings
        body: dict[str, Any] = {
            "model": target.config.model,
            "max_tokens": s.max_tokens,
            "messages": [{"role": "user", "content": s.prompt}],
            "stream": True,
        }
        if s.temperature is not None:
            body["temperature"] = s.temperature
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return HttpRequest("POST", f"{target.base_url}/messages", headers, body)

    def new_parser(self) -> AnthropicParser:
        """Return a fresh stream parser."""
        return AnthropicParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read ``{"type":"error","error":{"type","message"},"request_id"}`` bodies."""
        obj = json_or_none(body)
        if isinstance(obj, dict) and "error" in obj:
            return parse_error_object(obj["error"])
        return None

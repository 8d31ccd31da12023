"""AWS Bedrock ConverseStream (``POST {base_url}/model/{modelId}/converse-stream``).

Source: Amazon Bedrock API reference, ``ConverseStream`` and ``ConverseStreamOutput``
(``messageStart``, ``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``,
``messageStop``, ``metadata``; exceptions ``internalServerException``,
``modelStreamErrorException``, ``serviceUnavailableException``, ``throttlingException``,
``validationException``), ``ConverseStreamMetadataEvent`` (``usage``, ``metrics.latencyMs``)
and "Use an Amazon Bedrock API key" (``Authorization: Bearer <key>``);
docs/dialects.md.

The body is ``application/vnd.amazon.eventstream``: binary frames decoded by
``probes.sse.aiter_eventstream`` (botocore's CRC-checked decoder). Each frame's
``:event-type`` header names the event and its payload is that event's JSON (plus a random
``p`` padding field, ignored). Answer text is ``contentBlockDelta.delta.text``, reasoning
``delta.reasoningContent.text``, tool input ``delta.toolUse.input``. ``messageStop`` carries
``stopReason`` and ends the answer; the ``metadata`` frame after it carries usage and ends the
stream. ``usage.inputTokens`` excludes ``cacheReadInputTokens`` and ``cacheWriteInputTokens``,
so the normalised input total adds them.

Only Bedrock API keys (bearer tokens) are supported, not SigV4-signed IAM credentials.
"""

from __future__ import annotations

import json
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
    load_json_object,
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def bedrock_usage(usage: dict[str, Any]) -> Usage:
    """Normalise a Converse ``TokenUsage`` object (docs/metrics.md §4).

    input = ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens``; output =
    ``outputTokens`` (no reasoning breakdown is reported, so reasoning stays null).
    """
    inp = _int(usage.get("inputTokens"))
    read = _int(usage.get("cacheReadInputTokens"))
    write = _int(usage.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=None if inp is None else inp + (read or 0) + (write or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        output_tokens=_int(usage.get("outputTokens")),
        reasoning_tokens=None,
    )


def _message(obj: Any, fallback: str) -> str:
    if isinstance(obj, dict):
        for key in ("message", "Message"):
            if isinstance(obj.get(key), str):
                return str(obj[key])
    return fallback


class BedrockConverseParser:
    """Parser of one ConverseStream: one decoded frame per call."""

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one frame. See :class:`probes.dialects.base.StreamParser`.

        Raises:
            ValueError: when an event frame's payload is not a JSON object.
        """
        if event.startswith(("exception:", "error:")):
            name = event.partition(":")[2]
            try:
                payload: Any = json.loads(data) if data.strip() else {}
            except json.JSONDecodeError:
                payload = data
            text = _message(payload, data.strip() or name)
            return ParsedEvent(error=ProviderError(text, type=name, code=name))
        obj = load_json_object(data, "frame payload")
        if obj is None:
            return None
        out = ParsedEvent()
        if event == "contentBlockDelta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                if isinstance(delta.get("text"), str):
                    out.answer = delta["text"]
                reasoning = delta.get("reasoningContent")
                if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
                    out.reasoning = reasoning["text"]
                tool = delta.get("toolUse")
                if isinstance(tool, dict) and tool.get("input"):
                    out.tool_call = True
        elif event == "messageStop":
            if isinstance(obj.get("stopReason"), str):
                out.finish_reason = obj["stopReason"]
            out.final = True
        elif event == "metadata":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                out.usage = bedrock_usage(usage)
            metrics = obj.get("metrics")
            if isinstance(metrics, dict):
                latency = metrics.get("latencyMs")
                if isinstance(latency, int | float) and not isinstance(latency, bool):
                    out.timing("total", float(latency))
            out.terminal = True
        return out


class BedrockConverseDialect:
    """Dialect for Bedrock ConverseStream with a Bedrock API key (``provider = "bedrock"``)."""

    name = "bedrock-converse"
    framing: Framing = "eventstream"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary; the model id is URL-encoded (``us.amazon.nova-micro-v1%3A0``)."""
        s = target.settings
        inference: dict[str, Any] = {"maxTokens": s.max_tokens}
        if s.temperature is not None:
            inference["temperature"] = s.temperature
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": [{"text": s.prompt}]}],
            "inferenceConfig": inference,
        }
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = f"{target.base_url}/model/{quote(target.config.model, safe='')}/converse-stream"
        return HttpRequest("POST", url, headers, body)

    def new_parser(self) -> BedrockConverseParser:
        """Return a fresh stream parser."""
        return BedrockConverseParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read AWS JSON error bodies (``{"message": "…"}``, optionally ``__type``)."""
        obj = json_or_none(body)
        if not isinstance(obj, dict):
            return None
        message = _message(obj, "")
        if not message:
            return None
        err_type = obj.get("__type")
        return ProviderError(message, type=str(err_type).rsplit("#", 1)[-1] if err_type else None)

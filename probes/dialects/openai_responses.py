"""OpenAI Responses API streaming (``POST {base_url}/responses`` with ``stream: true``).

Source: OpenAI API reference, "Responses" streaming events (openai-python
``types/responses/response_stream_event.py``): every SSE event is ``event: <type>`` plus
``data: {"type": <type>, ...}``; text in ``response.output_text.delta``, refusals in
``response.refusal.delta``, reasoning in ``response.reasoning_summary_text.delta`` /
``response.reasoning_text.delta``, tool input in ``response.function_call_arguments.delta`` /
``response.custom_tool_call_input.delta``; usage in ``response.usage`` of the terminal event
(``ResponseUsage``: ``input_tokens`` inclusive of ``input_tokens_details.cached_tokens``,
``output_tokens`` inclusive of ``output_tokens_details.reasoning_tokens``). The stream ends with
``response.completed``, ``response.incomplete`` or ``response.failed``; there is no ``[DONE]``.
In-stream failures: ``event: error`` (``{"type":"error","code","message","param"}``) and
``response.failed`` (``response.error.{code,message}``), whose code classifies the failure
and stays in the message; ``response.incomplete`` with reason ``content_filter`` is a policy
stop. ``response.model`` names the model that answered. docs/dialects.md.

``max_output_tokens`` below 16 is rejected with 400 ``integer_below_min_value``, so the canary
budget is clamped up to 16.
"""

from __future__ import annotations

from typing import Any

from probes.config import ResolvedTarget
from probes.dialects.base import (
    Framing,
    HttpRequest,
    ParsedEvent,
    ProviderError,
    Usage,
    load_json_object,
)
from probes.dialects.openai_chat import OpenAIChatDialect, parse_error_object
from probes.errors import ErrorKind

#: The API's minimum ``max_output_tokens`` (400 ``integer_below_min_value`` below it).
MIN_OUTPUT_TOKENS = 16

_ANSWER_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_REASONING_DELTAS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)
_TOOL_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning families (o1/o3/o4 and gpt-5, not the ``gpt-5-chat`` models).

    They reject a non-default ``temperature`` and spend the output budget on reasoning first,
    so the canary omits ``temperature`` and asks for ``reasoning.effort: "low"``.
    """
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(("o1", "o3", "o4")):
        return True
    return name.startswith("gpt-5") and "chat" not in name


def parse_responses_usage(usage: dict[str, Any]) -> Usage:
    """Normalise a Responses ``usage`` object (``ResponseUsage``) to docs/metrics.md §4.

    ``input_tokens`` already includes ``input_tokens_details.cached_tokens`` (and
    ``cache_write_tokens``); ``output_tokens`` already includes reasoning.
    """
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=_int(usage.get("input_tokens")),
        cache_read_tokens=_int(in_details.get("cached_tokens")),
        cache_write_tokens=_int(in_details.get("cache_write_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        reasoning_tokens=_int(out_details.get("reasoning_tokens")),
    )


class OpenAIResponsesParser:
    """Parser of one Responses stream: one SSE event per stream event, keyed by its ``type``."""

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
        if kind == "error" or (kind in ("", "message") and "error" in obj):
            # event: error -> {"type":"error","code","message","param","sequence_number"}
            # (its "type" is the event's, not an error type); a raw {"error": {...}} body
            # appended to the stream is read the same way.
            err = obj.get("error")
            if not isinstance(err, dict):
                err = {k: v for k, v in obj.items() if k != "type"}
            out.error = parse_error_object(err)
            return out
        delta = obj.get("delta")
        if kind in _ANSWER_DELTAS:
            if isinstance(delta, str):
                out.answer = delta
        elif kind in _REASONING_DELTAS:
            if isinstance(delta, str):
                out.reasoning = delta
        elif kind in _TOOL_DELTAS:
            out.tool_call = True
        elif kind in _TERMINAL or kind in _LIFECYCLE:
            self._read_response(kind, obj.get("response"), out)
        return out

    @staticmethod
    def _read_response(kind: str, response: Any, out: ParsedEvent) -> None:
        if not isinstance(response, dict):
            if kind in _TERMINAL:
                out.terminal = True
            return
        if isinstance(response.get("id"), str) and response["id"]:
            out.request_id = response["id"]
        if isinstance(response.get("model"), str) and response["model"]:
            out.response_model = response["model"]
        if kind not in _TERMINAL:
            return
        out.terminal = True
        usage = response.get("usage")
        if isinstance(usage, dict):
            out.usage = parse_responses_usage(usage)
        status = response.get("status")
        if kind == "response.incomplete":
            details = response.get("incomplete_details") or {}
            reason = details.get("reason") if isinstance(details, dict) else None
            out.finish_reason = str(reason or status or "incomplete")
            if reason == "content_filter":
                out.stop_kind = ErrorKind.CONTENT_FILTER
        elif kind == "response.failed":
            out.finish_reason = str(status or "failed")
            err = response.get("error")
            out.error = (
                parse_error_object(err)
                if err
                else ProviderError("response.failed without an error object", type="failed")
            )
        else:
            out.finish_reason = str(status or "completed")


class OpenAIResponsesDialect:
    """Dialect for ``POST {base_url}/responses`` with ``stream: true``."""

    name = "openai-responses"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary request.

        ``max_output_tokens`` is ``max(max_tokens, 16)`` (the API minimum); reasoning families
        (:func:`is_reasoning_model`) get ``reasoning.effort: "low"`` and no ``temperature``.
        ``store: false`` keeps canaries out of the account's stored responses.
        """
        s = target.settings
        model = target.config.model
        body: dict[str, Any] = {
            "model": model,
            "input": s.prompt,
            "max_output_tokens": max(s.max_tokens, MIN_OUTPUT_TOKENS),
            "stream": True,
            "store": False,
        }
        if is_reasoning_model(model):
            body["reasoning"] = {"effort": "low"}
        elif s.temperature is not None:
            body["temperature"] = s.temperature
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest("POST", f"{target.base_url}/responses", headers, body)

    def new_parser(self) -> OpenAIResponsesParser:
        """Return a fresh stream parser."""
        return OpenAIResponsesParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read the ``{"error": {...}}`` body the Responses API shares with Chat Completions."""
        return OpenAIChatDialect().parse_error_body(body)

"""Replicate predictions with streaming output: create, read ``urls.stream``, read the result.

Source: Replicate HTTP API reference ("Create a prediction", "Create a prediction using an
official model", "Create a prediction using a deployment", "Get a prediction") and its
streaming guide (replicate.com/docs/topics/predictions/streaming), cross-checked against
replicate-python (``replicate/stream.py``: ``Accept: text/event-stream``, ``Cache-Control:
no-store``, event types ``output`` / ``logs`` / ``error`` / ``done``) and replicate-javascript
(``lib/stream.js`` and its tests: ``output`` data is plain text, multi-line data joined with
``\\n``, ``done`` data ``{}``). What the docs leave open is listed in docs/dialects.md.

One probe is three HTTP requests, so this dialect opens its stream itself
(:meth:`ReplicateDialect.open_stream`, the runner's multi-request hook):

1. ``POST`` the prediction with ``"stream": true`` (the probe's clock starts before it):
   ``{base}/models/{owner}/{name}/predictions`` for an official model (``model = "owner/name"``),
   ``{base}/predictions`` with ``version`` for a community model (``model =
   "owner/name:version"`` or a bare 64-hex version id), ``{base}/deployments/{owner}/{name}/
   predictions`` for a deployment (``model = "deployments/owner/name"``). Answer: 201 and the
   prediction, whose ``urls.stream`` is the event stream.
2. ``GET urls.stream`` as Server-Sent Events: ``output`` events carry generated text (plain,
   not JSON; an empty one carries no token), ``error`` events a message (JSON with ``detail``,
   or plain text), ``done`` ends the stream (``{}`` on success, ``{"reason": ...}`` when the
   prediction was canceled or failed). ``logs`` events are ignored.
3. After ``done``, ``GET urls.get``: the finished prediction's ``metrics``
   (``input_token_count``, ``output_token_count``, ``predict_time``, ``total_time``,
   ``time_to_first_token``; seconds) and ``created_at`` / ``started_at``, whose difference is
   Replicate's queue and boot time. These are the provider's figures and go to ``server_*``
   fields and the usage; they never replace our own timings.

The API key is sent as ``Authorization: Bearer`` to the configured API host, and to the
stream and prediction URLs only when they are on that host or under ``replicate.com`` /
``replicate.net`` over HTTPS, so a redirected URL can never receive the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from probes.config import ResolvedTarget
from probes.dialects.base import (
    Framing,
    HttpRequest,
    ParsedEvent,
    ProviderError,
    Usage,
    json_or_none,
)
from probes.timestamps import parse_iso

if TYPE_CHECKING:  # dialect modules load without httpx (the price path imports them)
    import httpx

_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_TRUSTED_SUFFIXES = (".replicate.com", ".replicate.net")
#: Prediction states after which ``metrics`` no longer change (Replicate "Get a prediction").
FINISHED_STATES = frozenset({"succeeded", "failed", "canceled"})
#: Reads of the prediction after ``done`` while it still says ``processing`` (the docs do not
#: say whether the prediction is final when the stream ends), spaced this far apart.
RESULT_READS = 3
RESULT_READ_GAP_S = 0.1

Report = Callable[[ParsedEvent], None]


def create_url(base_url: str, model: str) -> tuple[str, str | None]:
    """Where to create a prediction for ``model``, and the version id to send (or None).

    ``owner/name`` → the official-model endpoint; ``owner/name:version`` or a bare 64-hex
    version id → ``/predictions`` with ``version``; ``deployments/owner/name`` → the deployment
    endpoint. Anything else is sent as an official model (the API then answers 404).
    """
    if model.startswith("deployments/"):
        return f"{base_url}/{model}/predictions", None
    if _VERSION_ID.match(model):
        return f"{base_url}/predictions", model
    name, sep, version = model.partition(":")
    if sep and version:
        return f"{base_url}/predictions", version
    return f"{base_url}/models/{name}/predictions", None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds_ms(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value) * 1000.0
    return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def prediction_event(prediction: Mapping[str, Any]) -> ParsedEvent:
    """What a prediction object says about the run, as a non-token event (pure).

    * usage: ``metrics.input_token_count`` / ``output_token_count`` (official language models
      only; ``None`` when absent). Replicate does not report cache or reasoning buckets.
    * server timings in ms: ``queue`` = ``started_at − created_at`` (queue plus model boot:
      large after a scale-to-zero), ``ttft`` = ``metrics.time_to_first_token``, ``predict`` =
      ``metrics.predict_time``, ``total`` = ``metrics.total_time``.
    * ``request_id``: the prediction ``id``.
    """
    out = ParsedEvent()
    if isinstance(prediction.get("id"), str):
        out.request_id = prediction["id"]
    metrics = prediction.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    input_tokens = _int(metrics.get("input_token_count"))
    output_tokens = _int(metrics.get("output_token_count"))
    if input_tokens is not None or output_tokens is not None:
        out.usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    created, started = _when(prediction.get("created_at")), _when(prediction.get("started_at"))
    if created is not None and started is not None and started >= created:
        out.timing("queue", (started - created).total_seconds() * 1000.0)
    for key, name in (
        ("time_to_first_token", "ttft"),
        ("predict_time", "predict"),
        ("total_time", "total"),
    ):
        value = _seconds_ms(metrics.get(key))
        if value is not None:
            out.timing(name, value)
    return out


def _error_text(data: str) -> str:
    obj = json_or_none(data)
    if isinstance(obj, dict):
        for key in ("detail", "error", "message"):
            if obj.get(key):
                return str(obj[key])
        return json.dumps(obj)[:300]
    return data.strip() or "error event without a message"


class ReplicateParser:
    """Parses one prediction's event stream (``output`` / ``logs`` / ``error`` / ``done``)."""

    def parse(self, event: str, data: str) -> ParsedEvent | None:
        """Parse one event. See :class:`probes.dialects.base.StreamParser`.

        Raises:
            ValueError: when a ``done`` event's data is not JSON.
        """
        if event == "output":
            # Plain text, one token or chunk per event; "" carries no token.
            return ParsedEvent(answer=data) if data else None
        if event == "error":
            return ParsedEvent(error=ProviderError(_error_text(data), type="prediction_error"))
        if event == "done":
            obj: Any = {}
            if data.strip():
                try:
                    obj = json.loads(data)
                except ValueError:
                    raise ValueError(f"done event data is not JSON: {data[:80]!r}") from None
            reason = obj.get("reason") if isinstance(obj, dict) else None
            if reason:
                # A prediction canceled or failed after it started streaming.
                return ParsedEvent(
                    terminal=True,
                    finish_reason=str(reason),
                    error=ProviderError(f"prediction ended: {reason}", type=str(reason)),
                )
            return ParsedEvent(terminal=True)
        return None  # logs, and event types this dialect does not know


def _trusted(url: str, base_url: str) -> bool:
    """True when ``url`` may receive the API key (see the module docstring)."""
    parts, base = urlsplit(url), urlsplit(base_url)
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        return True
    host = parts.hostname or ""
    return parts.scheme == "https" and host.endswith(_TRUSTED_SUFFIXES)


class ReplicateDialect:
    """Replicate predictions with ``stream: true`` (a multi-request dialect)."""

    name = "replicate"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """The create-prediction request: ``input`` holds ``prompt``, ``max_tokens`` and the
        configured ``temperature``; ``stream: true`` asks for ``urls.stream``."""
        s = target.settings
        url, version = create_url(target.base_url, target.config.model)
        model_input: dict[str, Any] = {"prompt": s.prompt, "max_tokens": s.max_tokens}
        if s.temperature is not None:
            model_input["temperature"] = s.temperature
        body: dict[str, Any] = {"input": model_input, "stream": True}
        if version is not None:
            body["version"] = version
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest("POST", url, headers, body)

    def new_parser(self) -> ReplicateParser:
        """Return a fresh stream parser."""
        return ReplicateParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read an API error (``{"title", "detail", "status"}`` problem details, or the older
        ``{"detail"}``) or a prediction that cannot stream: ``status`` ``failed`` /
        ``canceled`` (its ``error``), or no ``urls.stream`` (the model does not stream)."""
        obj = json_or_none(body)
        if not isinstance(obj, dict):
            return None
        if "urls" in obj or ("id" in obj and "status" in obj):
            status = str(obj.get("status") or "")
            if status in ("failed", "canceled"):
                message = str(obj.get("error") or f"prediction {status}")
                return ProviderError(message, type=f"prediction_{status}")
            return ProviderError(
                "the prediction has no urls.stream: this model or version does not stream",
                type="no_stream",
            )
        if obj.get("detail"):
            title = obj.get("title")
            return ProviderError(
                str(obj["detail"]),
                type=str(title) if title else None,
                code=_int(obj.get("status")),
            )
        return None

    @contextlib.asynccontextmanager
    async def open_stream(
        self,
        client: httpx.AsyncClient,
        request: HttpRequest,
        *,
        extensions: dict[str, Any],
        report: Report,
    ) -> AsyncIterator[httpx.Response]:
        """Create the prediction, then yield its event stream's response (the runner reads it).

        When the create request fails (non-2xx), or the prediction cannot stream (failed,
        canceled, no ``urls.stream``), the create response itself is yielded, already read:
        the runner classifies it like any other error response (``parse_error_body``). After
        the stream was read to its end (normal exit only), the finished prediction is read
        and ``report`` receives its usage and server timings (:func:`prediction_event`).

        Args:
            client: the probe's client.
            request: the create request from :meth:`build_request`.
            extensions: httpx request extensions (the runner's connection trace).
            report: called with facts learned outside the stream (prediction id, metrics).
        """
        key = request.headers.get("Authorization")
        create = await client.post(
            request.url, headers=request.headers, json=request.json, extensions=extensions
        )
        prediction = json_or_none(create.text) if create.status_code < 300 else None
        if not isinstance(prediction, dict):
            yield create
            return
        report(ParsedEvent(request_id=prediction.get("id") or None))
        found = prediction.get("urls")
        urls: dict[str, Any] = found if isinstance(found, dict) else {}
        stream_url = urls.get("stream") if isinstance(urls.get("stream"), str) else None
        if stream_url is None or prediction.get("status") in ("failed", "canceled"):
            yield create
            return
        base = request.url
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if key and _trusted(stream_url, base):
            headers["Authorization"] = key
        async with client.stream(
            "GET", stream_url, headers=headers, extensions=extensions
        ) as response:
            yield response
        get_url = urls.get("get") if isinstance(urls.get("get"), str) else None
        if get_url is None:
            return
        get_headers = {"Authorization": key} if key and _trusted(get_url, base) else {}
        for attempt in range(RESULT_READS):
            if attempt:
                await asyncio.sleep(RESULT_READ_GAP_S)
            result = await client.get(get_url, headers=get_headers)
            final = json_or_none(result.text) if result.status_code == 200 else None
            if not isinstance(final, dict):
                return
            if final.get("status") in FINISHED_STATES or attempt == RESULT_READS - 1:
                report(prediction_event(final))
                return

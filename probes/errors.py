"""The closed set of failure classes a probe can end in, whose side each is on, and redaction.

Every failed probe is one row whose ``error_kind`` is one of :class:`ErrorKind`; nothing a
provider or the network does may escape as an exception (see ``runner.run_probe``).
:data:`SIDES` says whose fault each kind is, which decides what it means for uptime
(``store.outage.classify`` follows it; docs/uptime.md). :func:`classify_provider_error` maps a
provider's documented error type or code to a kind.
"""

from __future__ import annotations

import functools
import html
import json
import re
import urllib.parse
from enum import StrEnum

from probes.text import cap, printable, valid_text


class ErrorKind(StrEnum):
    """Why a probe failed. Stored as text in ``error_kind``; the set is closed and documented.

    The value is the public name; :data:`ERROR_KIND_DOCS` gives each one's meaning.
    """

    DNS = "dns"
    DNS_TIMEOUT = "dns_timeout"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS = "tls"
    CONNECT_ERROR = "connect_error"
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    STALL = "stall"
    DEADLINE = "deadline"
    AUTH = "auth"
    MODEL_NOT_FOUND = "model_not_found"
    PROBE_CONFIG = "probe_config"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    HTTP_ERROR = "http_error"
    STREAM_ERROR = "stream_error"
    TRUNCATED = "truncated"
    EMPTY_RESPONSE = "empty_response"
    BAD_FORMAT = "bad_format"
    SAFETY_BLOCK = "safety_block"
    CONTENT_FILTER = "content_filter"
    MODEL_LOADING = "model_loading"
    TOO_LARGE = "too_large"
    NOT_CONFIGURED = "not_configured"
    INTERNAL = "internal"


ERROR_KIND_DOCS: dict[ErrorKind, str] = {
    ErrorKind.DNS: ("the host name does not exist (NXDOMAIN, no address): a configuration error"),
    ErrorKind.DNS_TIMEOUT: (
        "the resolver did not answer within its share of the budget (or said try again): "
        "the monitor's side"
    ),
    ErrorKind.CONNECT_REFUSED: "the TCP connection was refused (nothing listening)",
    ErrorKind.CONNECT_TIMEOUT: "the TCP/TLS connection was not established in time",
    ErrorKind.TLS: "the TLS handshake failed (certificate, protocol)",
    ErrorKind.CONNECT_ERROR: "another network error before a response arrived",
    ErrorKind.FIRST_TOKEN_TIMEOUT: (
        "connected and request sent, but no token within first_token_timeout_s (the response "
        "headers may not have arrived either)"
    ),
    ErrorKind.STALL: "tokens started, then none arrived for stall_timeout_s (keep-alives ignored)",
    ErrorKind.DEADLINE: "the whole probe exceeded timeout_s",
    ErrorKind.AUTH: "HTTP 401/403: missing, wrong or unauthorised API key",
    ErrorKind.MODEL_NOT_FOUND: "HTTP 404: unknown model, deployment or path",
    ErrorKind.PROBE_CONFIG: (
        "HTTP 400/413/422, or an in-stream error naming our request (invalid_request_error, "
        "validationException, exceed_context_size_error): the probe's own fault, not downtime"
    ),
    ErrorKind.RATE_LIMITED: (
        "HTTP 429, or rate limiting in the stream (rate_limit_error, throttlingException, "
        "RESOURCE_EXHAUSTED); retry_after_s keeps the server's Retry-After"
    ),
    ErrorKind.OVERLOADED: (
        "HTTP 529 or 503, or an overload in the stream (overloaded_error, "
        "serviceUnavailableException, UNAVAILABLE): transient capacity shortage"
    ),
    ErrorKind.SERVER_ERROR: (
        "HTTP 5xx other than 503/529, or a server error in the stream (api_error, "
        "server_error, internalServerException, an OpenRouter error.code 5xx)"
    ),
    ErrorKind.HTTP_ERROR: "another non-2xx HTTP status",
    ErrorKind.STREAM_ERROR: (
        "an error object inside a 200 stream whose documented type or code names no other kind"
    ),
    ErrorKind.TRUNCATED: "the stream ended without the API's terminal marker",
    ErrorKind.EMPTY_RESPONSE: "the stream completed but carried no generated token",
    ErrorKind.BAD_FORMAT: "the body was not the expected format (HTML, JSON, NDJSON, bad JSON)",
    ErrorKind.SAFETY_BLOCK: (
        "the provider's safety system blocked the prompt (Gemini promptFeedback.blockReason, "
        "Azure 400 content_filter on the prompt)"
    ),
    ErrorKind.CONTENT_FILTER: (
        "a policy filter stopped the answer (Gemini SAFETY/RECITATION/PROHIBITED_CONTENT... "
        "finish, OpenAI/Azure finish_reason content_filter)"
    ),
    ErrorKind.MODEL_LOADING: (
        "the server is still loading the model (Ollama done_reason load, llama.cpp 503 "
        "Loading model, Bedrock ModelNotReadyException)"
    ),
    ErrorKind.TOO_LARGE: (
        "the response passed max_response_bytes or max_stream_events (a runaway or hostile "
        "stream); the probe stopped reading and closed the connection"
    ),
    ErrorKind.NOT_CONFIGURED: "the target's API key variable is unset; the target is not probed",
    ErrorKind.INTERNAL: "a bug in inferwatch while measuring; the message says where",
}


class Side(StrEnum):
    """Whose fault a failure is, which decides what it means for uptime (docs/uptime.md)."""

    PROVIDER = "provider"
    """Counts toward down. Connect-level kinds (:data:`CONNECT_LEVEL`) are held until another
    host answers, and dropped when every host fails (the monitor is blind)."""
    OURS = "ours"
    """Our configuration or our bug: never downtime."""
    MONITOR = "monitor"
    """The monitor's own side (its resolver): never provider downtime."""
    NEUTRAL = "neutral"
    """The provider answered as designed but the probe is no latency sample (a policy block, a
    model still loading): neither success nor failure, never downtime."""


#: One line per side, for docs and ``inferwatch check-config --error-kinds``.
SIDE_DOCS: dict[Side, str] = {
    Side.PROVIDER: (
        "the provider's failure: counts toward down (connect-level kinds only once another "
        "host answers; dropped while the monitor is blind)"
    ),
    Side.OURS: "our configuration or our bug: never downtime",
    Side.MONITOR: "the monitor's own side (its resolver): never provider downtime",
    Side.NEUTRAL: (
        "the provider answered as designed (a policy block, a model loading): neither success "
        "nor failure, never downtime"
    ),
}

SIDES: dict[ErrorKind, Side] = {
    ErrorKind.DNS: Side.OURS,
    ErrorKind.DNS_TIMEOUT: Side.MONITOR,
    ErrorKind.CONNECT_REFUSED: Side.PROVIDER,
    ErrorKind.CONNECT_TIMEOUT: Side.PROVIDER,
    ErrorKind.TLS: Side.PROVIDER,
    ErrorKind.CONNECT_ERROR: Side.PROVIDER,
    ErrorKind.FIRST_TOKEN_TIMEOUT: Side.PROVIDER,
    ErrorKind.STALL: Side.PROVIDER,
    ErrorKind.DEADLINE: Side.PROVIDER,
    ErrorKind.AUTH: Side.PROVIDER,
    ErrorKind.MODEL_NOT_FOUND: Side.PROVIDER,
    ErrorKind.PROBE_CONFIG: Side.OURS,
    ErrorKind.RATE_LIMITED: Side.PROVIDER,
    ErrorKind.OVERLOADED: Side.PROVIDER,
    ErrorKind.SERVER_ERROR: Side.PROVIDER,
    ErrorKind.HTTP_ERROR: Side.PROVIDER,
    ErrorKind.STREAM_ERROR: Side.PROVIDER,
    ErrorKind.TRUNCATED: Side.PROVIDER,
    ErrorKind.EMPTY_RESPONSE: Side.PROVIDER,
    ErrorKind.BAD_FORMAT: Side.PROVIDER,
    ErrorKind.SAFETY_BLOCK: Side.NEUTRAL,
    ErrorKind.CONTENT_FILTER: Side.NEUTRAL,
    ErrorKind.MODEL_LOADING: Side.NEUTRAL,
    ErrorKind.TOO_LARGE: Side.PROVIDER,
    ErrorKind.NOT_CONFIGURED: Side.OURS,
    ErrorKind.INTERNAL: Side.OURS,
}

#: Failures before any response arrived, after the name resolved: the provider's host or our
#: own network; ``store.outage.Coordinator`` decides which by cross-checking other hosts.
CONNECT_LEVEL = frozenset(
    {
        ErrorKind.CONNECT_REFUSED,
        ErrorKind.CONNECT_ERROR,
        ErrorKind.CONNECT_TIMEOUT,
    }
)

#: Kinds for which an HTTP response arrived although the probe does not count either way
#: (the network works): our own bad request, and the neutral outcomes.
ANSWERED_NOT_COUNTED = frozenset(
    {ErrorKind.PROBE_CONFIG} | {k for k, side in SIDES.items() if side is Side.NEUTRAL}
)


def side_of(kind: str | None) -> Side:
    """The :class:`Side` of an ``error_kind`` value; unknown or missing kinds are the provider's."""
    try:
        return SIDES[ErrorKind(kind)] if kind else Side.PROVIDER
    except ValueError:
        return Side.PROVIDER


_MAX_MESSAGE_CHARS = 300
#: A run of at least this many characters of a key's start or end is redacted wherever it
#: appears: text cut by someone else (an 80-character quote of bad JSON, a length limit) can
#: hold a key's head or tail without the whole key.
_FRAGMENT_CHARS = 6

# Shapes of credentials that providers echo back in error bodies or that end up in URLs.
# Group "keep" is the harmless prefix left in place so the message still says what was there.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(?P<keep>bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?P<keep>)\b(?:sk|pk|rk|gsk|csk|fw|xai|sk-ant|sk-or)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?P<keep>)\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(?P<keep>[?&](?:key|api[_-]?key|token)=)[^&\s\"']+"),
    # user:password@ in a URL (a base_url with credentials, echoed in an exception)
    re.compile(r"(?i)(?P<keep>\b[a-z][a-z0-9+.\-]*://)[^/@\s\"'<>]+(?=@)"),
]


@functools.lru_cache(maxsize=64)
def _secret_forms(secret: str) -> tuple[str, ...]:
    """The spellings a server or an exception may echo ``secret`` in, longest first: as is,
    JSON-escaped (with and without ``\\uXXXX`` and ``\\/``), URL-encoded (``%2F`` and
    ``+`` for space), HTML-escaped and Python-repr-escaped (``\\r`` in h11's messages)."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
        urllib.parse.quote(secret),
        html.escape(secret),
        repr(secret)[1:-1],
        repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
    }
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def _redact_secret(text: str, secret: str) -> str:
    """Replace every spelling of ``secret`` in ``text``, in any letter case, by ``***``, then
    any run of at least ``_FRAGMENT_CHARS`` characters of one of its ends."""
    forms = _secret_forms(secret)
    for form in forms:
        text = re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
    if len(secret) <= _FRAGMENT_CHARS:
        return text
    low = text.lower()
    cuts = sorted(cut for form in forms for cut in _fragments(low, form.lower()))
    if not cuts:
        return text
    out: list[str] = []
    pos = 0
    for begin, end in cuts:  # merged: overlapping runs become one ***
        if end <= pos:
            continue
        if begin >= pos:
            out += [text[pos:begin], "***"]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _fragments(low: str, key: str) -> list[tuple[int, int]]:
    """Spans of ``low`` that are a key's head (``key[:k]``) or tail (``key[-k:]``) with
    ``k >= _FRAGMENT_CHARS`` (both lower case). Linear in ``len(low) * len(key)`` at worst."""
    if len(key) <= _FRAGMENT_CHARS:
        return []
    cuts: list[tuple[int, int]] = []
    head = key[:_FRAGMENT_CHARS]
    start = low.find(head)
    while start >= 0:
        end = start + _FRAGMENT_CHARS
        while end < len(low) and end - start < len(key) and low[end] == key[end - start]:
            end += 1
        cuts.append((start, end))
        start = low.find(head, end)
    tail = key[-_FRAGMENT_CHARS:]
    stop = low.find(tail)
    while stop >= 0:
        begin, end = stop, stop + _FRAGMENT_CHARS
        k = len(key) - _FRAGMENT_CHARS
        while begin > 0 and k > 0 and low[begin - 1] == key[k - 1]:
            begin, k = begin - 1, k - 1
        cuts.append((begin, end))
        stop = low.find(tail, end)
    return cuts


def redact(
    text: str,
    secrets: tuple[str, ...] = (),
    max_chars: int = _MAX_MESSAGE_CHARS,
    *,
    newlines: bool = True,
) -> str:
    """Return ``text`` made safe to store and show: credentials replaced by ``***``, then
    made valid and printable, then cut to ``max_chars``.

    Redaction runs on the whole text *before* it is cut, so a key straddling the cut never
    leaves a piece behind; each key is matched in any letter case and in its JSON-escaped,
    URL-encoded, HTML-escaped and repr forms, and a run of 6+ characters of a key's start or
    end (text someone else cut) is removed too.

    Args:
        text: a provider error body, exception text, request id or URL.
        secrets: exact secret values (the target's API key, a base_url password) to remove
            wherever they appear, even when they do not look like a known key format.
        max_chars: the length cap (300 for messages).
        newlines: keep line breaks (the CSV writer quotes them); others become ``\\n``.

    Returns:
        The cleaned text, at most ``max_chars`` characters, with no control characters other
        than ``\\n`` (see :func:`probes.text.printable`).
    """
    text = valid_text(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = _redact_secret(text, secret)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + "***", text)
    return cap(printable(text.strip(), newlines=newlines), max_chars)


def classify_http_status(
    status: int,
    error_type: str | None = None,
    code: str | int | None = None,
    message: str = "",
) -> ErrorKind:
    """Map a non-2xx HTTP status (and the provider's error type, if any) to an :class:`ErrorKind`.

    The status decides (docs/uptime.md), except where the provider's documented type or code
    says more than the status can: an overload, a policy block of the prompt (Azure answers 400
    with code ``content_filter``), or a model still loading (llama.cpp 503 "Loading model",
    Bedrock ``ModelNotReadyException``).

    Args:
        status: the HTTP status code.
        error_type: the provider's machine-readable error type (``error.type`` / ``error.status``).
        code: the provider's ``error.code``, if any.
        message: the provider's message (to recognise a model still loading).
    """
    named = [v.strip().lower() for v in (error_type, code) if isinstance(v, str)]
    for value in named:
        kind = PROVIDER_ERROR_KINDS.get(value)
        if kind is ErrorKind.CONTENT_FILTER:
            # A request rejected before any output: the prompt itself was blocked.
            return ErrorKind.SAFETY_BLOCK
        if kind is ErrorKind.MODEL_LOADING:
            return kind
    if _LOADING_MESSAGE.search(message) and status == 503:
        return ErrorKind.MODEL_LOADING
    if any("overloaded" in value for value in named):
        return ErrorKind.OVERLOADED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.MODEL_NOT_FOUND
    if status in (400, 413, 422):
        return ErrorKind.PROBE_CONFIG
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if 500 <= status < 600:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.HTTP_ERROR


#: A provider's documented error ``type`` / ``code`` / ``status`` (lower case) -> kind. Used for
#: errors inside a 200 stream; for an HTTP error status the status decides, except the
#: overload and neutral kinds here (see :func:`classify_http_status`).
PROVIDER_ERROR_KINDS: dict[str, ErrorKind] = {
    # Anthropic error.type (docs.anthropic.com/en/api/errors), in bodies and `event: error`.
    "overloaded_error": ErrorKind.OVERLOADED,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "api_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.SERVER_ERROR,
    "invalid_request_error": ErrorKind.PROBE_CONFIG,
    "request_too_large": ErrorKind.PROBE_CONFIG,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.AUTH,
    "not_found_error": ErrorKind.MODEL_NOT_FOUND,
    # OpenAI error.type / error.code (Chat Completions chunks, Responses `error` events and
    # response.failed's response.error.code; platform.openai.com/docs/guides/error-codes).
    "server_error": ErrorKind.SERVER_ERROR,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "insufficient_quota": ErrorKind.RATE_LIMITED,
    "invalid_prompt": ErrorKind.PROBE_CONFIG,
    "context_length_exceeded": ErrorKind.PROBE_CONFIG,
    "invalid_api_key": ErrorKind.AUTH,
    "model_not_found": ErrorKind.MODEL_NOT_FOUND,
    "content_filter": ErrorKind.CONTENT_FILTER,
    # Bedrock ConverseStream exception frames (API_runtime_ConverseStreamOutput) and the
    # x-amzn-ErrorType / __type of error bodies (API_runtime_ConverseStream "Errors").
    "throttlingexception": ErrorKind.RATE_LIMITED,
    "servicequotaexceededexception": ErrorKind.RATE_LIMITED,
    "serviceunavailableexception": ErrorKind.OVERLOADED,
    "internalserverexception": ErrorKind.SERVER_ERROR,
    "modelstreamerrorexception": ErrorKind.STREAM_ERROR,
    "modeltimeoutexception": ErrorKind.SERVER_ERROR,
    "modelerrorexception": ErrorKind.SERVER_ERROR,
    "validationexception": ErrorKind.PROBE_CONFIG,
    "accessdeniedexception": ErrorKind.AUTH,
    "resourcenotfoundexception": ErrorKind.MODEL_NOT_FOUND,
    "modelnotreadyexception": ErrorKind.MODEL_LOADING,
    # Gemini / Vertex error.status (google.rpc.Code names).
    "resource_exhausted": ErrorKind.RATE_LIMITED,
    "unavailable": ErrorKind.OVERLOADED,
    "internal": ErrorKind.SERVER_ERROR,
    "deadline_exceeded": ErrorKind.SERVER_ERROR,
    "invalid_argument": ErrorKind.PROBE_CONFIG,
    "failed_precondition": ErrorKind.PROBE_CONFIG,
    "permission_denied": ErrorKind.AUTH,
    "unauthenticated": ErrorKind.AUTH,
    "not_found": ErrorKind.MODEL_NOT_FOUND,
    # llama.cpp server error.type (tools/server README) and vLLM error.type.
    "exceed_context_size_error": ErrorKind.PROBE_CONFIG,
    "unavailable_error": ErrorKind.OVERLOADED,
    "badrequesterror": ErrorKind.PROBE_CONFIG,
    "internalservererror": ErrorKind.SERVER_ERROR,
}

#: Messages that say a local server is still loading its model (llama.cpp answers 503
#: ``{"error":{"message":"Loading model","type":"unavailable_error"}}`` until it is ready).
_LOADING_MESSAGE = re.compile(r"(?i)\bloading (the )?model\b")


def classify_provider_error(
    error_type: str | None,
    code: str | int | None,
    message: str = "",
) -> ErrorKind:
    """Classify an error object a provider sent inside a 200 stream.

    The provider's documented ``type`` decides first, then its ``code`` (a name, or an HTTP-like
    number as OpenRouter, vLLM and llama.cpp send), through :data:`PROVIDER_ERROR_KINDS`; a
    numeric code without a name maps like an HTTP status; anything else is ``stream_error``.

    Args:
        error_type: ``error.type`` (Anthropic, OpenAI), ``error.status`` (Gemini), the
            ``:exception-type`` of a Bedrock frame.
        code: ``error.code``.
        message: the provider's message (used only to recognise a model still loading).
    """
    for value in (error_type, code):
        if isinstance(value, str) and value.strip().lower() in PROVIDER_ERROR_KINDS:
            kind = PROVIDER_ERROR_KINDS[value.strip().lower()]
            if kind is ErrorKind.OVERLOADED and _LOADING_MESSAGE.search(message):
                return ErrorKind.MODEL_LOADING
            return kind
    number = code if isinstance(code, int) else None
    if isinstance(code, str) and code.strip().isdigit():
        number = int(code.strip())
    if number is not None and 400 <= number < 600:
        kind = classify_http_status(number, error_type)
        if kind is ErrorKind.OVERLOADED and _LOADING_MESSAGE.search(message):
            return ErrorKind.MODEL_LOADING
        return kind
    return ErrorKind.STREAM_ERROR

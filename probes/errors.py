"""The closed set of failure classes a probe can end in, and secret redaction for messages.

Every failed probe is one row whose ``error_kind`` is one of :class:`ErrorKind`; nothing a
provider or the network does may escape as an exception (see ``runner.run_probe``).
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
    TOO_LARGE = "too_large"
    NOT_CONFIGURED = "not_configured"
    INTERNAL = "internal"


ERROR_KIND_DOCS: dict[ErrorKind, str] = {
    ErrorKind.DNS: "the provider's host name did not resolve",
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
    ErrorKind.PROBE_CONFIG: "HTTP 400/422 caused by the probe's own request, not downtime",
    ErrorKind.RATE_LIMITED: "HTTP 429; retry_after_s keeps the server's Retry-After",
    ErrorKind.OVERLOADED: "HTTP 529 or 503, or an overloaded_error: transient capacity shortage",
    ErrorKind.SERVER_ERROR: "HTTP 5xx other than 503/529",
    ErrorKind.HTTP_ERROR: "another non-2xx HTTP status",
    ErrorKind.STREAM_ERROR: "an error object arrived inside a 200 stream",
    ErrorKind.TRUNCATED: "the stream ended without the API's terminal marker",
    ErrorKind.EMPTY_RESPONSE: "the stream completed but carried no generated token",
    ErrorKind.BAD_FORMAT: "the body was not the expected format (HTML, JSON, NDJSON, bad JSON)",
    ErrorKind.TOO_LARGE: (
        "the response passed max_response_bytes or max_stream_events (a runaway or hostile "
        "stream); the probe stopped reading and closed the connection"
    ),
    ErrorKind.NOT_CONFIGURED: "the target's API key variable is unset; the target is not probed",
    ErrorKind.INTERNAL: "a bug in inferwatch while measuring; the message says where",
}

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


def classify_http_status(status: int, error_type: str | None = None) -> ErrorKind:
    """Map a non-2xx HTTP status (and the provider's error type, if any) to an :class:`ErrorKind`.

    Args:
        status: the HTTP status code.
        error_type: the provider's machine-readable error type (``error.type`` / ``error.status``),
            used to tell an overload from a plain 5xx.
    """
    if error_type and "overloaded" in error_type.lower():
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

"""The closed set of failure classes a probe can end in, and secret redaction for messages.

Every failed probe is one row whose ``error_kind`` is one of :class:`ErrorKind`; nothing a
provider or the network does may escape as an exception (see ``runner.run_probe``).
"""

from __future__ import annotations

import re
from enum import StrEnum


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
    ErrorKind.NOT_CONFIGURED: "the target's API key variable is unset; the target is not probed",
    ErrorKind.INTERNAL: "a bug in inferwatch while measuring; the message says where",
}

_MAX_MESSAGE_CHARS = 300

# Shapes of credentials that providers echo back in error bodies or that end up in URLs.
# Group "keep" is the harmless prefix left in place so the message still says what was there.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(?P<keep>bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?P<keep>)\b(?:sk|pk|rk|gsk|csk|fw|xai|sk-ant|sk-or)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?P<keep>)\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(?P<keep>[?&](?:key|api[_-]?key|token)=)[^&\s\"']+"),
]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` shortened to 300 characters with credentials replaced by ``***``.

    Args:
        text: a provider error body, exception text or URL.
        secrets: exact secret values (the target's API key) to remove wherever they appear,
            even when they do not look like a known key format.

    Returns:
        The cleaned text, at most 300 characters (newlines are kept; the CSV writer quotes them).
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + "***", text)
    text = text.strip()
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text


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

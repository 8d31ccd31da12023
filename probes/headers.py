"""Response headers a monitor reads: request ids, Retry-After and rate-limit headroom.

Sources: each provider's rate-limit documentation (OpenAI/Groq ``x-ratelimit-*`` with Go-style
durations, Anthropic ``anthropic-ratelimit-*`` with RFC 3339 resets, Cerebras/Mistral windowed
names) and RFC 9110 §10.2.3 for ``Retry-After`` (delay-seconds or an HTTP-date).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from probes.timestamps import parse_http_date, parse_iso_utc

#: Retry-After values above this are treated as this (a bad header must not park a target).
RETRY_AFTER_CAP_S = 3600.0
#: Largest count or duration a header may carry; above it (``inf``, ``1e30``) the value is
#: out of range: null, and named in the record's ``out_of_range_fields``. 10**15 is far above
#: any real rate limit and exact in a float, a JSON number and an SQLite integer.
MAX_HEADER_NUMBER = 1e15

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id", "x-generation-id")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def request_id(headers: Mapping[str, str]) -> str | None:
    """Return the provider's request id header value, if any (raw: the runner redacts and
    caps it with every other server-provided string)."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def parse_duration_s(value: str) -> float | None:
    """Parse a Go-style duration (``1s``, ``6m0s``, ``12ms``, ``1h2m``) or plain seconds."""
    value = value.strip()
    try:
        return max(float(value), 0.0)  # may be inf or nan: the caller checks the range
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _parse_reset_s(value: str, now: datetime) -> float | None:
    seconds = parse_duration_s(value)
    if seconds is not None:
        return seconds
    try:  # Anthropic: RFC 3339 timestamp
        when = parse_iso_utc(value)
    except (ValueError, OverflowError):
        return None
    return max((when - now).total_seconds(), 0.0)


def response_date(headers: Mapping[str, str]) -> datetime | None:
    """The response's ``Date`` header (RFC 9110 §6.6.1) as a UTC datetime; None when absent or
    unparseable. Absolute times the provider sends (reset timestamps, a ``Retry-After`` date)
    are counted from it, on the provider's clock, not from ours."""
    value = headers.get("date")
    if not value:
        return None
    try:
        return parse_http_date(value.strip())
    except (ValueError, IndexError, OverflowError):
        return None


def parse_retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Return the server's requested wait in seconds, capped at :data:`RETRY_AFTER_CAP_S`.

    Reads ``retry-after-ms`` (OpenAI), then ``retry-after`` as delay-seconds or an HTTP-date
    (docs/field-cases.md FC-08 C: ``Wed, 21 Oct 2026 07:28:20 GMT`` sent at 07:28:00 gives 20.0).
    Never raises: ``nan`` is ignored, ``inf`` and dates out of range are capped.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            seconds = float(ms) / 1000.0
            if not math.isnan(seconds):
                return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return None if math.isnan(seconds) else min(max(seconds, 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        pass
    try:
        when = parse_http_date(value)
    except (ValueError, OverflowError, IndexError):
        return None
    return min(max((when - now).total_seconds(), 0.0), RETRY_AFTER_CAP_S)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Rate-limit headroom, normalised across providers. ``None`` when not sent.

    Attributes:
        out_of_range: names of the fields (``remaining_requests``, ...) whose header was a
            number too large or not finite (``inf``, ``1e30``, ``nan``); those are None.
    """

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    out_of_range: tuple[str, ...] = ()


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None and value != "":
            return value
    return None


class _OutOfRange(ValueError):
    """A header number that is not finite or above :data:`MAX_HEADER_NUMBER`."""


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or abs(number) > MAX_HEADER_NUMBER:
        raise _OutOfRange(value)
    return max(int(number), 0)


def _reset(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    seconds = _parse_reset_s(value, now)
    if seconds is not None and not (0 <= seconds <= MAX_HEADER_NUMBER):
        raise _OutOfRange(value)
    return seconds


def parse_ratelimit(headers: Mapping[str, str], now: datetime) -> RateLimit:
    """Read rate-limit headroom from whichever header family the provider sends.

    Args:
        headers: the response headers.
        now: the time absolute resets are counted from: the response's ``Date`` header
            (:func:`response_date`) when it has one, else the probe's start.

    Never raises: a value that is not a number is None; one that is a number out of range
    (``inf``, ``1e30``, ``nan``, a year-9999 reset) is None and named in
    :attr:`RateLimit.out_of_range`.
    """
    req = (
        "x-ratelimit-remaining-requests",
        "anthropic-ratelimit-requests-remaining",
        "x-ratelimit-remaining-requests-minute",
        "x-ratelimit-remaining-req-minute",
        "x-ratelimit-remaining-requests-day",
    )
    tok = (
        "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-tokens-remaining",
        "x-ratelimit-remaining-tokens-minute",
    )
    reset_req = (
        "x-ratelimit-reset-requests",
        "anthropic-ratelimit-requests-reset",
        "x-ratelimit-reset-requests-minute",
        "x-ratelimit-reset-requests-day",
    )
    reset_tok = (
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-tokens-reset",
        "x-ratelimit-reset-tokens-minute",
    )
    values: dict[str, int | float | None] = {}
    flagged: list[str] = []
    for name, names, read in (
        ("remaining_requests", req, _int),
        ("remaining_tokens", tok, _int),
        ("reset_requests_s", reset_req, lambda v: _reset(v, now)),
        ("reset_tokens_s", reset_tok, lambda v: _reset(v, now)),
    ):
        try:
            values[name] = read(_first(headers, names))
        except (_OutOfRange, OverflowError):
            values[name] = None
            flagged.append(name)
    return RateLimit(
        remaining_requests=_as_int(values["remaining_requests"]),
        remaining_tokens=_as_int(values["remaining_tokens"]),
        reset_requests_s=values["reset_requests_s"],
        reset_tokens_s=values["reset_tokens_s"],
        out_of_range=tuple(flagged),
    )


def _as_int(value: int | float | None) -> int | None:
    return None if value is None else int(value)

"""Every timestamp inferwatch writes or reads: the one format, its parsing and its slices.

The stored format is UTC ISO 8601 with milliseconds and ``Z``: ``2026-11-30T12:03:04.567Z``.
It is fixed-width (:data:`STAMP_LEN` characters), so text order is time order (SQLite compares
and indexes the strings directly) and the minute, hour and day of a stamp are its prefixes
(:func:`bucket_start` slices instead of parsing, which the rollup writer does for every probe).
The probe record's ``started_at``, every table's timestamps, the CSV/JSON exports and the
dashboard's "since" texts all come from here; nothing else formats or parses one.

Wall-clock time is only ever a time of record: durations come from ``time.perf_counter``.
This module lives in ``probes/`` because the probe runner stamps records; ``store/`` and
``tui/`` import it from here (``probes`` may not import them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

#: Length of a stored stamp, ``YYYY-MM-DDTHH:MM:SS.mmmZ``.
STAMP_LEN = 24

#: A rollup bucket size: the prefix of a stamp that is kept and the suffix that completes it.
Unit = Literal["minute", "hour", "day"]
_BUCKET_PARTS: dict[Unit, tuple[int, str]] = {
    "minute": (16, ":00.000Z"),
    "hour": (13, ":00:00.000Z"),
    "day": (10, "T00:00:00.000Z"),
}


def iso(when: datetime) -> str:
    """Format an aware datetime in the stored format (converted to UTC, ms truncated)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """The wall clock, UTC (a time of record; never subtracted for a duration)."""
    return datetime.now(UTC)


def now_iso() -> str:
    """The current time in the stored format."""
    return iso(utc_now())


def parse_iso(text: str) -> datetime:
    """Parse a stored stamp (or any ISO 8601 date-time with ``Z`` or an offset).

    Raises:
        ValueError: when ``text`` is not ISO 8601.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_iso_utc(text: str) -> datetime:
    """Parse an ISO 8601 date or date-time (a user's ``--since``, a provider's RFC 3339 reset
    time); without a zone it is UTC.

    Raises:
        ValueError: when ``text`` is not ISO 8601.
    """
    when = parse_iso(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_http_date(text: str) -> datetime:
    """Parse an HTTP date (RFC 9110 §5.6.7, e.g. a ``Retry-After`` or ``Date`` header:
    ``Wed, 21 Oct 2026 07:28:20 GMT``) to an aware UTC datetime.

    Raises:
        ValueError: when ``text`` is not an HTTP date.
    """
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an HTTP date: {text!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def bucket_start(stamp: str, unit: Unit) -> str:
    """The start of the minute, hour or day a stored stamp falls in, in the stored format."""
    keep, suffix = _BUCKET_PARTS[unit]
    return stamp[:keep] + suffix


def floor_time(when: datetime, seconds: int) -> datetime:
    """``when`` rounded down to a multiple of ``seconds`` since the epoch (UTC)."""
    return datetime.fromtimestamp(when.timestamp() // seconds * seconds, UTC)


def ceil_time(when: datetime, seconds: int) -> datetime:
    """``when`` rounded up to a multiple of ``seconds`` since the epoch (UTC)."""
    return datetime.fromtimestamp(-(-when.timestamp() // seconds) * seconds, UTC)


def minute_text(stamp: str | None) -> str:
    """A stored stamp to the minute for reasons and messages (``2026-11-30 12:03Z``); ``?``
    when unknown."""
    return f"{stamp[:16].replace('T', ' ')}Z" if stamp else "?"


def day_of(stamp: str) -> str:
    """The UTC date of a stored stamp (``2026-11-30``)."""
    return stamp[:10]


def clock_text(stamp: str, with_date: bool = False) -> str:
    """A stored stamp as a clock time (``14:03:12Z``), or with the date (``11-29 14:03Z``)."""
    if with_date:
        return f"{stamp[5:10]} {stamp[11:16]}Z"
    return f"{stamp[11:19]}Z"


def file_stamp(when: datetime) -> str:
    """A compact UTC stamp for file names (``20261130T120304Z``)."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

"""The one timestamp format (probes/timestamps.py): hand-written stamps, no round trip through
the code under test for the expected values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from probes.timestamps import (
    STAMP_LEN,
    bucket_start,
    clock_text,
    iso,
    minute_text,
    parse_http_date,
    parse_iso,
    parse_iso_utc,
)


def test_iso_is_utc_with_milliseconds_truncated_and_z() -> None:
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2026, 11, 30, 14, 3, 4, 567_999, tzinfo=plus2)
    assert iso(when) == "2026-11-30T12:03:04.567Z"
    assert len(iso(when)) == STAMP_LEN


def test_parse_iso_reads_the_stored_format_and_offsets() -> None:
    assert parse_iso("2026-11-30T12:03:04.567Z") == datetime(
        2026, 11, 30, 12, 3, 4, 567_000, tzinfo=UTC
    )
    assert parse_iso("2026-11-30T14:03:04+02:00") == datetime(2026, 11, 30, 12, 3, 4, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso("last tuesday")


def test_user_times_without_a_zone_are_utc() -> None:
    assert parse_iso_utc(" 2026-11-30 ") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_iso_utc("2026-11-30T12:00:00Z") == datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_bucket_starts_and_display_slices() -> None:
    stamp = "2026-11-30T12:03:04.567Z"
    assert bucket_start(stamp, "minute") == "2026-11-30T12:03:00.000Z"
    assert bucket_start(stamp, "hour") == "2026-11-30T12:00:00.000Z"
    assert bucket_start(stamp, "day") == "2026-11-30T00:00:00.000Z"
    assert minute_text(stamp) == "2026-11-30 12:03Z" and minute_text(None) == "?"
    assert clock_text(stamp) == "12:03:04Z"
    assert clock_text(stamp, with_date=True) == "11-30 12:03Z"


def test_http_dates_parse_to_utc() -> None:
    assert parse_http_date("Wed, 21 Oct 2026 07:28:20 GMT") == datetime(
        2026, 10, 21, 7, 28, 20, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        parse_http_date("in twenty seconds")

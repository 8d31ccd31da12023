"""Rate-limit headers: absolute resets count from the response's Date header, unparseable ones
are null (issue 9). Sources: Anthropic's RFC 3339 ``anthropic-ratelimit-*-reset``, OpenAI's
Go-style durations, RFC 9110 ``Date`` and ``Retry-After``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from probes.headers import parse_ratelimit, parse_retry_after, response_date

OURS = datetime(2026, 10, 21, 12, 0, 0, tzinfo=UTC)  # the probe's own wall clock


def test_absolute_reset_counts_from_the_date_header() -> None:
    headers = {
        "date": "Wed, 21 Oct 2026 12:00:04 GMT",  # the provider's clock: 4 s ahead of ours
        "anthropic-ratelimit-requests-reset": "2026-10-21T12:00:30Z",
        "anthropic-ratelimit-tokens-reset": "2026-10-21T12:00:10Z",
    }
    now = response_date(headers) or OURS
    limits = parse_ratelimit(headers, now)
    assert limits.reset_requests_s == 26.0  # naive (our clock): 30.0
    assert limits.reset_tokens_s == 6.0  # naive: 10.0


def test_relative_resets_do_not_need_a_date() -> None:
    headers = {"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "120ms"}
    limits = parse_ratelimit(headers, response_date(headers) or OURS)
    assert (limits.reset_requests_s, limits.reset_tokens_s) == (360.0, 0.12)


@pytest.mark.parametrize("value", ["soon", "2026-13-45T99:00:00Z", "1e400", "", "12:00"])
def test_unparseable_reset_is_null(value: str) -> None:
    limits = parse_ratelimit({"anthropic-ratelimit-requests-reset": value}, OURS)
    assert limits.reset_requests_s is None


@pytest.mark.parametrize("value", [None, "yesterday", "Wed, 99 Foo 2026 12:00:00 GMT"])
def test_missing_or_bad_date_header_is_none(value: str | None) -> None:
    assert response_date({} if value is None else {"date": value}) is None


def test_retry_after_date_counts_from_the_date_header() -> None:
    headers = {
        "date": "Wed, 21 Oct 2026 07:28:05 GMT",
        "retry-after": "Wed, 21 Oct 2026 07:28:20 GMT",
    }
    assert parse_retry_after(headers, response_date(headers) or OURS) == 15.0

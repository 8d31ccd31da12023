"""Helpers shared by the dialect tests: run one probe against the replay server, clocks.

Timing checks compare a probe's stamps with what really happened, on the machine's shared
monotonic clock (``CLOCK_MONOTONIC``, the same in every process on Linux): the probe's clock is
wrapped so the test knows the moment the probe took ``t0``, and the replay server (its own
process) records the moment it handed each scripted read to the socket. A read scheduled at
800 ms is expected at ``write − t0``, whenever the loaded server really managed to send it. A
correct stamp is then never early (the probe reads after the server wrote) and late only by the
probe's own wake-up after the bytes arrived (about 0.5 ms here): :data:`LATE_MS`. That fails
every naive formula the metric definitions warn about (a clock started 10 ms off, a stamp taken
after parsing, the wrong read), where a tolerance that had to absorb the server's own lateness
on a loaded machine (50 ms before) did not.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from probes.record import ProbeRecord
from probes.runner import run_probe
from probes.transport import make_client
from tests.conftest import make_target
from tests.servers import ReplayServer, Script, Timeline

#: A stamp may be this late: the probe's wake-up after the server wrote (sub-millisecond on an
#: idle machine, a few ms when other work holds both cores).
LATE_MS = 5.0
#: ... and never early beyond clock noise.
EARLY_MS = 0.5
KEY = "sk-test-SECRET-0123456789abcdef"
KEY_ENV = "IW_DIALECT_TEST_KEY"

#: The server's timeline of the last request :func:`probe` made (what :func:`near` reads).
_last: dict[str, Any] = {}


def observed_ms(scheduled_ms: float, timeline: Timeline | None = None) -> float:
    """When the scripted read (or the headers) scheduled at ``scheduled_ms`` really went out,
    in ms after the request arrived, from the last probed case's server timeline.

    Raises:
        AssertionError: when nothing was scheduled at that time (a typo in a test).
    """
    timeline = timeline or _last["timeline"]
    t0 = _last["t0"]
    for scheduled, written in zip(timeline.scheduled, timeline.writes, strict=False):
        if abs(scheduled * 1000.0 - scheduled_ms) < 0.01:
            return (written - t0) * 1000.0
    if timeline.headers_sent is not None and abs(_last["headers_at_ms"] - scheduled_ms) < 0.01:
        return (timeline.headers_sent - t0) * 1000.0
    raise AssertionError(f"no read was scheduled at {scheduled_ms} ms: {timeline.scheduled}")


def near(value: float | None, scheduled_ms: float, tol: float = LATE_MS) -> bool:
    """True when ``value`` (ms) is within ``-EARLY_MS … +tol`` of when the server really sent
    the read (or headers) scheduled at ``scheduled_ms`` in the last probed case."""
    if value is None:
        return False
    expected = observed_ms(scheduled_ms)
    return expected - EARLY_MS <= value <= expected + tol


def near_schedule(value: float | None, scheduled_ms: float) -> bool:
    """For servers that record no timeline (an in-thread fake): ``value`` against the schedule,
    10 ms early to 50 ms late. Too loose to catch a 10 ms shift; the replay server's
    :func:`near` is the precise check."""
    return value is not None and scheduled_ms - 10.0 <= value <= scheduled_ms + 50.0


def gap_near(value: float | None, from_ms: float, to_ms: float) -> bool:
    """True when ``value`` (ms) is the real gap between two scheduled reads, each end noisy by
    ``-EARLY_MS … +LATE_MS`` (inter-token latencies)."""
    if value is None:
        return False
    expected = observed_ms(to_ms) - observed_ms(from_ms)
    return abs(value - expected) <= LATE_MS + EARLY_MS


def gaps_near(p50: float | None, largest: float | None, *token_reads_ms: float) -> bool:
    """True when ``p50`` and ``largest`` are the median and the largest real gap between the
    token-bearing reads scheduled at ``token_reads_ms`` (``itl_p50_ms``, ``itl_max_ms``)."""
    if p50 is None or largest is None:
        return False
    times = [observed_ms(t) for t in token_reads_ms]
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    mid = len(gaps) // 2
    median = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    tol = LATE_MS + EARLY_MS
    return abs(p50 - median) <= tol and abs(largest - gaps[-1]) <= tol


def decode_tps_near(
    value: float | None, tokens: int, first_ms: float, last_ms: float, *, minus_one: bool = True
) -> bool:
    """True when ``value`` is ``(tokens − 1) / window``, the window running from the read
    scheduled at ``first_ms`` to the one at ``last_ms`` as the server really sent them.

    The tolerance is what the stamps' own noise does to the window. With ``minus_one`` the
    helper also checks that the tolerance excludes ``tokens / window`` (the formula without
    the "− 1"): a test that cannot tell them apart is a test that cannot fail.
    """
    if value is None:
        return False
    window_ms = observed_ms(last_ms) - observed_ms(first_ms)
    expected = (tokens - 1) / window_ms * 1000.0
    worst = (tokens - 1) / max(window_ms - LATE_MS - EARLY_MS, 1e-3) * 1000.0
    tol = worst - expected
    if minus_one:
        naive = tokens / window_ms * 1000.0
        assert naive - expected > tol, "this window cannot tell (n - 1) from n: make it longer"
    return abs(value - expected) <= tol


def e2e_tps_near(value: float | None, tokens: int, end_ms: float) -> bool:
    """True when ``value`` is ``tokens / total`` with ``total`` the real time from the request
    to the read scheduled at ``end_ms`` (the terminal marker)."""
    if value is None:
        return False
    end = observed_ms(end_ms)
    lowest = tokens / (end + LATE_MS) * 1000.0
    return lowest <= value <= tokens / max(end - EARLY_MS, 1e-3) * 1000.0


async def probe(
    replay: ReplayServer,
    case: str,
    script: Script,
    *,
    monkeypatch: pytest.MonkeyPatch | None = None,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], datetime] | None = None,
    **target: Any,
) -> ProbeRecord:
    """Register ``script`` as ``case``, probe it once with a fresh client and return the record.

    ``target`` holds ``provider``, ``model``, target keys and settings for ``make_target``;
    with ``monkeypatch`` the target's key variable is set to :data:`KEY`. The server's
    timeline of the request is kept for :func:`near`.
    """
    if monkeypatch is not None:
        monkeypatch.setenv(KEY_ENV, KEY)
        target.setdefault("api_key_env", KEY_ENV)
    resolved = make_target(replay.add(case, script), **target)
    inner = clock or time.perf_counter
    readings: list[float] = []  # the shared monotonic clock at each of the probe's readings

    def recording_clock() -> float:
        readings.append(time.perf_counter())
        return inner()

    kwargs: dict[str, Any] = {"clock": recording_clock}
    if wall_clock is not None:
        kwargs["wall_clock"] = wall_clock
    async with make_client() as client:
        record = await run_probe(resolved, client, **kwargs)
    timelines = replay.timelines(case)
    if timelines:
        timeline = timelines[-1]
        # t0 is the probe's last clock reading before the request reached the server (the
        # first one, or the restart after a stale pooled connection).
        before = [t for t in readings if t <= timeline.arrived]
        assert before, "the probe took no clock reading before its request arrived"
        _last.update(
            timeline=timeline,
            t0=before[-1],
            headers_at_ms=script.headers_at * script.scale * 1000.0,
        )
    return record


def last_request(replay: ReplayServer, case: str) -> dict[str, Any]:
    """The last request the replay server received for ``case``."""
    return replay.requests[case][-1]


NOON = datetime(2026, 10, 21, 12, 0, 0, tzinfo=UTC)


def stepped_clocks(step_s: float) -> tuple[Callable[[], float], Callable[[], datetime]]:
    """docs/field-cases.md FC-10 clocks: a monotonic clock reading 100.000 at the first call, and a wall clock
    reading 12:00:00.000Z until monotonic 100.300, then stepped by ``step_s`` (an NTP step)."""
    base: list[float] = []

    def mono() -> float:
        now = time.perf_counter()
        if not base:
            base.append(now)
        return 100.0 + (now - base[0])

    def wall() -> datetime:
        m = mono() if base else 100.0
        when = NOON + timedelta(seconds=m - 100.0)
        if m >= 100.3:
            when += timedelta(seconds=step_s)
        return NOON if m < 100.3 else when

    return mono, wall


def assert_fc10(record: ProbeRecord, ttft_ms: float) -> None:
    """FC-10: durations from the monotonic clock only; the wall clock read once at the start."""
    assert record.status == "ok", record.error_message
    assert near(record.ttft_ms, ttft_ms), (record.ttft_ms, observed_ms(ttft_ms))
    assert record.started_at == "2026-10-21T12:00:00.000Z"
    for name in ("ttfb_ms", "ttft_ms", "ttfat_ms", "total_ms"):
        value = getattr(record, name)
        assert value is None or 0 <= value < 5000

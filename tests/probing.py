"""Helpers shared by the dialect tests: run one probe against the replay server, clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from tests.conftest import make_target
from tests.servers import ReplayServer, Script

#: Timing tolerance. The probe's clock starts before the request is sent and the server's
#: when it arrives, so a correct stamp is never early; lateness is scheduling noise, which a
#: loaded 2-core machine pushes to tens of ms. Early by more than EARLY_MS means a wrong stamp.
TOL_MS = 50.0
EARLY_MS = 10.0
KEY = "sk-test-SECRET-0123456789abcdef"
KEY_ENV = "IW_DIALECT_TEST_KEY"


def near(value: float | None, expected_ms: float, tol: float = TOL_MS) -> bool:
    """True when ``value`` (ms) is at most ``EARLY_MS`` early and ``tol`` late."""
    return value is not None and expected_ms - EARLY_MS <= value <= expected_ms + tol


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
    with ``monkeypatch`` the target's key variable is set to :data:`KEY`.
    """
    if monkeypatch is not None:
        monkeypatch.setenv(KEY_ENV, KEY)
        target.setdefault("api_key_env", KEY_ENV)
    resolved = make_target(replay.add(case, script), **target)
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    if wall_clock is not None:
        kwargs["wall_clock"] = wall_clock
    async with make_client() as client:
        return await run_probe(resolved, client, **kwargs)


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
    assert near(record.ttft_ms, ttft_ms)
    assert record.started_at == "2026-10-21T12:00:00.000Z"
    for name in ("ttfb_ms", "ttft_ms", "ttfat_ms", "total_ms"):
        value = getattr(record, name)
        assert value is None or 0 <= value < 5000

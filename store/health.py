"""Provider state from recent probes: up, degraded, down, stale, no data, not configured, paused.

The rules, in order (issue #4 replaces them with configurable hysteresis and incidents):

* **not configured**: the target's key variable is unset, so it is never probed.
* **paused**: probing of the target is paused from the dashboard.
* **no data**: no probe in the window.
* **down**: the last ``DOWN_AFTER`` probes all failed with a provider-side error
  (rate limiting never counts as down).
* **degraded**: the last probe failed, was rate limited, or the window's error rate is at least
  ``DEGRADED_ERROR_RATE``.
* **stale**: the newest probe is older than ``STALE_INTERVALS`` × the interval (the prober is
  not running or is falling behind); the last known state is kept beside it.
* **up**: otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

DOWN_AFTER = 3
DEGRADED_ERROR_RATE = 0.2
STALE_INTERVALS = 3.0

#: Kinds that say nothing about the provider's health: our own config or the monitor itself.
NOT_PROVIDER_FAULTS = frozenset({"probe_config", "not_configured", "internal"})


class State(StrEnum):
    """Displayed state of a target."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    STALE = "stale"
    NO_DATA = "no data"
    NOT_CONFIGURED = "not configured"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state with the reason shown next to it.

    Attributes:
        state: the state.
        reason: short human text (``3 failures: server_error``), or "".
    """

    state: State
    reason: str = ""


def decide(
    recent: Sequence[tuple[str, str | None]],
    error_rate: float | None,
    age_s: float | None,
    interval_s: float,
    *,
    configured: bool = True,
    paused: bool = False,
) -> Verdict:
    """Decide a target's state.

    Args:
        recent: newest-first ``(status, error_kind)`` of the latest probes.
        error_rate: failed share over the window (0..1), None without samples.
        age_s: seconds since the newest probe started, None without probes.
        interval_s: the target's probe interval.
        configured: False when the key variable is unset.
        paused: True when probing is paused.
    """
    if not configured:
        return Verdict(State.NOT_CONFIGURED, "API key variable unset")
    if paused:
        return Verdict(State.PAUSED, "probing paused")
    if not recent:
        return Verdict(State.NO_DATA, "waiting for the first probe")
    if age_s is not None and age_s > STALE_INTERVALS * interval_s + 5:
        return Verdict(State.STALE, f"last probe {age_s:.0f}s ago")
    streak = 0
    for status, kind in recent:
        if status == "ok" or kind == "rate_limited" or kind in NOT_PROVIDER_FAULTS:
            break
        streak += 1
    last_status, last_kind = recent[0]
    if streak >= DOWN_AFTER:
        return Verdict(State.DOWN, f"{streak} failures: {last_kind}")
    if last_kind == "rate_limited":
        return Verdict(State.DEGRADED, "rate limited")
    if last_status != "ok":
        return Verdict(State.DEGRADED, f"last probe failed: {last_kind}")
    if error_rate is not None and error_rate >= DEGRADED_ERROR_RATE:
        return Verdict(State.DEGRADED, f"{error_rate:.0%} errors")
    return Verdict(State.UP, "")

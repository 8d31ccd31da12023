"""The state shown for a target: the persisted outage state, made honest about what we cannot see.

The outage state itself (up, degraded, down, no data, paused, not configured) is decided probe
by probe with hysteresis in :mod:`store.outage` and persisted by :mod:`store.history`. This
module turns it into what the dashboard shows:

* **not configured** / **paused**: from the prober's published target list.
* **stale**: the monitor is blind (prober not running, or no network on its side) or the
  target's newest probe is older than ``STALE_INTERVALS`` × its interval; the last known
  state and since when are kept in the reason, never shown as current.
* **degraded** while up but failing: the outage machine keeps a target up until
  ``down_after_failures`` failures in a row (hysteresis), and uptime counts that time as
  available either way; the display says degraded from the first failure, so a failing
  provider never shows a ✔ (README: "degraded when the last probe failed").
* otherwise the persisted state, with its cause and start time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from probes.timestamps import minute_text

STALE_INTERVALS = 3.0


class State(StrEnum):
    """Displayed state of a target (also the outage machine's states, minus ``stale``)."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    STALE = "stale"
    NO_DATA = "no data"
    NOT_CONFIGURED = "not configured"
    PAUSED = "paused"
    MAINTENANCE = "maintenance"
    """Inside a maintenance window (config ``[[maintenance]]``): probed, but no state
    change and no alert; uptime counts the time as unknown."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state with the reason shown next to it.

    Attributes:
        state: the state.
        reason: short human text (``down since 12:03Z: 3 consecutive failures (server_error)``).
        since: UTC ISO 8601 time the (last known) state began, or None.
        cause_kind: machine-readable cause (error kind, ``rate_limited``, ``ttft_slo``...).
    """

    state: State
    reason: str = ""
    since: str | None = None
    cause_kind: str | None = None


def verdict(
    persisted: State | None,
    since: str | None,
    cause_kind: str | None,
    cause_message: str,
    *,
    configured: bool = True,
    paused: bool = False,
    blind_since: str | None = None,
    blind_reason: str = "",
    last_age_s: float | None = None,
    interval_s: float = 30.0,
    fail_streak: int = 0,
    fail_start: str | None = None,
    fail_message: str = "",
) -> Verdict:
    """The displayed verdict of one target.

    Args:
        persisted: the outage state from ``target_state`` (None: never evaluated).
        since: when it began (UTC ISO 8601).
        cause_kind: its cause kind.
        cause_message: its cause text.
        configured: False when the key variable is unset.
        paused: True when probing is paused.
        blind_since: UTC ISO time the monitor went blind, or None when it can see.
        blind_reason: why it is blind (``prober not running``, ``no network``).
        last_age_s: seconds since the newest probe of the target started.
        interval_s: the target's probe interval in seconds.
        fail_streak: consecutive failures not yet enough for ``down``: an up target with a
            streak is shown degraded (cause ``failing``).
        fail_start: when the streak began (the degraded display's start).
        fail_message: the newest failure's message.
    """
    if not configured:
        return Verdict(State.NOT_CONFIGURED, "API key variable unset", cause_kind="not_configured")
    if paused:
        return Verdict(State.PAUSED, "probing paused", since if persisted is State.PAUSED else None)
    known = persisted if persisted not in (None, State.PAUSED, State.NOT_CONFIGURED) else None
    if blind_since is not None:
        last = f"; last known {known.value} since {minute_text(since)}" if known else ""
        blind = f"monitor blind since {minute_text(blind_since)} ({blind_reason})"
        return Verdict(State.STALE, blind + last, since)
    if known is None or known is State.NO_DATA:
        return Verdict(State.NO_DATA, "waiting for the first probe")
    if last_age_s is not None and last_age_s > STALE_INTERVALS * interval_s + 5:
        return Verdict(
            State.STALE,
            f"last probe {last_age_s:.0f}s ago; last known {known.value} since "
            + minute_text(since),
            since,
        )
    if known is State.UP and fail_streak:
        start = fail_start or since
        plural = "s" if fail_streak > 1 else ""
        reason = (
            f"degraded since {minute_text(start)}: {fail_streak} failure{plural} in a row, "
            "not down yet" + (f" ({fail_message})" if fail_message else "")
        )
        return Verdict(State.DEGRADED, reason, start, "failing")
    reason = f"{known.value} since {minute_text(since)}"
    if known is not State.UP and cause_message:
        reason += f": {cause_message}"
    return Verdict(known, reason, since, cause_kind)

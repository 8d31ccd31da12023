"""The state shown for a target: the persisted outage state, made honest about what we cannot see.

The outage state itself (up, degraded, down, no data, paused, not configured) is decided probe
by probe with hysteresis in :mod:`store.outage` and persisted by :mod:`store.history`. This
module turns it into what the dashboard shows:

* **not configured** / **paused**: from the prober's published target list.
* **stale**: the monitor is blind (prober not running, or no network on its side: then
  only for targets reached over the internet) or the target's newest probe is older than
  ``STALE_INTERVALS`` × its interval with no probe in flight; the last known state and
  since when are kept in the reason, never shown as current.
* **in flight**: a probe started (the prober publishes each start) and has not ended, on
  a target with no probe yet or whose newest stored probe would make it stale: "probing
  12s", not "stale" (stale means the monitor is not probing). A down target stays down.
* **degraded** while up but failing: the outage machine keeps a target up until
  ``down_after_failures`` failures in a row (hysteresis), and uptime counts that time as
  available either way; the display says degraded from the first failure, so a failing
  provider never shows a ✔ (README: "degraded when the last probe failed").
* **config error** when the newest probe failed on our side (``dns``: the host name does
  not exist; ``probe_config``: our request is wrong): never downtime, never a ✔ either.
* otherwise the persisted state, with its cause and start time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from probes.timestamps import minute_text

STALE_INTERVALS = 3.0
#: Error kinds that say our configuration is wrong (``probes.errors.SIDES``: ours), shown as
#: a config error rather than a state of the provider.
CONFIG_ERROR_KINDS = frozenset({"dns", "probe_config"})


class State(StrEnum):
    """Displayed state of a target (also the outage machine's states, minus ``stale``)."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    STALE = "stale"
    IN_FLIGHT = "in flight"
    """Display only: a probe is running and nothing newer is known ("probing 12s")."""
    CONFIG_ERROR = "config error"
    """Display only: the newest probe failed on our side (the host name does not exist, the
    provider rejected our request): not downtime, but nothing is measured either."""
    NO_DATA = "no data"
    NOT_CONFIGURED = "not configured"
    PAUSED = "paused"
    MAINTENANCE = "maintenance"
    """Inside a maintenance window (config ``[[maintenance]]``): probed, but no state
    change and no alert; uptime counts the time as unknown."""


#: Word plus symbol for each state, so meaning never depends on colour (NO_COLOR, tmux): the
#: one wording of a state, on the dashboard, in ``inferwatch status`` and in status lines.
STATE_LABELS: dict[State, str] = {
    State.UP: "✔ up",
    State.DEGRADED: "▲ degraded",
    State.DOWN: "✖ down",
    State.STALE: "? stale",
    State.IN_FLIGHT: "⧗ probing",
    State.CONFIG_ERROR: "⚙ config error",
    State.NO_DATA: "… no data",
    State.NOT_CONFIGURED: "○ not configured",
    State.PAUSED: "‖ paused",
    State.MAINTENANCE: "◇ maintenance",
}


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
    network_path: str = "internet",
    in_flight_s: float | None = None,
    in_flight_since: str | None = None,
    last_error_kind: str | None = None,
    last_error_message: str | None = None,
    api_key_env: str | None = None,
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
        network_path: ``loopback``/``private``/``internet``: a monitor blind for lack of
            network does not make a local target stale (its path still works).
        in_flight_s: seconds the target's current probe has been running (it started after
            the newest stored probe), or None when none is in flight.
        in_flight_since: UTC ISO 8601 start of that probe.
        last_error_kind: the newest probe's error kind (None when it succeeded).
        last_error_message: its message.
        api_key_env: the name of the key variable, named when it is unset.
    """
    if not configured:
        reason = (
            f"set {api_key_env} and restart the prober (the variable is unset)"
            if api_key_env
            else "API key variable unset"
        )
        return Verdict(State.NOT_CONFIGURED, reason, cause_kind="not_configured")
    if paused:
        return Verdict(State.PAUSED, "probing paused", since if persisted is State.PAUSED else None)
    known = persisted if persisted not in (None, State.PAUSED, State.NOT_CONFIGURED) else None
    local_path = network_path != "internet" and blind_reason.startswith("no network")
    if blind_since is not None and not local_path:
        last = f"; last known {known.value} since {minute_text(since)}" if known else ""
        blind = f"monitor blind since {minute_text(blind_since)} ({blind_reason})"
        return Verdict(State.STALE, blind + last, since)
    probing = f"probing {in_flight_s:.0f}s" if in_flight_s is not None else ""
    if last_error_kind in CONFIG_ERROR_KINDS and not probing:
        last = f"; last known {known.value} since {minute_text(since)}" if known else ""
        if known is State.NO_DATA:
            last = ""
        text = last_error_message or last_error_kind or ""
        return Verdict(State.CONFIG_ERROR, f"config error: {text}{last}", since, last_error_kind)
    if known is None or known is State.NO_DATA:
        if probing:
            return Verdict(State.IN_FLIGHT, f"{probing}: first probe in flight", in_flight_since)
        return Verdict(State.NO_DATA, "waiting for the first probe")
    if last_age_s is not None and last_age_s > STALE_INTERVALS * interval_s + 5:
        if probing and known is not State.DOWN:
            return Verdict(
                State.IN_FLIGHT,
                f"{probing}; last known {known.value} since {minute_text(since)}",
                in_flight_since,
            )
        if probing:
            reason = f"down since {minute_text(since)}: {cause_message}; {probing}"
            return Verdict(State.DOWN, reason, since, cause_kind)
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

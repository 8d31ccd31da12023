"""Alert decisions and flood control: outage state changes in, notices out. Pure, no clock.

An *alert* is one thing that can be wrong: a target (``target:NAME``), a group of targets
(``group:NAME``: one alert for a primary and its fallbacks), the monitor itself
(``monitor:blind``) or a maintenance window (``maintenance:NAME``, informational). Each alert
is firing or not, with a severity; a *notice* is sent only when that changes (fires,
escalates or de-escalates, resolves) or, optionally, as a reminder while it keeps firing.
The thresholds are the outage rules themselves (:mod:`store.outage`: down after N failures,
up after M successes), so a flapping probe that never crosses them sends nothing.

What the alert of a target follows (docs/alerts.md):

* ``down`` fires (critical); ``degraded`` fires (warning) only when ``[alerts] degraded``;
  ``up`` resolves. Degraded without the option also resolves a down alert: the provider
  answers again.
* No data, paused, not configured, maintenance, and the first failures of a fresh target
  (degraded, not down yet, nothing known before) say nothing: the alert keeps its state. So a
  restart, a pause or a maintenance window never resolves a real outage and never re-fires
  one; the resolve comes when the probes show the target up (also when it recovered while
  the prober was stopped: TwiN/gatus#1111).
* A group fires critical when every watched member is down, warning when some are.

The persisted side (tables ``alerts`` and ``notifications``) is :mod:`store.notifications`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from probes.config import ChannelConfig, Config, RouteConfig, patterns_match
from probes.timestamps import iso, parse_iso
from store.health import State
from store.maintenance_windows import ActiveWindow
from store.outage import BlindEnded, BlindStarted, Counted, Event, Transition

#: Causes of a degraded state that are evidence about the provider (it answered).
CONFIRMED_DEGRADED = frozenset({"rate_limited", "error_rate", "ttft_slo", "recovering"})
BLIND_KEY = "monitor:blind"


class Severity(StrEnum):
    """How bad an alert is (Alertmanager's ``severity`` label)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Level(Enum):
    """What a target's outage state says for alerting."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


def level_of(state: State, cause_kind: str | None) -> Level:
    """The alerting level of an outage state.

    A degraded state reached from "no data" by failures alone (``cause_kind`` an error kind)
    is not known yet: it either becomes down after N failures or up after M successes.
    """
    if state is State.DOWN:
        return Level.DOWN
    if state is State.UP:
        return Level.UP
    if state is State.DEGRADED:
        return Level.DEGRADED if cause_kind in CONFIRMED_DEGRADED else Level.UNKNOWN
    return Level.UNKNOWN


@dataclass(frozen=True, slots=True)
class TargetView:
    """The outage state of one target as alerting needs it.

    Attributes:
        state: the outage state.
        cause_kind: its cause kind.
        since: UTC ISO 8601 time it began.
        message: its cause text (redacted by the prober).
    """

    state: State
    cause_kind: str | None = None
    since: str | None = None
    message: str = ""


@dataclass(slots=True)
class AlertState:
    """One alert's persisted state (a row of ``alerts``).

    Attributes:
        key: ``target:NAME``, ``group:NAME``, ``monitor:blind`` or ``maintenance:NAME``.
        firing: whether it fires now.
        kind: ``down``, ``degraded``, ``blind`` or ``maintenance`` (routes filter on it).
        severity: when firing; the last one when resolved.
        target: the target, for a target alert.
        group: the group, for a group alert or a grouped target.
        state: the state in words (``down``, ``primary down, fallback up``).
        summary: one human line.
        started_at: UTC ISO 8601 time the current (or last) firing began.
        ended_at: when it resolved, None while firing.
        last_notified_at: when the last notice about it was queued (reminders count from it).
        channels: where its notices go (Alertmanager re-sends use it).
    """

    key: str
    firing: bool
    kind: str
    severity: Severity
    target: str | None = None
    group: str | None = None
    state: str = ""
    summary: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    last_notified_at: str | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to send (to each of ``channels``).

    Attributes:
        key: the alert's key.
        event: ``firing`` (new, or its severity changed), ``resolved``, ``reminder`` or
            ``test``.
        kind: the alert's kind.
        severity: its severity (the last one for ``resolved``).
        previous_severity: the severity before, when ``firing`` changed it.
        target: target name, for target alerts.
        group: group name, for group alerts.
        state: the state in words.
        summary: one human line, secrets never included.
        cause_kind: machine-readable cause (error kind, ``recovered``...).
        started_at: UTC ISO 8601 start of the firing.
        at: UTC ISO 8601 time the notice was decided.
        ended_at: UTC ISO 8601 time it resolved (``resolved`` only).
        members: for a group: each member and its state, in config order.
        channels: channel names to deliver to.
        vantage: the prober's vantage.
    """

    key: str
    event: str
    kind: str
    severity: Severity
    target: str | None
    group: str | None
    state: str
    summary: str
    cause_kind: str | None
    started_at: str
    at: str
    ended_at: str | None = None
    previous_severity: Severity | None = None
    members: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ()
    vantage: str = ""

    def payload(self) -> dict[str, Any]:
        """The documented JSON body of the generic webhook (docs/alerts.md), without ``id``."""
        return {
            "version": 1,
            "event": self.event,
            "alert": self.key,
            "kind": self.kind,
            "status": "resolved" if self.event == "resolved" else "firing",
            "severity": self.severity.value,
            "previous_severity": self.previous_severity.value if self.previous_severity else None,
            "target": self.target,
            "group": self.group,
            "state": self.state,
            "summary": self.summary,
            "cause_kind": self.cause_kind,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "at": self.at,
            "members": [{"target": n, "state": s} for n, s in self.members],
            "vantage": self.vantage,
        }


@dataclass(frozen=True, slots=True)
class Router:
    """Which channels an alert goes to (``[[routes]]``) and which take resolve notices.

    Without routes every alert goes to every channel. A route with neither ``targets`` nor
    ``groups`` matches every alert (the monitor's and maintenance notices included); else it
    matches a target alert by the target's name or group, a group alert by the group's name or
    any member's name. An alert goes to the union of the channels of the routes that match.
    """

    channels: tuple[ChannelConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    send_resolved: bool = True

    def route(
        self, kind: str, target: str | None, group: str | None, members: Sequence[str] = ()
    ) -> tuple[str, ...]:
        """Channel names for an alert, in config order."""
        if not self.routes:
            return tuple(c.name for c in self.channels)
        names = [*([target] if target else []), *members]
        out: list[str] = []
        for r in self.routes:
            if r.events and kind not in r.events:
                continue
            catch_all = not r.targets and not r.groups
            hit = catch_all or any(patterns_match(r.targets, n) for n in names)
            hit = hit or (group is not None and patterns_match(r.groups, group))
            if hit:
                out += [c for c in r.channels if c not in out]
        return tuple(out)

    def takes(self, channel: str, event: str) -> bool:
        """Whether ``channel`` gets an ``event`` notice (resolve notices can be turned off)."""
        if event != "resolved":
            return True
        conf = next((c for c in self.channels if c.name == channel), None)
        if conf is not None and conf.send_resolved is not None:
            return conf.send_resolved
        return self.send_resolved


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Everything alerting needs from the config.

    Attributes:
        router: routes and channels.
        reminder_s: repeat a firing alert this often, seconds; 0 never.
        degraded: also alert on degraded.
        monitor_blind: alert when the monitor loses its network.
        maintenance_notices: notice when a maintenance window starts and ends.
        groups: group -> member names in config order (the first is the primary).
        vantage: this prober's vantage.
    """

    router: Router = field(default_factory=Router)
    reminder_s: float = 0.0
    degraded: bool = False
    monitor_blind: bool = True
    maintenance_notices: bool = True
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    vantage: str = ""

    @classmethod
    def from_config(cls, config: Config) -> AlertRules:
        """The rules a config file gives."""
        a = config.alerts
        return cls(
            Router(config.channels, config.routes, a.send_resolved),
            a.reminder_interval_s,
            a.degraded,
            a.monitor_blind,
            a.maintenance_notices,
            {g: tuple(m) for g, m in config.group_members().items()},
            config.prober.vantage_name(),
        )

    def group_of(self, target: str) -> str | None:
        """The group a target belongs to, if any."""
        return next((g for g, members in self.groups.items() if target in members), None)


def _key(rules: AlertRules, target: str) -> str:
    group = rules.group_of(target)
    return f"group:{group}" if group else f"target:{target}"


@dataclass(frozen=True, slots=True)
class _Desired:
    firing: bool
    severity: Severity
    kind: str
    state: str
    summary: str
    cause_kind: str | None
    target: str | None = None
    group: str | None = None
    members: tuple[tuple[str, str], ...] = ()


class AlertEngine:
    """Keeps every alert's state and turns changes into notices.

    Args:
        rules: the rules.
        states: each monitored target's current outage state.
        alerts: the persisted alerts (resumed after a restart).
        blind_since: UTC ISO time the monitor went blind, None when it sees.

    Attributes:
        alerts: every alert's current state; :attr:`dirty` names those changed since the
            caller last persisted them (it clears the set).
    """

    def __init__(
        self,
        rules: AlertRules,
        states: Mapping[str, TargetView],
        alerts: Mapping[str, AlertState] | None = None,
        blind_since: str | None = None,
    ) -> None:
        self.rules = rules
        self.states = dict(states)
        self.alerts: dict[str, AlertState] = dict(alerts or {})
        self.blind_since = blind_since
        self.windows: dict[str, ActiveWindow] = {}
        self.dirty: set[str] = set()
        # Targets whose newest probe since this engine started failed: reminders need one.
        self._failing: set[str] = set()

    # ---- inputs -------------------------------------------------------------------------

    def on_events(self, events: Iterable[Event], now: datetime) -> list[Notice]:
        """Apply the outage events of one stored probe (or pause/maintenance change)."""
        out: list[Notice] = []
        for e in events:
            if isinstance(e, Counted):
                (self._failing.add if e.failed else self._failing.discard)(e.target)
            elif isinstance(e, Transition):
                failed = e.to_state in (State.DOWN, State.DEGRADED)
                (self._failing.add if failed else self._failing.discard)(e.target)
            if isinstance(e, Transition):
                self.states[e.target] = TargetView(e.to_state, e.cause_kind, e.at, e.cause_message)
                if e.target in self._monitored():
                    out += self._evaluate(_key(self.rules, e.target), e.at, now)
            elif isinstance(e, BlindStarted):
                self.blind_since = e.since
                out += self._evaluate(BLIND_KEY, e.since, now)
            elif isinstance(e, BlindEnded):
                self.blind_since = None
                out += self._evaluate(BLIND_KEY, e.at, now)
        return out

    def set_windows(self, active: Sequence[ActiveWindow], now: datetime) -> list[Notice]:
        """Maintenance windows in force now: a notice when one starts and when one ends."""
        self.windows = {w.name: w for w in active}
        out: list[Notice] = []
        keys = {f"maintenance:{n}" for n in self.windows} | {
            k for k, a in self.alerts.items() if k.startswith("maintenance:") and a.firing
        }
        for key in sorted(keys):
            out += self._evaluate(key, iso(now), now)
        return out

    def tick(self, now: datetime) -> list[Notice]:
        """Reminders for alerts that keep firing (``[alerts] reminder_interval_s``)."""
        if self.rules.reminder_s <= 0:
            return []
        out = []
        for key, a in sorted(self.alerts.items()):
            if not a.firing or a.kind == "maintenance" or a.last_notified_at is None:
                continue
            desired = self._desired(key)
            if desired is None or not desired.firing:
                continue  # not known to be still failing (paused, maintenance, no data)
            names = {desired.target} if desired.target else {m for m, _ in desired.members}
            if key != BLIND_KEY and not names & self._failing:
                continue  # "still down" needs a probe that says so (not a restart, a success)
            since = parse_iso(a.last_notified_at)
            if (now - since).total_seconds() >= self.rules.reminder_s:
                a.last_notified_at = iso(now)
                self.dirty.add(key)
                out.append(self._notice(a, "reminder", desired, now))
        return out

    def reconcile(self, now: datetime) -> list[Notice]:
        """Bring every alert in line with the current states (after a restart or a config
        change): fire what should fire, resolve what should not, and resolve alerts of
        targets and groups no longer configured."""
        keys = {_key(self.rules, t) for t in self._monitored()} | {BLIND_KEY}
        keys |= {k for k, a in self.alerts.items() if a.firing}
        out: list[Notice] = []
        for key in sorted(keys):
            out += self._evaluate(key, iso(now), now)
        return out

    # ---- decisions ----------------------------------------------------------------------

    def _monitored(self) -> set[str]:
        return set(self.states)

    def _desired(self, key: str) -> _Desired | None:
        kind, _, name = key.partition(":")
        if key == BLIND_KEY:
            if not self.rules.monitor_blind:
                return _Desired(False, Severity.WARNING, "blind", "sees", "", None)
            if self.blind_since is not None:
                return _Desired(
                    True,
                    Severity.WARNING,
                    "blind",
                    "blind",
                    f"monitor at {self.rules.vantage} is blind: no host answers, so no "
                    "provider is blamed",
                    "network",
                )
            return _Desired(
                False, Severity.WARNING, "blind", "sees", "monitor sees again", "network"
            )
        if kind == "maintenance":
            w = self.windows.get(name)
            if w is None or not self.rules.maintenance_notices:
                return _Desired(
                    False, Severity.INFO, "maintenance", "ended", f"maintenance {name} ended", None
                )
            return _Desired(
                True,
                Severity.INFO,
                "maintenance",
                "in maintenance",
                f"maintenance {name} until {iso(w.end)}: {len(w.targets)} target(s) "
                f"({', '.join(w.targets[:5])}{', …' if len(w.targets) > 5 else ''}); "
                "no alert fires for them",
                None,
            )
        if kind == "group":
            return self._desired_group(name)
        view = self.states.get(name)
        if view is None or self.rules.group_of(name):
            return _Desired(False, Severity.WARNING, "down", "removed", "", "removed", name)
        level = level_of(view.state, view.cause_kind)
        if level is Level.UNKNOWN:
            return None
        cause = f": {view.message}" if view.message else ""
        if level is Level.DOWN:
            return _Desired(
                True, Severity.CRITICAL, "down", "down", f"{name} is down{cause}",
                view.cause_kind, name,
            )  # fmt: skip
        if level is Level.DEGRADED and self.rules.degraded:
            return _Desired(
                True, Severity.WARNING, "degraded", "degraded", f"{name} is degraded{cause}",
                view.cause_kind, name,
            )  # fmt: skip
        return _Desired(
            False, Severity.WARNING, "down", view.state.value,
            f"{name} is {view.state.value} again{cause if level is Level.DEGRADED else ''}",
            view.cause_kind, name,
        )  # fmt: skip

    def _desired_group(self, group: str) -> _Desired | None:
        members = self.rules.groups.get(group)
        if not members:
            return _Desired(False, Severity.WARNING, "down", "removed", "", "removed", None, group)
        levels = {
            m: level_of(v.state, v.cause_kind) if (v := self.states.get(m)) else Level.UNKNOWN
            for m in members
        }
        words = tuple(
            (m, self.states[m].state.value if m in self.states else "unknown") for m in members
        )
        known = [m for m in members if levels[m] is not Level.UNKNOWN]
        if not known:
            return None
        down = [m for m in known if levels[m] is Level.DOWN]
        bad = down + [m for m in known if self.rules.degraded and levels[m] is Level.DEGRADED]
        roles = ", ".join(
            f"{'primary' if i == 0 else 'fallback'} {m} {state}"
            for i, (m, state) in enumerate(words)
        )
        cause = next(
            (self.states[m].cause_kind for m in down or bad or known if m in self.states), None
        )
        if down and len(down) == len(known):
            state = "all down" if len(members) > 1 else "down"
            return _Desired(
                True, Severity.CRITICAL, "down", state, f"group {group}: {roles}", cause,
                None, group, words,
            )  # fmt: skip
        if bad:
            return _Desired(
                True, Severity.WARNING, "down" if down else "degraded",
                f"{'primary' if bad[0] == members[0] else 'fallback'} {levels[bad[0]].value}",
                f"group {group}: {roles}", cause, None, group, words,
            )  # fmt: skip
        return _Desired(
            False, Severity.WARNING, "down", "up", f"group {group}: {roles}", "recovered",
            None, group, words,
        )  # fmt: skip

    def _evaluate(self, key: str, at: str, now: datetime) -> list[Notice]:
        desired = self._desired(key)
        if desired is None:
            return []
        cur = self.alerts.get(key)
        firing = cur is not None and cur.firing
        if desired.firing and not firing:
            a = AlertState(
                key, True, desired.kind, desired.severity, desired.target, desired.group,
                desired.state, desired.summary, at, None, iso(now), self._route(key, desired),
            )  # fmt: skip
            self.alerts[key] = a
            self.dirty.add(key)
            return [self._notice(a, "firing", desired, now)]
        if desired.firing and cur is not None:
            changed = desired.severity is not cur.severity
            previous = cur.severity
            now_ = (desired.kind, desired.severity, desired.state, desired.summary)
            channels = self._route(key, desired)
            if now_ != (cur.kind, cur.severity, cur.state, cur.summary) or channels != cur.channels:
                cur.kind, cur.severity, cur.state, cur.summary = now_
                cur.channels = channels
                self.dirty.add(key)
            if not changed:
                return []
            cur.last_notified_at = iso(now)
            return [self._notice(cur, "firing", desired, now, previous)]
        if not desired.firing and firing and cur is not None:
            cur.firing, cur.ended_at, cur.last_notified_at = False, at, iso(now)
            cur.state, cur.summary = desired.state, desired.summary or f"{key} no longer monitored"
            self.dirty.add(key)
            return [self._notice(cur, "resolved", desired, now)]
        return []

    def _route(self, key: str, d: _Desired) -> tuple[str, ...]:
        members: Sequence[str] = [m for m, _ in d.members]
        if key.startswith("maintenance:"):
            w = self.windows.get(key.partition(":")[2])
            members = w.targets if w else ()
        return self.rules.router.route(d.kind, d.target, d.group, members)

    def _notice(
        self,
        a: AlertState,
        event: str,
        d: _Desired,
        now: datetime,
        previous: Severity | None = None,
    ) -> Notice:
        channels = tuple(c for c in a.channels if self.rules.router.takes(c, event))
        return Notice(
            a.key,
            event,
            a.kind,
            a.severity,
            a.target,
            a.group,
            a.state,
            a.summary,
            d.cause_kind,
            a.started_at or iso(now),
            iso(now),
            a.ended_at if event == "resolved" else None,
            previous,
            d.members,
            channels,
            self.rules.vantage,
        )


def trial_notice(channel: str, vantage: str, now: datetime) -> Notice:
    """The notice ``inferwatch notify --test CHANNEL`` sends."""
    return Notice(
        "test:" + channel,
        "test",
        "test",
        Severity.INFO,
        None,
        None,
        "test",
        f"test notification from inferwatch at {vantage}: this channel works",
        None,
        iso(now),
        iso(now),
        channels=(channel,),
        vantage=vantage,
    )


def with_channels(notice: Notice, channels: Sequence[str]) -> Notice:
    """A copy of ``notice`` for other channels."""
    return replace(notice, channels=tuple(channels))

"""Outage state machine: probes in, state changes out. Pure logic, no database, no clock.

Each target has a :class:`TargetMachine` (hysteresis: down after N consecutive provider-side
failures, up again after M consecutive successes; degraded on rate limiting, on an error rate
over a window of probes, or on a P95 TTFT above the target's objective). A :class:`Coordinator`
sits in front of the machines and keeps failures of the *monitor itself* out of them: a
connect-level failure (DNS, refused, connect error or timeout) is held as *pending* until
another host answers (then it was the provider) or every probed host has failed at connect
level too (then the monitor is blind: no network, and the pending failures are dropped).

The persisted side (tables, incidents, restart) is :mod:`store.history`; docs/uptime.md
describes the rules for users.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from probes.config import ProbeSettings
from probes.errors import ANSWERED_NOT_COUNTED, CONNECT_LEVEL, SIDES, Side
from store.health import State
from store.stats import percentile

#: Failures where no HTTP response arrived after the name resolved: the provider *or* our own
#: network (probes.errors.CONNECT_LEVEL).
CONNECT_KINDS = frozenset(k.value for k in CONNECT_LEVEL)
#: Kinds that say nothing about the provider's health: our config or bug, the monitor's own
#: side, and the neutral outcomes (a policy block, a model loading); probes.errors.SIDES.
NOT_PROVIDER_FAULTS = frozenset(k.value for k, side in SIDES.items() if side is not Side.PROVIDER)
#: Of those, the ones where the provider did answer (evidence that the network works).
_ANSWERED = frozenset(k.value for k in ANSWERED_NOT_COUNTED)
#: States a probe does not move (set explicitly, left explicitly).
_FROZEN = frozenset({State.PAUSED, State.NOT_CONFIGURED, State.MAINTENANCE})
#: Fewest successful probes in the SLO window before a P95 is trusted.
MIN_SLO_SAMPLES = 5


class Outcome(StrEnum):
    """What one probe says about the provider."""

    OK = "ok"
    FAILURE = "failure"
    """A provider-side failure (HTTP 5xx, timeouts after connecting, bad streams, auth...)."""
    CONNECT = "connect"
    """No response at all: the provider or our network; the coordinator decides which."""
    RATE_LIMITED = "rate_limited"
    IGNORED = "ignored"
    """Not about the provider's health (``probes.errors.SIDES``): our config or bug, the
    monitor's own resolver, or a neutral outcome (a policy block, a model still loading):
    neither success nor failure."""


def classify(status: str, error_kind: str | None) -> Outcome:
    """Classify a probe by its ``status`` (``ok``/``error``) and ``error_kind``, following the
    side each kind is on (``probes.errors.SIDES``, docs/uptime.md)."""
    if status == "ok":
        return Outcome.OK
    if error_kind in NOT_PROVIDER_FAULTS:
        return Outcome.IGNORED
    if error_kind == "rate_limited":
        return Outcome.RATE_LIMITED
    if error_kind in CONNECT_KINDS:
        return Outcome.CONNECT
    return Outcome.FAILURE


#: The config's defaults (``[defaults]`` unset): the one place the rules' defaults are written.
_CONFIG_DEFAULTS = ProbeSettings()


@dataclass(frozen=True, slots=True)
class OutageRules:
    """Per-target rules, read from the config (``probes.config.ProbeSettings``, whose fields
    of the same names define them and their defaults; :meth:`from_settings`).

    Attributes:
        down_after_failures: consecutive provider-side failures that make a target down.
        up_after_successes: consecutive successes that bring a down or degraded target up.
        ttft_slo_ms: latency objective in ms; degraded while the P95 TTFT of the successful
            probes among the last ``slo_window_probes`` exceeds it. None: no objective.
        slo_window_probes: probes (successful or not) whose TTFTs feed that P95.
        degraded_error_rate: failed share (0..1, rate limiting included) over the last
            ``error_rate_window_probes`` probes at or above which a target is degraded.
        error_rate_window_probes: probes in the error-rate window (the window must be full).
        rate_limited_state: ``degraded`` (default) or ``down``: how HTTP 429 counts.
    """

    down_after_failures: int = _CONFIG_DEFAULTS.down_after_failures
    up_after_successes: int = _CONFIG_DEFAULTS.up_after_successes
    ttft_slo_ms: float | None = _CONFIG_DEFAULTS.ttft_slo_ms
    slo_window_probes: int = _CONFIG_DEFAULTS.slo_window_probes
    degraded_error_rate: float = _CONFIG_DEFAULTS.degraded_error_rate
    error_rate_window_probes: int = _CONFIG_DEFAULTS.error_rate_window_probes
    rate_limited_state: Literal["degraded", "down"] = _CONFIG_DEFAULTS.rate_limited_state

    @classmethod
    def from_settings(cls, settings: ProbeSettings) -> OutageRules:
        """A target's rules from its resolved settings, field by field (a renamed config
        field fails here, loudly, instead of silently falling back to a default)."""
        return cls(
            down_after_failures=settings.down_after_failures,
            up_after_successes=settings.up_after_successes,
            ttft_slo_ms=settings.ttft_slo_ms,
            slo_window_probes=settings.slo_window_probes,
            degraded_error_rate=settings.degraded_error_rate,
            error_rate_window_probes=settings.error_rate_window_probes,
            rate_limited_state=settings.rate_limited_state,
        )

    @property
    def window(self) -> int:
        """Probes kept in memory for the windowed rules."""
        return max(self.slo_window_probes, self.error_rate_window_probes)


@dataclass(frozen=True, slots=True)
class Observation:
    """The fields of a stored probe the state machine reads.

    Attributes:
        target: target name.
        started_at: UTC ISO 8601 start time (the stored format, sortable as text).
        status: ``ok`` or ``error``.
        error_kind: failure class or None.
        error_message: redacted provider or network message, or None.
        ttft_ms: time to first token in ms, or None.
        kind: the probe's kind (``canary``, ``cache_check``, ``workload``, ``cold_start``);
            see :func:`feeds_state`.
    """

    target: str
    started_at: str
    status: str
    error_kind: str | None = None
    error_message: str | None = None
    ttft_ms: float | None = None
    kind: str = "canary"


def feeds_state(kind: str, outcome: Outcome) -> bool:
    """Whether a probe of ``kind`` with this outcome counts in the outage state.

    The canary decides a target's state. The other kinds (a cache check, a 5,000-token
    workload, the deliberately cold schedule) are slower or heavier by design: their timeouts,
    HTTP errors and latencies say more about the workload than about the provider, and they
    run rarely, so a success of theirs must not bring a failing target back either. A
    connect-level failure is the exception: no answer at all is evidence on any probe, and the
    coordinator weighs it like a canary's (pending until another host answers).
    docs/questions.md, "Probe kinds".
    """
    return kind == "canary" or outcome is Outcome.CONNECT


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of one target: closes the open incident and opens the next.

    Attributes:
        target: target name.
        from_state: state before.
        to_state: state after.
        at: UTC ISO 8601 time the new state began (for down: the first failure of the
            streak; for up: the first success of the streak).
        cause_kind: error kind, ``rate_limited``, ``error_rate``, ``ttft_slo``, ``recovered``,
            ``paused``, ``not_configured``...
        cause_message: human text with a sample (redacted) provider message.
        probes_moved: probes since ``at`` that belong to the new state rather than the old.
        failures_moved: failed probes among them.
        prev_probes: final probe count of the state being left.
        prev_failures: final failure count of the state being left.
    """

    target: str
    from_state: State
    to_state: State
    at: str
    cause_kind: str | None
    cause_message: str
    probes_moved: int = 0
    failures_moved: int = 0
    prev_probes: int = 0
    prev_failures: int = 0


@dataclass(frozen=True, slots=True)
class BlindStarted:
    """The monitor lost its network: connect-level failures on every probed host.

    Attributes:
        since: UTC ISO time of the first failure of the run.
        message: what was seen (kinds and hosts).
        dropped: pending failures that are now attributed to the monitor, per target.
    """

    since: str
    message: str
    dropped: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class BlindEnded:
    """A host answered again: the monitor can see.

    Attributes:
        at: UTC ISO time of the first probe that got a response.
    """

    at: str


@dataclass(frozen=True, slots=True)
class Counted:
    """A probe was accounted to a target's current state (no state change).

    Attributes:
        target: target name.
        failed: True when the probe failed.
        blind: True when it was dropped as a monitor-side failure.
    """

    target: str
    failed: bool
    blind: bool = False


Event = Transition | BlindStarted | BlindEnded | Counted


@dataclass(slots=True)
class MachineState:
    """Everything a :class:`TargetMachine` needs to resume after a restart (JSON-able).

    Attributes:
        state: current state.
        since: UTC ISO time the state began, None for a fresh target.
        cause_kind: why (see :class:`Transition`).
        cause_message: human text.
        fail_streak: consecutive provider-side failures.
        fail_start: started_at of the first of them.
        fail_kinds: kind of each failure in the streak (for the cause).
        fail_message: the last failure's message.
        ok_streak: consecutive successes.
        ok_start: started_at of the first of them.
        alive_streak: consecutive probes that got an answer (ok, or 429 when degraded).
        alive_start: started_at of the first of them.
        window: newest-last ``[code, ttft_ms]``, code 0 ok, 1 failure, 2 rate limited.
        pending: connect-level failures awaiting the coordinator's verdict (as dicts).
        probes_in_state: probes accounted to the current state.
        failures_in_state: failed probes among them.
    """

    state: State = State.NO_DATA
    since: str | None = None
    cause_kind: str | None = None
    cause_message: str = ""
    fail_streak: int = 0
    fail_start: str | None = None
    fail_kinds: list[str] = field(default_factory=list)
    fail_message: str | None = None
    ok_streak: int = 0
    ok_start: str | None = None
    alive_streak: int = 0
    alive_start: str | None = None
    window: list[list[Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    probes_in_state: int = 0
    failures_in_state: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (state as its text value)."""
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MachineState:
        """Inverse of :meth:`to_json`; unknown keys are ignored, missing ones defaulted."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["state"] = State(known.get("state", State.NO_DATA.value))
        return cls(**known)


def _kinds_text(kinds: Iterable[str]) -> str:
    counts = Counter(kinds)
    return ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in counts.most_common())


class TargetMachine:
    """The state of one target, advanced probe by probe.

    Args:
        target: target name.
        rules: the target's rules.
        state: state to resume (from :mod:`store.history`), or None for a fresh target.
    """

    def __init__(self, target: str, rules: OutageRules, state: MachineState | None = None) -> None:
        self.target = target
        self.rules = rules
        self.s = state or MachineState()

    # ---- probes -------------------------------------------------------------------------

    def observe(self, obs: Observation, outcome: Outcome | None = None) -> Transition | None:
        """Account one probe; return the state change it causes, if any.

        Args:
            obs: the probe.
            outcome: its classification (default :func:`classify`); ``CONNECT`` counts as a
                failure here: the coordinator only hands over connect failures it confirmed.
        """
        s, r = self.s, self.rules
        outcome = outcome or classify(obs.status, obs.error_kind)
        if outcome is Outcome.CONNECT:
            outcome = Outcome.FAILURE
        if outcome is Outcome.RATE_LIMITED and r.rate_limited_state == "down":
            outcome = Outcome.FAILURE
        failed = obs.status != "ok"
        s.probes_in_state += 1
        s.failures_in_state += int(failed)
        if outcome is Outcome.IGNORED or s.state in _FROZEN:
            return None
        if outcome is Outcome.OK:
            if s.ok_streak == 0:
                s.ok_start = obs.started_at
            s.ok_streak += 1
            s.fail_streak, s.fail_kinds, s.fail_start = 0, [], None
            self._alive(obs.started_at)
            s.window.append([0, obs.ttft_ms])
        elif outcome is Outcome.FAILURE:
            if s.fail_streak == 0:
                s.fail_start = obs.started_at
            s.fail_streak += 1
            s.fail_kinds.append(obs.error_kind or "error")
            s.fail_message = obs.error_message
            s.ok_streak, s.ok_start = 0, None
            s.alive_streak, s.alive_start = 0, None
            s.window.append([1, None])
        else:  # rate limited, counted as degraded: the provider answered
            s.fail_streak, s.fail_kinds, s.fail_start = 0, [], None
            s.ok_streak, s.ok_start = 0, None
            s.fail_message = obs.error_message
            self._alive(obs.started_at)
            s.window.append([2, None])
        del s.window[: max(0, len(s.window) - r.window)]
        return self._decide(obs, outcome)

    def _alive(self, at: str) -> None:
        if self.s.alive_streak == 0:
            self.s.alive_start = at
        self.s.alive_streak += 1

    def _decide(self, obs: Observation, outcome: Outcome) -> Transition | None:
        s, r = self.s, self.rules
        if s.fail_streak >= r.down_after_failures:
            if s.state is State.DOWN:
                return None
            kinds = _kinds_text(s.fail_kinds)
            message = f"{s.fail_streak} consecutive failures ({kinds})"
            if s.fail_message:
                message += f": {s.fail_message}"
            return self._move(
                State.DOWN,
                s.fail_start or obs.started_at,
                Counter(s.fail_kinds).most_common(1)[0][0],
                message,
                moved=s.fail_streak,
                failed=s.fail_streak,
            )
        if s.state is State.DOWN:
            if s.alive_streak < r.up_after_successes:
                return None
            # Leaving down: the outage's failures must not keep the target degraded.
            s.window = s.window[-s.alive_streak :]
        degraded = self._degraded(obs, outcome)
        if degraded is not None:
            if s.state is State.DEGRADED:
                return None
            if s.state is State.DOWN:
                at, moved = s.alive_start or obs.started_at, s.alive_streak
                failed = sum(1 for code, _ in s.window[-moved:] if code != 0)
            else:
                at, moved, failed = obs.started_at, 1, int(obs.status != "ok")
            return self._move(State.DEGRADED, at, degraded[0], degraded[1], moved, failed)
        if s.state is State.UP:
            return None
        if s.state is State.NO_DATA:
            if outcome is Outcome.OK:
                return self._move(State.UP, obs.started_at, "first_success", "probe succeeded", 1)
            kinds = _kinds_text(s.fail_kinds)
            message = (
                f"{s.fail_streak} failure(s) ({kinds}), down after {r.down_after_failures}"
                + (f": {s.fail_message}" if s.fail_message else "")
            )
            return self._move(
                State.DEGRADED, obs.started_at, s.fail_kinds[-1], message, moved=1, failed=1
            )
        if s.ok_streak >= r.up_after_successes:
            return self._move(
                State.UP,
                s.ok_start or obs.started_at,
                "recovered",
                f"{s.ok_streak} consecutive successes",
                moved=s.ok_streak,
            )
        if s.state is State.DOWN:  # answering again, but not yet M successes in a row
            return self._move(
                State.DEGRADED,
                s.alive_start or obs.started_at,
                "recovering",
                f"answering again, up after {r.up_after_successes} consecutive successes",
                moved=s.alive_streak,
                failed=sum(1 for code, _ in s.window[-s.alive_streak :] if code != 0),
            )
        return None

    def _degraded(self, obs: Observation, outcome: Outcome) -> tuple[str, str] | None:
        s, r = self.s, self.rules
        if outcome is Outcome.RATE_LIMITED:
            return "rate_limited", "rate limited (HTTP 429)" + (
                f": {obs.error_message}" if obs.error_message else ""
            )
        errors = s.window[-r.error_rate_window_probes :]
        if len(errors) >= r.error_rate_window_probes:
            failed = sum(1 for code, _ in errors if code != 0)
            rate = failed / len(errors)
            if rate >= r.degraded_error_rate:
                return (
                    "error_rate",
                    f"{rate:.0%} of the last {len(errors)} probes failed "
                    f"(threshold {r.degraded_error_rate:.0%})",
                )
        if r.ttft_slo_ms is not None:
            values = sorted(
                float(t) for code, t in s.window[-r.slo_window_probes :] if code == 0 and t
            )
            if len(values) >= MIN_SLO_SAMPLES:
                p95 = percentile(values, 95.0)
                if p95 is not None and p95 > r.ttft_slo_ms:
                    return (
                        "ttft_slo",
                        f"P95 TTFT {p95:.0f} ms over the last {len(values)} successful probes "
                        f"is above the objective {r.ttft_slo_ms:.0f} ms",
                    )
        return None

    # ---- explicit states ----------------------------------------------------------------

    def set_state(self, state: State, at: str, cause_kind: str, message: str) -> Transition | None:
        """Force ``state`` (paused, not configured, no data after a resume); resets streaks.

        Returns:
            The transition, or None when the target already is in ``state``.
        """
        if self.s.state is state:
            return None
        transition = self._move(state, at, cause_kind, message, moved=0)
        self.s.fail_streak, self.s.fail_kinds, self.s.fail_start = 0, [], None
        self.s.ok_streak, self.s.ok_start = 0, None
        self.s.alive_streak, self.s.alive_start = 0, None
        self.s.window, self.s.pending = [], []
        return transition

    def _move(
        self,
        to: State,
        at: str,
        cause_kind: str | None,
        message: str,
        moved: int,
        failed: int = 0,
    ) -> Transition:
        s = self.s
        moved = min(moved, s.probes_in_state)
        failed = min(failed, s.failures_in_state)
        # A backdated start never goes before the previous state's start.
        if s.since is not None and at < s.since:
            at = s.since
        transition = Transition(
            self.target,
            s.state,
            to,
            at,
            cause_kind,
            message,
            moved,
            failed,
            s.probes_in_state - moved,
            s.failures_in_state - failed,
        )
        s.state, s.since, s.cause_kind, s.cause_message = to, at, cause_kind, message
        s.probes_in_state, s.failures_in_state = moved, failed
        return transition


class Coordinator:
    """All targets' machines plus monitor-blindness detection.

    An answered probe costs constant time however many targets there are: the targets with
    pending connect failures and the hosts of the active targets are kept as they change,
    instead of being found by walking every machine.

    Args:
        machines: one machine per target.
        hosts: target name -> host it probes (targets on one host share the network path).
        active: names of targets being probed now (configured and not paused).
        blind_since: UTC ISO time the monitor went blind, to resume a blind period.
    """

    def __init__(
        self,
        machines: Mapping[str, TargetMachine],
        hosts: Mapping[str, str],
        active: Iterable[str],
        blind_since: str | None = None,
    ) -> None:
        self.machines = dict(machines)
        self.hosts = dict(hosts)
        self.active: set[str] = set()
        self._active_hosts: Counter[str] = Counter()
        self._set_active(active)
        self._pending: set[str] = {n for n, m in self.machines.items() if m.s.pending}
        """Targets that may hold pending failures (a superset: set_state clears lists)."""
        self.blind_since = blind_since
        self._blind_kinds: Counter[str] = Counter()

    def _host(self, target: str) -> str:
        return self.hosts.get(target, target)

    def _set_active(self, active: Iterable[str]) -> None:
        self.active = set(active)
        self._active_hosts = Counter(self._host(t) for t in self.active)

    def active_hosts(self) -> set[str]:
        """Distinct hosts of the targets being probed."""
        return set(self._active_hosts)

    def observe(self, obs: Observation) -> list[Event]:
        """Route one probe; return what happened, in order (transitions, blindness)."""
        machine = self.machines.get(obs.target)
        if machine is None:
            machine = self.machines[obs.target] = TargetMachine(obs.target, OutageRules())
        outcome = classify(obs.status, obs.error_kind)
        if not feeds_state(obs.kind, outcome):
            return []
        events: list[Event] = []
        if outcome is Outcome.CONNECT:
            if self.blind_since is not None:
                machine.s.probes_in_state += 1
                machine.s.failures_in_state += 1
                return [Counted(obs.target, failed=True, blind=True)]
            hosts = len(self._active_hosts) + (self._host(obs.target) not in self._active_hosts)
            if hosts >= 2:
                machine.s.pending.append(_obs_dict(obs))
                self._pending.add(obs.target)
                return self._check_blind()
        elif outcome is Outcome.IGNORED and obs.error_kind not in _ANSWERED:
            pass  # no evidence either way about the network
        else:  # an answer arrived (ok, an HTTP error, a stream): the network works
            if self.blind_since is not None:
                events.append(BlindEnded(obs.started_at))
                self.blind_since = None
                self._blind_kinds.clear()
            if self._pending:
                events.extend(self.flush_pending())
        transition = machine.observe(obs, outcome)
        events.append(transition or Counted(obs.target, failed=obs.status != "ok"))
        return events

    def flush_pending(self) -> list[Event]:
        """Hand every pending connect failure to its machine as a provider failure."""
        names, self._pending = self._pending, set()
        pending = sorted(
            ((p["started_at"], name, p) for name in names for p in self.machines[name].s.pending),
            key=lambda item: (item[0], item[1]),
        )
        for name in names:
            self.machines[name].s.pending = []
        events: list[Event] = []
        for _, name, p in pending:
            obs = Observation(**p)
            transition = self.machines[name].observe(obs, Outcome.FAILURE)
            events.append(transition or Counted(name, failed=True))
        return events

    def _check_blind(self) -> list[Event]:
        pending_names = [n for n in self._pending if self.machines[n].s.pending]
        failing_hosts = {self._host(n) for n in pending_names}
        if len(failing_hosts) < 2 or any(h not in failing_hosts for h in self._active_hosts):
            return []
        pending = [(p, n) for n in pending_names for p in self.machines[n].s.pending]
        since = min(p["started_at"] for p, _ in pending)
        kinds = Counter(p.get("error_kind") or "error" for p, _ in pending)
        dropped = Counter(n for _, n in pending)
        for name in dropped:
            m = self.machines[name]
            m.s.probes_in_state += dropped[name]
            m.s.failures_in_state += dropped[name]
            m.s.pending = []
        self._pending = set()
        self.blind_since = since
        message = (
            f"every probed host failed before answering ({_kinds_text(kinds.elements())}) "
            f"on {len(failing_hosts)} hosts: no network on the monitor's side"
        )
        return [BlindStarted(since, message, dict(dropped))]

    def set_active(self, active: Iterable[str]) -> list[Event]:
        """Change which targets are probed (pause/resume); may settle pending failures."""
        self._set_active(active)
        if len(self._active_hosts) < 2:
            return self.flush_pending()
        if any(self.machines[n].s.pending for n in self._pending):
            return self._check_blind()
        return []


def _obs_dict(obs: Observation) -> dict[str, Any]:
    return {
        "target": obs.target,
        "started_at": obs.started_at,
        "status": obs.status,
        "error_kind": obs.error_kind,
        "error_message": obs.error_message,
        "ttft_ms": obs.ttft_ms,
        "kind": obs.kind,
    }

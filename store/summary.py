"""Per-target summaries over a window: everything one overview row and its panel show.

:func:`summarize` reads each published target's window figures (raw rows or rollups, see
:mod:`store.windows`), its newest probe, its trend and its uptime over the window and over
24 h / 7 d / 30 d (docs/uptime.md), and builds one immutable :class:`TargetSummary` per
target. Every figure of one summary covers the same window. The state shown comes from the
persisted outage state (:mod:`store.history`), made stale when the monitor is blind
(:func:`store.health.verdict`); :func:`with_verdicts` attaches it to summaries, which the
dashboard's reader does on every read.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from probes.timestamps import parse_iso, utc_now
from store.health import STALE_INTERVALS, Verdict, verdict
from store.tally import NO_FIGURES, WindowFigures
from store.windows import UPTIME_WINDOWS_S, reads_rollups, trend_buckets

if TYPE_CHECKING:
    # The query modules (and sqlite-utils, pydantic under them) load with the first read
    # (:func:`summarize`), not with the summary types: the dashboard draws its first table
    # from the published targets before they are imported (store/preview.py).
    import sqlite_utils

    from store.control import PublishedTarget
    from store.history import BlindStatus, PersistedState, Uptime
    from store.raw_window import LastProbe, WindowPart
    from store.rollup_window import RollupCache
    from store.trends import Trend


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSummary(WindowFigures):
    """Everything the overview shows for one target over the window: the window's figures
    (inherited from :class:`store.tally.WindowFigures`, whose docstring defines them) and who
    the target is, its newest probe, trend, uptime and displayed state.

    Durations in ms, rates in tokens/s, costs in USD, ages in seconds; None when no sample
    could give the figure. ``ttft_series_ms`` is per probe for raw windows and the mean per
    hour (per day beyond 2 days) for rollup windows; ``trend`` is the same window in equal
    time buckets. ``uptime`` maps ``24h``/``7d``/``30d``
    to :class:`store.history.Uptime`; ``window_uptime`` is the uptime over the window itself.
    The ``last_*`` and ``ratelimit_*`` fields are the newest probe's, whatever its age (the
    rate-limit headroom as that probe reported it; None without such a header).
    ``computed_at`` is when the window figures were computed: copies that only move ages
    forward keep it, so a view can tell "same figures, older" from "new figures"; None in a
    summary built before any figure was read (the dashboard's first paint, store/preview.py).
    ``verdict`` (the displayed state) and ``fail_streak`` (consecutive failures the outage
    machine holds, below the down threshold while up) are None / 0 until
    :func:`summarize` or :func:`with_verdicts` attaches them.

    Immutable: a refresh makes new summaries (or cheap copies, :meth:`restated`) and never
    changes one it has handed to the UI.
    """

    # The target as the prober published it.
    name: str
    provider: str
    model: str
    group_name: str | None
    interval_s: float
    configured: bool
    paused: bool
    effective_interval_s: float | None = None
    """Interval after probing budgets (None: as configured); staleness is judged on it."""
    budget_note: str = ""
    """Why a budget stretched the interval or cannot be enforced ("" when not), for display."""
    network_path: str = "internet"
    """``loopback``, ``private`` or ``internet``: the path to the target's host."""
    api_key_env: str | None = None
    """The name of the target's key variable (shown when it is unset), never its value."""
    ttft_series_ms: tuple[float | None, ...] = ()
    trend: Trend | None = None
    # The newest probe.
    last_status: str | None = None
    last_error_kind: str | None = None
    last_error_message: str | None = None
    last_ttft_ms: float | None = None
    last_started_at: str | None = None
    last_age_s: float | None = None
    ratelimit_remaining_requests: int | None = None
    ratelimit_remaining_tokens: int | None = None
    ratelimit_reset_requests_s: float | None = None
    ratelimit_reset_tokens_s: float | None = None
    # Uptime.
    uptime: Mapping[str, Uptime] = field(default_factory=dict)
    window_uptime: Uptime | None = None
    computed_at: datetime | None = None
    # The displayed state.
    verdict: Verdict | None = None
    fail_streak: int = 0
    vantage: str | None = None
    """Set when the summary is one vantage's view of a target (``inferwatch view
    --prometheus``, :mod:`tui.prometheus_source`); ``name`` is then ``target@vantage`` and
    ``group_name`` the target."""

    def restated(self, *, elapsed_s: float, shown: Shown) -> TargetSummary:
        """A copy whose ages moved ``elapsed_s`` forward, with the displayed state given (the
        window figures are shared).

        Cheaper than :func:`dataclasses.replace` (no ``__init__``): the reader makes one per
        target per second.
        """
        copy = object.__new__(TargetSummary)
        # Every slot in one C call, set through the slot descriptors (what a frozen
        # dataclass's __init__ does too): a quarter of the time of a loop of getattr().
        for set_slot, value in zip(_SET_SLOTS, _GET_SLOTS(self), strict=True):
            set_slot(copy, value)
        if self.last_age_s is not None:
            object.__setattr__(copy, "last_age_s", self.last_age_s + elapsed_s)
        object.__setattr__(copy, "verdict", shown.verdict)
        object.__setattr__(copy, "fail_streak", shown.fail_streak)
        return copy


_SLOTS = tuple(f.name for f in fields(TargetSummary))
_GET_SLOTS = operator.attrgetter(*_SLOTS)
_SET_SLOTS = tuple(getattr(TargetSummary, name).__set__ for name in _SLOTS)
_FIGURES = tuple(f.name for f in fields(WindowFigures))
_LAST = {
    "last_status": "status",
    "last_error_kind": "error_kind",
    "last_error_message": "error_message",
    "last_ttft_ms": "ttft_ms",
    "last_started_at": "started_at",
    "last_age_s": "age_s",
    "ratelimit_remaining_requests": "ratelimit_remaining_requests",
    "ratelimit_remaining_tokens": "ratelimit_remaining_tokens",
    "ratelimit_reset_requests_s": "ratelimit_reset_requests_s",
    "ratelimit_reset_tokens_s": "ratelimit_reset_tokens_s",
}


def observed_share(uptime: Uptime | None) -> float | None:
    """The share (0..1) of an uptime window whose state is known (up, degraded or down):
    the rest is before the first probe, paused, not configured or a monitor gap
    (docs/uptime.md). None without an uptime."""
    if uptime is None or uptime.window_s <= 0:
        return None
    known = uptime.up_s + uptime.degraded_s + uptime.down_s
    return min(1.0, max(0.0, known / uptime.window_s))


def success_rate(s: WindowFigures) -> float | None:
    """The share (0..1) of the window's probes that succeeded, None without probes."""
    return (s.count - s.errors) / s.count if s.count else None


def build_summary(
    target: PublishedTarget,
    part: WindowPart | None,
    last: LastProbe | None,
    trend: Trend | None,
    uptimes: Mapping[str, Uptime],
    window_uptime: Uptime | None,
    computed_at: datetime,
    shown: Shown | None = None,
) -> TargetSummary:
    """The one place a :class:`TargetSummary` is built, from its parts (``shown``: its
    displayed state, from :func:`shown_state`; None to attach it later)."""
    figures = part.figures if part is not None else NO_FIGURES
    values: dict[str, Any] = {n: getattr(figures, n) for n in _FIGURES}
    if last is not None:
        values.update({field: getattr(last, attr) for field, attr in _LAST.items()})
    return TargetSummary(
        name=target.name,
        provider=target.provider,
        model=target.model,
        group_name=target.group_name,
        interval_s=target.interval_s,
        configured=target.configured,
        paused=target.paused,
        effective_interval_s=target.effective_interval_s,
        budget_note=target.budget_note,
        network_path=target.network_path,
        api_key_env=target.api_key_env,
        ttft_series_ms=part.series_ms if part is not None else (),
        trend=trend,
        uptime=uptimes,
        window_uptime=window_uptime,
        computed_at=computed_at,
        verdict=shown.verdict if shown is not None else None,
        fail_streak=shown.fail_streak if shown is not None else 0,
        **values,
    )


@dataclass(frozen=True, slots=True)
class States:
    """What the displayed states are decided from, read once per refresh.

    Attributes:
        persisted: every target's persisted outage state (:func:`store.history.persisted_states`).
        blind: the monitor's blind status (:func:`store.history.blind_status`), None while it
            can see.
    """

    persisted: Mapping[str, PersistedState]
    blind: BlindStatus | None
    in_flight: Mapping[str, str] = field(default_factory=dict)
    """Target name -> UTC ISO start of its probe in flight (``store.inflight``)."""
    now: datetime | None = None
    """When they were read (ages of probes in flight count from it)."""

    @classmethod
    def read(cls, db: sqlite_utils.Database, now: datetime) -> States:
        """Read them all now."""
        from store.history import blind_status, persisted_states
        from store.inflight import in_flight

        return cls(persisted_states(db), blind_status(db, now), in_flight(db), now)

    def in_flight_s(self, name: str, last_started_at: str | None) -> float | None:
        """Seconds ``name``'s probe has been in flight, when it started after the newest
        stored probe (``last_started_at``); None otherwise."""
        since = self.in_flight.get(name)
        if since is None or self.now is None:
            return None
        if last_started_at is not None and since <= last_started_at:
            return None  # that probe has ended and been stored
        return max(0.0, (self.now - parse_iso(since)).total_seconds())


@dataclass(frozen=True, slots=True)
class Shown:
    """A target's displayed state and the failure streak behind it."""

    verdict: Verdict
    fail_streak: int


def shown_state(
    name: str,
    *,
    configured: bool,
    paused: bool,
    interval_s: float,
    effective_interval_s: float | None,
    last_age_s: float | None,
    states: States,
    network_path: str = "internet",
    last_started_at: str | None = None,
    last_error_kind: str | None = None,
    last_error_message: str | None = None,
    api_key_env: str | None = None,
) -> Shown:
    """The displayed state of one target (:func:`store.health.verdict`) from its persisted
    outage state, made stale when the monitor is blind or the target's probes stopped."""
    st = states.persisted.get(name)
    blind = states.blind
    v = verdict(
        st.state if st else None,
        st.since if st else None,
        st.cause_kind if st else None,
        st.cause_message if st else "",
        configured=configured,
        paused=paused,
        blind_since=blind.since if blind else None,
        blind_reason=blind.reason if blind else "",
        last_age_s=last_age_s,
        # A target whose budget stretched its interval is not stale.
        interval_s=max(interval_s, effective_interval_s or 0.0),
        fail_streak=st.fail_streak if st else 0,
        fail_start=st.fail_start if st else None,
        fail_message=st.fail_message if st else "",
        network_path=network_path,
        in_flight_s=states.in_flight_s(name, last_started_at),
        in_flight_since=states.in_flight.get(name),
        last_error_kind=last_error_kind,
        last_error_message=last_error_message,
        api_key_env=api_key_env,
    )
    return Shown(v, st.fail_streak if st else 0)


def summarize(
    db: sqlite_utils.Database,
    window_s: float,
    now: datetime | None = None,
    cache: RollupCache | None = None,
    *,
    names: Collection[str] | None = None,
    states: States | None = None,
    with_verdicts: bool = True,
) -> list[TargetSummary]:
    """Summaries of every published target over the last ``window_s`` seconds.

    Args:
        db: an open database.
        window_s: window length in seconds.
        now: the current UTC time (injectable for tests).
        cache: keeps the settled rollup sums of a long window between calls (one per reader).
        names: only these targets (default: every published target).
        states: the outage states and blind status the displayed states are decided from,
            when already read (read here when None and ``with_verdicts``).
        with_verdicts: attach each target's displayed state (else ``verdict`` is None).

    Returns:
        One summary per target, in config order.
    """
    from store.control import published_targets
    from store.history import uptimes
    from store.raw_window import last_probe, raw_window
    from store.rollup_window import rollup_window
    from store.trends import TrendSpec, empty_trend, trends

    now = now or utc_now()
    start = now - timedelta(seconds=window_s)
    targets = published_targets(db, None if names is None else list(names))
    if not targets:
        return []
    wanted = [t.name for t in targets]
    buckets = trend_buckets(window_s)
    if reads_rollups(window_s):
        parts = rollup_window(db, start, now, window_s, cache)
        trend_by = trends(db, wanted, start, now, window_s, buckets)
    else:
        # The trend comes from the same rows; every target's rows are one scan of the time
        # index (a filter on all of them would walk the target index once per target).
        spec = TrendSpec.of(start, window_s, buckets)
        parts = raw_window(db, spec.start, now, None if names is None else wanted, spec)
        trend_by = {}
        for name in wanted:
            part = parts.get(name)
            trend_by[name] = part.trend if part and part.trend else empty_trend(spec)
    lasts: dict[str, LastProbe | None] = {}
    for name in wanted:
        part = parts.get(name)
        lasts[name] = part.last if part is not None and part.last else last_probe(db, name, now)
    # One read of the incidents for every uptime window (of the wanted targets only: a
    # refresh re-summarises the few that received probes).
    *by_label, window_uptimes = uptimes(db, [*UPTIME_WINDOWS_S.values(), window_s], now, wanted)
    uptime_by: dict[str, dict[str, Uptime]] = {
        name: {label: ups[name] for label, ups in zip(UPTIME_WINDOWS_S, by_label, strict=True)}
        for name in wanted
    }
    if with_verdicts and states is None:
        states = States.read(db, now)
    out = []
    for t in targets:
        last = lasts[t.name]
        shown = (
            shown_state(
                t.name,
                configured=t.configured,
                paused=t.paused,
                interval_s=t.interval_s,
                effective_interval_s=t.effective_interval_s,
                last_age_s=last.age_s if last is not None else None,
                states=states,
                network_path=t.network_path,
                last_started_at=last.started_at if last is not None else None,
                last_error_kind=last.error_kind if last is not None else None,
                last_error_message=last.error_message if last is not None else None,
                api_key_env=t.api_key_env,
            )
            if with_verdicts and states is not None
            else None
        )
        out.append(
            build_summary(
                t,
                parts.get(t.name),
                last,
                trend_by.get(t.name),
                uptime_by[t.name],
                window_uptimes.get(t.name),
                now,
                shown,
            )
        )
    return out


def with_verdicts(
    summaries: Sequence[TargetSummary],
    states: States,
    *,
    elapsed_s: float = 0.0,
    decided_by: States | None = None,
) -> list[TargetSummary]:
    """Copies of ``summaries`` with each target's displayed state (:func:`shown_state`), ages
    moved ``elapsed_s`` forward (the window figures are shared).

    Args:
        summaries: the summaries, with the verdicts they were shown with.
        states: what the displayed states are decided from now.
        elapsed_s: seconds since ``summaries`` were read.
        decided_by: the states their verdicts were decided from, if known. A target whose
            inputs are the very same (its persisted state object, the blind status, no probe
            in flight then or now) and that is not stale, then or now, keeps its verdict
            without deciding it again: its age is the only input that moved, and below the
            stale line the words do not depend on it. At 200 targets, deciding every verdict
            every second was the largest part of the dashboard's idle read.
    """
    out = []
    same_blind = decided_by is not None and decided_by.blind == states.blind
    for s in summaries:
        age_s = s.last_age_s + elapsed_s if s.last_age_s is not None else None
        if (
            same_blind
            and decided_by is not None
            and s.verdict is not None
            and elapsed_s >= 0
            and states.persisted.get(s.name) is decided_by.persisted.get(s.name)
            and (age_s is None or age_s <= _stale_after_s(s))
            and states.in_flight_s(s.name, s.last_started_at) is None
            and decided_by.in_flight_s(s.name, s.last_started_at) is None
        ):
            out.append(s.restated(elapsed_s=elapsed_s, shown=Shown(s.verdict, s.fail_streak)))
            continue
        shown = shown_state(
            s.name,
            configured=s.configured,
            paused=s.paused,
            interval_s=s.interval_s,
            effective_interval_s=s.effective_interval_s,
            last_age_s=age_s,
            states=states,
            network_path=s.network_path,
            last_started_at=s.last_started_at,
            last_error_kind=s.last_error_kind,
            last_error_message=s.last_error_message,
            api_key_env=s.api_key_env,
        )
        if shown.verdict == s.verdict:
            # The same words as a second ago: the same object, which the dashboard then
            # knows it has already drawn and made printable.
            shown = Shown(s.verdict, shown.fail_streak)
        out.append(s.restated(elapsed_s=elapsed_s, shown=shown))
    return out


def _stale_after_s(s: TargetSummary) -> float:
    """The age past which :func:`store.health.verdict` calls the target stale, seconds."""
    return STALE_INTERVALS * max(s.interval_s, s.effective_interval_s or 0.0) + 5

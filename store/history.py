"""Persisted outage state: the prober's :class:`HistoryWriter`, incidents, blind periods, uptime.

The prober's writer thread owns one :class:`HistoryWriter`. For every finished probe it
inserts the row, runs the outage machines (:mod:`store.outage`) and writes what changed,
all in one transaction: a probe is never stored without its effect on state, nor the other
way round, and a SIGKILL loses at most the probes still in flight.

Tables (created by migration ``m003_history`` in :mod:`store.db`):

* ``target_state``: the machine of each target (JSON in ``data``), so a restarted prober
  resumes the state it had instead of starting from "no data".
* ``incidents``: one row per state change (from, to, start, end, duration, cause, probes).
* ``monitor_gaps``: when the monitor could not see: ``prober_not_running`` (heartbeat gap)
  or ``network`` (every host failing at connect level); never counted as provider downtime.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from probes.record import ProbeRecord
from probes.timestamps import iso, parse_iso
from store.db import record_row, write_transaction
from store.health import State
from store.outage import (
    BlindEnded,
    BlindStarted,
    Coordinator,
    Counted,
    Event,
    MachineState,
    Observation,
    OutageRules,
    TargetMachine,
    Transition,
)

#: A heartbeat older than this means the prober was not running in between.
PROBER_GAP_AFTER_S = 10.0


def steady_clock() -> float:
    """Seconds on a clock that never jumps: ``CLOCK_BOOTTIME`` where the OS has it (it also
    counts time the machine was suspended, which is time the monitor did not see), else
    ``time.monotonic``. Heartbeat gaps are measured on it, never on the wall clock, so an NTP
    step or a changed date cannot record a gap that did not happen."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.clock_gettime(boottime)
    return time.monotonic()


@dataclass(frozen=True, slots=True)
class Gap:
    """A recorded ``prober_not_running`` monitor gap (UTC ISO 8601 ends).

    Attributes:
        started_at: when the monitor stopped seeing.
        ended_at: when it saw again.
        message: why ("prober was not running", "prober was stalled or suspended").
    """

    started_at: str
    ended_at: str
    message: str


#: States that count as "known" for uptime; the others are unknown time.
KNOWN_STATES = frozenset({State.UP, State.DEGRADED, State.DOWN})
#: States that count as available.
AVAILABLE_STATES = frozenset({State.UP, State.DEGRADED})


def host_of(base_url: str) -> str:
    """The host (with port) a base URL points at, lower-cased; the URL itself if it has none."""
    return (urlsplit(base_url).netloc or base_url).lower()


@dataclass(frozen=True, slots=True)
class StoredProbe:
    """A probe as stored: its row id and the outage events it caused.

    Attributes:
        record: the probe.
        rowid: its ``probes.id``.
        events: state changes, blind periods and counts it caused (``store.outage``).
    """

    record: ProbeRecord
    rowid: int
    events: list[Event]

    @property
    def transitions(self) -> list[Transition]:
        """The state changes among :attr:`events`."""
        return [e for e in self.events if isinstance(e, Transition)]


@dataclass(frozen=True, slots=True)
class MonitoredTarget:
    """A target as the state machinery needs it.

    Attributes:
        name: unique target name.
        host: host probed (targets on one host share a network path).
        rules: outage rules.
        configured: False when the key variable is unset (never probed).
        paused: True when probing is paused.
        maintenance: True when a maintenance window covers it now.
    """

    name: str
    host: str
    rules: OutageRules = field(default_factory=OutageRules)
    configured: bool = True
    paused: bool = False
    maintenance: bool = False


#: Called with the events of each committed change (on the writer thread, after the commit).
Observer = Callable[[Sequence[Event]], None]
_log = logging.getLogger(__name__)


class HistoryWriter:
    """Stores probes and keeps outage state, incidents and blind periods; one per prober.

    Construct it on the thread that owns ``db`` (the prober's writer thread). On
    construction it loads the persisted state of every target, records the gap since the
    last heartbeat when the prober was not running, and applies paused / not configured.

    Args:
        db: the prober's connection.
        targets: the configured targets.
        now: the current UTC time (inject for tests).
        steady: a clock that never jumps, seconds (:func:`steady_clock`; inject for tests):
            stalls between heartbeats are measured on it.

    Attributes:
        start_gap: the gap recorded at construction (since the last prober's heartbeat), or
            None.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        targets: Sequence[MonitoredTarget],
        now: datetime,
        steady: Callable[[], float] = steady_clock,
    ) -> None:
        self.db = db
        self._steady = steady
        self.targets = {t.name: t for t in targets}
        self.paused = {t.name for t in targets if t.paused}
        self.maintenance = {t.name for t in targets if t.maintenance}
        self.observers: list[Observer] = []
        """Told the events of every committed probe, pause and maintenance change (the
        prober's alerts and metrics); an observer's exception is logged, never raised."""
        saved = self._load()
        machines = self.coordinator.machines
        with write_transaction(db):
            self.start_gap = self._record_start_gap(now)
            # From now on stalls are measured on the steady clock (one gap per outage: the
            # heartbeat right after this one must not see the stored heartbeat's age again).
            self._last_beat = steady()
            at = iso(now)
            for t in targets:
                m = machines[t.name]
                if not t.configured:
                    tr = m.set_state(State.NOT_CONFIGURED, at, "not_configured", "API key unset")
                elif t.paused:
                    tr = m.set_state(State.PAUSED, at, "paused", "probing paused")
                elif t.maintenance:
                    tr = m.set_state(State.MAINTENANCE, at, "maintenance", "maintenance window")
                elif m.s.state in (State.PAUSED, State.NOT_CONFIGURED, State.MAINTENANCE):
                    tr = m.set_state(State.NO_DATA, at, "resumed", "waiting for the first probe")
                else:
                    tr = None
                if tr is not None:
                    self._apply([tr], at)
                if tr is not None or t.name not in saved:
                    # Unchanged states stay as stored: at 10,000 targets, re-writing every one
                    # of them delayed the first heartbeat by seconds.
                    self._save(t.name, at)

    def _load(self) -> set[str]:
        """(Re)build the in-memory machines from the committed tables; returns the names
        that have a stored state."""
        db = self.db
        stored = {r["target"]: r for r in db.query("SELECT * FROM target_state")}
        machines = {}
        for t in self.targets.values():
            row = stored.get(t.name)
            state = MachineState.from_json(json.loads(row["data"])) if row else None
            machines[t.name] = TargetMachine(t.name, t.rules, state)
        self._incident = {name: r["incident_id"] for name, r in stored.items()}
        open_blind = list(
            db.query(
                "SELECT id, started_at FROM monitor_gaps WHERE ended_at IS NULL AND "
                "cause = 'network' ORDER BY id DESC LIMIT 1"
            )
        )
        self._blind_gap = open_blind[0]["id"] if open_blind else None
        self.coordinator = Coordinator(
            machines,
            {t.name: t.host for t in self.targets.values()},
            self._active(),
            open_blind[0]["started_at"] if open_blind else None,
        )
        return set(stored)

    def reload(self) -> None:
        """Forget what a failed (rolled back) transaction did to the in-memory state.

        The machines advance in memory inside each store's transaction; when the commit
        fails (disk full, database locked past the timeout) the rows are gone but the
        machines would have moved. Reloading from the tables puts them back where the
        database is, so the same probes can be stored again without counting twice.
        """
        self._load()

    def _active(self) -> set[str]:
        return {
            n
            for n, t in self.targets.items()
            if t.configured and n not in self.paused and n not in self.maintenance
        }

    def _publish(self, events: Sequence[Event]) -> None:
        for observer in self.observers:
            try:
                observer(events)
            except Exception:  # an alert or metric bug must never cost a stored probe
                _log.exception("history observer failed")

    # ---- probes --------------------------------------------------------------------------

    def store_probe(self, record: ProbeRecord) -> int:
        """Insert a finished probe and apply it to the outage state, atomically.

        Returns:
            The probe's row id.

        Raises:
            sqlite3.OperationalError: when the database stays locked past the busy timeout
                (call :meth:`reload` before storing again).
        """
        return self.store_probes([record])[0].rowid

    def store_probes(self, records: Sequence[ProbeRecord]) -> list[StoredProbe]:
        """Insert finished probes and apply them to the outage state, in one transaction.

        Returns:
            Each probe with its row id and the state changes it caused, in input order.

        Raises:
            sqlite3.Error: when the transaction fails; nothing was stored, and
                :meth:`reload` must run before the next store.
        """
        out = []
        with write_transaction(self.db):
            table = self.db.table("probes")
            for record in records:
                table.insert(record_row(record))
                rowid = int(table.last_rowid or 0)
                out.append(StoredProbe(record, rowid, self._observe(record)))
        for item in out:  # after the commit: observers never see a probe that was not stored
            self._publish(item.events)
        return out

    def _observe(self, record: ProbeRecord) -> list[Event]:
        obs = Observation(
            record.target,
            record.started_at,
            record.status,
            record.error_kind,
            record.error_message,
            record.ttft_ms,
            record.kind,
        )
        if record.target in self.maintenance:
            # Stored and counted, but neither a state change nor evidence about the
            # network: a provider down for its announced maintenance must not make the
            # monitor look blind.
            m = self.coordinator.machines[record.target]
            m.s.probes_in_state += 1
            m.s.failures_in_state += int(record.status != "ok")
            events: list[Event] = [Counted(record.target, failed=record.status != "ok")]
        else:
            events = self.coordinator.observe(obs)
        self._apply(events, record.started_at)
        touched = {record.target} | {
            e.target for e in events if isinstance(e, Transition | Counted)
        }
        if any(isinstance(e, BlindStarted) for e in events):
            touched |= set(self.coordinator.machines)
        for name in touched:
            self._save(name, record.started_at)
        return events

    def set_paused(self, name: str | None, paused: bool, now: datetime) -> list[Event]:
        """Pause or resume one target (or all when ``name`` is None): a state change each.

        Returns:
            The events it caused (transitions, pending failures settled), as stored.
        """
        names = [name] if name else list(self.targets)
        at = iso(now)
        with write_transaction(self.db):
            events: list[Event] = []
            for n in names:
                if n not in self.targets or not self.targets[n].configured:
                    continue
                m = self.coordinator.machines[n]
                if paused:
                    self.paused.add(n)
                    tr = m.set_state(State.PAUSED, at, "paused", "probing paused")
                elif n in self.maintenance:
                    self.paused.discard(n)
                    tr = m.set_state(State.MAINTENANCE, at, "maintenance", "maintenance window")
                else:
                    self.paused.discard(n)
                    tr = m.set_state(State.NO_DATA, at, "resumed", "waiting for the first probe")
                if tr is not None:
                    events.append(tr)
            events.extend(self.coordinator.set_active(self._active()))
            self._apply(events, at)
            for n in names:
                if n in self.coordinator.machines:
                    self._save(n, at)
        self._publish(events)
        return events

    def set_maintenance(self, names: Collection[str], now: datetime) -> list[Event]:
        """Make exactly ``names`` the targets in maintenance: those entering go to
        ``maintenance`` (probes then change nothing), those leaving to ``no data`` (the next
        probes decide afresh). Paused and unconfigured targets keep their state.

        Returns:
            The state changes (also told to the observers).
        """
        wanted = {n for n in names if n in self.targets}
        if wanted == self.maintenance:
            return []
        at = iso(now)
        events: list[Event] = []
        with write_transaction(self.db):
            changed = wanted ^ self.maintenance
            self.maintenance = wanted
            for n in sorted(changed):
                m = self.coordinator.machines[n]
                if not self.targets[n].configured or n in self.paused:
                    continue
                if n in wanted:
                    tr = m.set_state(State.MAINTENANCE, at, "maintenance", "maintenance window")
                else:
                    tr = m.set_state(
                        State.NO_DATA,
                        at,
                        "maintenance_ended",
                        "maintenance over; waiting for a probe",
                    )
                if tr is not None:
                    events.append(tr)
            events.extend(self.coordinator.set_active(self._active()))
            self._apply(events, at)
            for n in changed:
                self._save(n, at)
        self._publish(events)
        return events

    def heartbeat(self, now: datetime) -> Gap | None:
        """Record a ``prober_not_running`` gap if more than :data:`PROBER_GAP_AFTER_S` passed
        on the steady clock since the previous heartbeat (the process was stopped, stalled or
        the machine suspended); a jump of the wall clock records nothing. Call it just before
        ``store.control.heartbeat``. Returns the gap recorded, if any.

        The gap ends at ``now`` and is as long as the steady clock says.
        """
        steady_now = self._steady()
        elapsed = steady_now - self._last_beat
        self._last_beat = steady_now
        if elapsed <= PROBER_GAP_AFTER_S:
            return None
        since = iso(now - timedelta(seconds=elapsed))
        gap = Gap(since, iso(now), "prober was stalled or suspended")
        with write_transaction(self.db):
            self._insert_gap(gap)
        return gap

    def _record_start_gap(self, now: datetime) -> Gap | None:
        """The gap since the heartbeat a previous prober left (wall clock: the only clock two
        processes share)."""
        rows = list(self.db.query("SELECT heartbeat_at FROM prober WHERE id = 1"))
        if not rows or not rows[0]["heartbeat_at"]:
            return None
        last = parse_iso(rows[0]["heartbeat_at"])
        if (now - last).total_seconds() <= PROBER_GAP_AFTER_S:
            return None
        gap = Gap(iso(last), iso(now), "prober was not running")
        self._insert_gap(gap)
        return gap

    def _insert_gap(self, gap: Gap) -> None:
        self.db.execute(
            "INSERT INTO monitor_gaps (started_at, ended_at, cause, message) VALUES (?, ?, ?, ?)",
            [gap.started_at, gap.ended_at, "prober_not_running", gap.message],
        )

    # ---- persistence ---------------------------------------------------------------------

    def _apply(self, events: Iterable[Event], at: str) -> None:
        for e in events:
            if isinstance(e, Transition):
                self._transition(e)
            elif isinstance(e, BlindStarted):
                cur = self.db.execute(
                    "INSERT INTO monitor_gaps (started_at, cause, message, probes) "
                    "VALUES (?, 'network', ?, ?)",
                    [e.since, e.message, sum(e.dropped.values())],
                )
                self._blind_gap = cur.lastrowid
            elif isinstance(e, BlindEnded):
                if self._blind_gap is not None:
                    self.db.execute(
                        "UPDATE monitor_gaps SET ended_at = ? WHERE id = ?",
                        [e.at, self._blind_gap],
                    )
                self._blind_gap = None
            elif isinstance(e, Counted) and e.blind and self._blind_gap is not None:
                self.db.execute(
                    "UPDATE monitor_gaps SET probes = probes + 1 WHERE id = ?", [self._blind_gap]
                )

    def _transition(self, tr: Transition) -> None:
        old = self._incident.get(tr.target)
        if old is not None:
            self.db.execute(
                "UPDATE incidents SET ended_at = ?, duration_s = max(0, "
                "(julianday(?) - julianday(started_at)) * 86400.0), probes = ?, failures = ? "
                "WHERE id = ?",
                [tr.at, tr.at, tr.prev_probes, tr.prev_failures, old],
            )
        cur = self.db.execute(
            "INSERT INTO incidents (target, from_state, to_state, started_at, cause_kind, "
            "cause_message, probes, failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                tr.target,
                tr.from_state.value,
                tr.to_state.value,
                tr.at,
                tr.cause_kind,
                tr.cause_message,
                tr.probes_moved,
                tr.failures_moved,
            ],
        )
        self._incident[tr.target] = cur.lastrowid

    def _save(self, name: str, at: str) -> None:
        m = self.coordinator.machines[name]
        incident = self._incident.get(name)
        if incident is not None:
            # The open incident's counters mirror the machine's "in state" counters.
            self.db.execute(
                "UPDATE incidents SET probes = ?, failures = ? WHERE id = ?",
                [m.s.probes_in_state, m.s.failures_in_state, incident],
            )
        self.db.execute(
            "INSERT INTO target_state (target, state, since, cause_kind, cause_message, "
            "incident_id, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(target) DO UPDATE SET state = excluded.state, since = excluded.since, "
            "cause_kind = excluded.cause_kind, cause_message = excluded.cause_message, "
            "incident_id = excluded.incident_id, data = excluded.data, "
            "updated_at = excluded.updated_at",
            [
                name,
                m.s.state.value,
                m.s.since,
                m.s.cause_kind,
                m.s.cause_message,
                incident,
                json.dumps(m.s.to_json(), separators=(",", ":")),
                at,
            ],
        )


# ---- reading ---------------------------------------------------------------------------------


def last_probe_starts(db: sqlite_utils.Database, names: Iterable[str]) -> dict[str, str]:
    """The ``started_at`` of each target's newest stored probe (targets without one are left
    out), so a restarted prober does not probe a target again sooner than its interval.

    One indexed lookup per target: walks ``(target, started_at)``, never the table.
    """
    out = {}
    for name in names:
        row = db.conn.execute(
            "SELECT max(started_at) FROM probes WHERE target = ?", [name]
        ).fetchone()
        if row and row[0]:
            out[name] = row[0]
    return out


@dataclass(frozen=True, slots=True)
class BlindStatus:
    """The monitor cannot see: nothing it shows now is current.

    Attributes:
        since: UTC ISO 8601 time it went blind.
        cause: ``prober_not_running`` or ``network``.
        reason: human text.
    """

    since: str
    cause: str
    reason: str


def blind_status(
    db: sqlite_utils.Database, now: datetime, dead_after_s: float = PROBER_GAP_AFTER_S
) -> BlindStatus | None:
    """Whether the monitor is blind now, and since when.

    Blind when the prober's last heartbeat is older than ``dead_after_s``, or when a
    ``network`` gap is open. A database no prober ever heartbeated on is not blind: nothing
    was being watched (its targets show "no data", and `inferwatch status` exits 1).
    """
    beat = list(db.query("SELECT heartbeat_at FROM prober WHERE id = 1"))
    if beat and beat[0]["heartbeat_at"]:
        last = parse_iso(beat[0]["heartbeat_at"])
        if (now - last).total_seconds() > dead_after_s:
            return BlindStatus(beat[0]["heartbeat_at"], "prober_not_running", "prober not running")
    rows = list(
        db.query(
            "SELECT started_at, message FROM monitor_gaps WHERE ended_at IS NULL "
            "AND cause = 'network' ORDER BY id DESC LIMIT 1"
        )
    )
    if rows:
        return BlindStatus(rows[0]["started_at"], "network", "no network: " + rows[0]["message"])
    return None


@dataclass(frozen=True, slots=True)
class Uptime:
    """Uptime of one target over a window (definition: docs/uptime.md).

    Attributes:
        window_s: window length in seconds.
        up_s: seconds in state up.
        degraded_s: seconds degraded (counted as available).
        down_s: seconds down.
        unknown_s: seconds not known: before the first probe, no data, paused, not
            configured, prober not running, monitor without network.
        pct: ``100 × (up + degraded) / (up + degraded + down)``; None when nothing is known
            (shown as "unknown", never as 100 %).
    """

    window_s: float
    up_s: float
    degraded_s: float
    down_s: float
    unknown_s: float
    pct: float | None


def _ts(text: str) -> float:
    return parse_iso(text).timestamp()


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def _minus(a: float, b: float, gaps: list[tuple[float, float]]) -> float:
    """Length of [a, b) not covered by the (merged, sorted) gaps."""
    length = b - a
    for ga, gb in gaps:
        if gb <= a:
            continue
        if ga >= b:
            break
        length -= min(b, gb) - max(a, ga)
    return max(0.0, length)


def monitor_gaps(
    db: sqlite_utils.Database, start: datetime, now: datetime, dead_after_s: float = 10.0
) -> list[tuple[float, float]]:
    """Merged ``(start, end)`` epoch-second intervals within [start, now] when the monitor was
    blind: recorded gaps, an open network gap, and the live gap since the last heartbeat when
    the prober is not running now."""
    s, n = start.timestamp(), now.timestamp()
    raw: list[tuple[float, float]] = []
    for r in db.query(
        "SELECT started_at, ended_at FROM monitor_gaps WHERE started_at < ? "
        "AND (ended_at IS NULL OR ended_at > ?)",
        [iso(now), iso(start)],
    ):
        a = _ts(r["started_at"])
        b = _ts(r["ended_at"]) if r["ended_at"] else n
        raw.append((max(a, s), min(b, n)))
    live = blind_status(db, now, dead_after_s)
    if live is not None and live.cause == "prober_not_running":
        raw.append((max(_ts(live.since), s), n))
    return _merge(raw)


def uptime(
    db: sqlite_utils.Database,
    window_s: float,
    now: datetime,
    targets: Iterable[str] | None = None,
    gaps: list[tuple[float, float]] | None = None,
) -> dict[str, Uptime]:
    """Uptime of each target over ``[now - window_s, now]`` from its incident intervals.

    Args:
        db: an open database.
        window_s: window in seconds (86400, 7 × 86400, 30 × 86400 on the dashboard).
        now: the current UTC time.
        targets: names to report (default: every target with incidents in the window).
        gaps: precomputed :func:`monitor_gaps` for this window (recomputed when None).

    Returns:
        Target name -> :class:`Uptime`; targets without any known time get ``pct`` None.
    """
    start = now - timedelta(seconds=window_s)
    gaps = monitor_gaps(db, start, now) if gaps is None else gaps
    rows = _incident_spans(db, start, now, None)
    return _uptime_of(rows, window_s, now, targets, gaps)


def uptimes(
    db: sqlite_utils.Database,
    windows_s: Sequence[float],
    now: datetime,
    targets: Collection[str] | None = None,
) -> list[dict[str, Uptime]]:
    """:func:`uptime` over several windows ending ``now``, from one read of the incidents and
    of the monitor's gaps (the dashboard shows its window and 24 h, 7 d and 30 d for each
    target it summarises, and re-summarises a few targets every second).

    Args:
        db: an open database.
        windows_s: the windows, seconds.
        now: the current UTC time.
        targets: names to report, and to read incidents of (default: every target with
            incidents in the window, as :func:`uptime`).

    Returns:
        One mapping per window, in order, as :func:`uptime` gives it.
    """
    longest = now - timedelta(seconds=max(windows_s))
    rows = _incident_spans(db, longest, now, targets)
    all_gaps = monitor_gaps(db, longest, now)
    out = []
    for window_s in windows_s:
        start = now - timedelta(seconds=window_s)
        s = start.timestamp()
        # The longest window's gaps clipped to this one: what monitor_gaps(start) gives.
        gaps = [(max(a, s), b) for a, b in all_gaps if b > s and b > max(a, s)]
        out.append(_uptime_of(rows, window_s, now, targets, gaps))
    return out


#: An incident as uptime reads it: target, state, started_at, ended_at (stored format; None
#: while open) and the two as epoch seconds.
_Span = tuple[str, State, str, str | None, float, float | None]


def _incident_spans(
    db: sqlite_utils.Database, start: datetime, now: datetime, targets: Collection[str] | None
) -> list[_Span]:
    """Incidents in a known state that overlap ``[start, now]``, in the order the started_at
    index gives them (uptimes add their seconds in that order), timestamps parsed once."""
    sql = (
        "SELECT target, to_state, started_at, ended_at FROM incidents WHERE started_at < ? "
        "AND (ended_at IS NULL OR ended_at > ?)"
    )
    params: list[Any] = [iso(now), iso(start)]
    if targets is not None:
        sql += f" AND target IN ({','.join('?' * len(targets))})"
        params += list(targets)
    spans = []
    for target, to_state, started_at, ended_at in db.conn.execute(sql, params):
        state = State(to_state)
        if state in KNOWN_STATES:
            end_s = _ts(ended_at) if ended_at else None
            spans.append((target, state, started_at, ended_at, _ts(started_at), end_s))
    return spans


def _uptime_of(
    spans: list[_Span],
    window_s: float,
    now: datetime,
    targets: Iterable[str] | None,
    gaps: list[tuple[float, float]],
) -> dict[str, Uptime]:
    start = now - timedelta(seconds=window_s)
    s, n, lo = start.timestamp(), now.timestamp(), iso(start)
    totals: dict[str, dict[State, float]] = {}
    for target, state, _, ended_at, start_s, end_s in spans:
        if ended_at is not None and ended_at <= lo:
            continue
        a = max(start_s, s)
        b = min(end_s if end_s is not None else n, n)
        if b <= a:
            continue
        per = totals.setdefault(target, {})
        per[state] = per.get(state, 0.0) + _minus(a, b, gaps)
    names = list(targets) if targets is not None else list(totals)
    out = {}
    for name in names:
        per = totals.get(name, {})
        up, deg, down = (per.get(x, 0.0) for x in (State.UP, State.DEGRADED, State.DOWN))
        known = up + deg + down
        out[name] = Uptime(
            window_s,
            up,
            deg,
            down,
            max(0.0, window_s - known),
            100.0 * (up + deg) / known if known > 0 else None,
        )
    return out


@dataclass(frozen=True, slots=True)
class PersistedState:
    """A target's row in ``target_state``.

    Attributes:
        state: outage state.
        since: UTC ISO time it began.
        cause_kind: machine-readable cause.
        cause_message: human text.
        fail_streak: consecutive failures so far (below the down threshold while up).
        fail_start: started_at of the first of them, None without a streak.
        fail_message: the newest failure's message, "" without a streak.
    """

    state: State
    since: str | None
    cause_kind: str | None
    cause_message: str
    fail_streak: int
    fail_start: str | None = None
    fail_message: str = ""


#: A ``target_state`` row as :func:`persisted_states` reads it, and the state made of it.
StateRows = dict[str, tuple[tuple[Any, ...], PersistedState]]


def persisted_states(
    db: sqlite_utils.Database, seen: StateRows | None = None
) -> dict[str, PersistedState]:
    """Every target's persisted outage state.

    Args:
        db: an open database.
        seen: the rows read by the previous call and their states, updated here: a reader
            that asks every second builds states only from the rows that changed (the JSON
            of 200 targets is most of the read).
    """
    out = {}
    rows: StateRows = {}
    sql = "SELECT target, state, since, cause_kind, cause_message, data FROM target_state"
    for row in db.conn.execute(sql):
        known = seen.get(row[0]) if seen is not None else None
        if known is not None and known[0] == row:
            st = known[1]
        else:
            _, state, since, cause_kind, cause_message, text = row
            data = json.loads(text) if text else {}
            st = PersistedState(
                State(state),
                since,
                cause_kind,
                cause_message or "",
                int(data.get("fail_streak", 0)),
                data.get("fail_start"),
                data.get("fail_message") or "",
            )
        out[row[0]] = st
        rows[row[0]] = (row, st)
    if seen is not None:
        seen.clear()
        seen.update(rows)
    return out


def incidents(
    db: sqlite_utils.Database, target: str | None = None, limit: int = 100
) -> list[dict[str, object]]:
    """The newest incidents (state changes), newest first, as plain dicts."""
    sql = "SELECT * FROM incidents"
    params: list[object] = []
    if target is not None:
        sql += " WHERE target = ?"
        params.append(target)
    sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return list(db.query(sql, params))

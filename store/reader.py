"""The dashboard's reads: one :class:`Snapshot` per refresh, re-reading only what changed.

:class:`SnapshotReader` keeps one connection and the previous snapshot; each read takes a
cheap fingerprint of the database and re-summarises only the targets that received probes
(see its docstring): that is most of the dashboard's idle CPU. :func:`snapshot` is a one-off
read for scripts and benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from probes.timestamps import iso, parse_iso, utc_now
from store.control import ProberStatus, prober_status
from store.db import SchemaNotReady, open_reader
from store.detail import TargetDetail, target_detail
from store.history import PersistedState, StateRows, blind_status, persisted_states
from store.incidents import Incident, recent_incidents
from store.inflight import in_flight
from store.notifications import NotificationsSummary, NotificationsWatch
from store.rollup_window import RollupCache
from store.summary import States, TargetSummary, summarize, with_verdicts

if TYPE_CHECKING:
    # Loaded only by the dashboard's reader when groups have features (prices load with it).
    from store.fallback import FallbackFit
    from store.official_status import StoredOfficial


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What one dashboard refresh reads, in one go.

    Attributes:
        taken_at: UTC time of the read.
        window_s: the window the figures cover.
        targets: one summary per published target.
        prober: the prober's last heartbeat, or None.
        prober_age_s: seconds since that heartbeat.
        db_bytes: database file size (main file plus WAL).
        probes_last_minute: probes stored in the last 60 s, all targets.
        probes_per_minute: probes per minute over the last 5 minutes (or since the prober
            started, if later): steadier than the last minute's count, for the status line.
        blind_since: UTC ISO 8601 time since which the monitor is blind (prober not
            running, or no network on the monitor's side), None while it can see.
        blind_reason: why it is blind, "" otherwise.
        incidents: open and recent incidents across targets
            (:func:`store.incidents.recent_incidents`).
        detail: the detail of the target asked for, if any (:func:`store.detail.target_detail`).
        version: changes whenever anything the snapshot shows may have changed apart from
            ages (lets a view skip redrawing).
        schema_waiting: why the database cannot be read yet (:attr:`store.db.Schema.waiting`),
            "" once it can.
        notifications: the alert notifications log in brief (None before the first;
            :func:`store.notifications.notifications_summary`, kept up to date by
            :class:`store.notifications.NotificationsWatch`).
        official: each target's official status page reading (targets without a page are
            absent; :func:`store.official_status.official_by_target`), a stale reading
            already turned to ``unknown``.
        fallbacks: per group name, whether each fallback can take the primary's load
            (:class:`store.fallback.FallbackFit`, in config order); filled in by the
            dashboard's reader, which has the config's features (empty without them).
    """

    taken_at: datetime
    window_s: float
    targets: tuple[TargetSummary, ...] = ()
    prober: ProberStatus | None = None
    prober_age_s: float | None = None
    db_bytes: int = 0
    probes_last_minute: int = 0
    probes_per_minute: float = 0.0
    blind_since: str | None = None
    blind_reason: str = ""
    incidents: tuple[Incident, ...] = ()
    detail: TargetDetail | None = None
    version: int = 0
    schema_waiting: str = ""
    notifications: NotificationsSummary | None = None
    official: Mapping[str, StoredOfficial] = field(default_factory=dict)
    fallbacks: Mapping[str, tuple[FallbackFit, ...]] = field(default_factory=dict)

    @property
    def waiting(self) -> str:
        """What the dashboard is waiting for before it can show targets ("" when it has them)."""
        if self.schema_waiting:
            return self.schema_waiting
        return "" if self.targets else "waiting for the prober to publish its targets"


@dataclass(frozen=True, slots=True)
class _Token:
    """Cheap fingerprint of what changed since the previous read."""

    probe_id: int
    targets: str
    states: str
    incident_id: int


_TOKEN_SQL = (
    "SELECT (SELECT max(id) FROM probes), "
    "(SELECT group_concat(name || ':' || paused || ':' || configured) FROM targets), "
    "(SELECT group_concat(target || state || coalesce(since, '')) FROM target_state), "
    "(SELECT max(id) FROM incidents)"
)


#: Official status readings are re-read at least this often, seconds (staleness moves with time).
OFFICIAL_RECHECK_S = 60


class SnapshotReader:
    """Reads :class:`Snapshot` values for the dashboard through one long-lived connection.

    Re-summarising every target each second is most of the dashboard's idle CPU, and nearly
    always redundant: between probes only ages and the heartbeat change. Each read first
    takes a fingerprint (newest probe id, published targets, outage states, newest incident)
    and then re-reads only what it says changed:

    * a new probe: only the targets that received probes are summarised again;
    * a new state or incident: the states (and the incidents list) are read again;
    * the window changed, the published targets changed, or ``resummarize_s`` passed (the
      window slides): everything.

    Otherwise it reuses the previous summaries with their ages moved forward. Summaries are
    immutable, so the UI thread may keep reading the ones it was handed.

    Not thread-safe: use it from one thread at a time (calls never overlap).
    """

    def __init__(self, db_path: Path | str, resummarize_s: float = 15.0) -> None:
        self.db_path = Path(db_path)
        self.resummarize_s = resummarize_s
        self._db: sqlite_utils.Database | None = None
        self._last: Snapshot | None = None
        self._last_full: datetime | None = None
        self._token: _Token | None = None
        self._persisted: Mapping[str, PersistedState] = {}
        self._states: States | None = None  # what the previous read's verdicts came from
        self._state_rows: StateRows = {}
        self._version = 0
        self._last_5min = 0
        self._rollup_cache = RollupCache()
        self._detail_key: tuple[str, float, int, int, str] | None = None
        self._notifications = NotificationsWatch()
        self._official: Mapping[str, StoredOfficial] = {}
        self._official_key: tuple[object, ...] | None = None
        self.waiting = ""
        """Why the database cannot be read yet ("" once it can)."""
        self.official_interval_s: float | None = None
        """The status pages' poll interval (``[status] interval_s``): a reading older than
        three of them is shown as unknown. None: readings are shown whatever their age."""

    def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def connection(self) -> sqlite_utils.Database | None:
        """The reader's connection, opened (and its schema checked) once the prober has
        created and migrated the database; None until then (see :attr:`waiting`)."""
        if self._db is None:
            try:
                self._db = open_reader(self.db_path, any_thread=True)
            except SchemaNotReady as exc:
                self.waiting = exc.schema.waiting
            else:
                self.waiting = ""
        return self._db

    def read(
        self, window_s: float, now: datetime | None = None, detail: str | None = None
    ) -> Snapshot:
        """Everything the dashboard shows now, for a window of ``window_s`` seconds.

        Args:
            window_s: the window in seconds.
            now: the current UTC time (inject for tests and deterministic screenshots).
            detail: also read this target's :class:`~store.detail.TargetDetail`.
        """
        now = now or utc_now()
        db = self.connection()
        if db is None:
            return Snapshot(taken_at=now, window_s=window_s, schema_waiting=self.waiting)
        probe_id, targets, states, incident_id = db.conn.execute(_TOKEN_SQL).fetchone()
        token = _Token(probe_id or 0, targets or "", states or "", incident_id or 0)
        last, old = self._last, self._token
        if (
            last is None
            or old is None
            or last.window_s != window_s
            or old.targets != token.targets
            or self._last_full is None
            or (now - self._last_full).total_seconds() >= self.resummarize_s
        ):
            last = old = None
        if old is None or old.states != token.states or old.probe_id != token.probe_id:
            # A probe can change a target's failure streak without changing its state.
            self._persisted = persisted_states(db, self._state_rows)
        blind = blind_status(db, now)
        states = States(self._persisted, blind, in_flight(db), now)
        self._states, decided_by = states, self._states
        if last is None or old is None:
            summaries = summarize(db, window_s, now, self._rollup_cache, states=states)
            self._last_full = now
            recent = self._recent_count(db, now)
            self._last_5min = self._recent_count(db, now, 300)
        else:
            elapsed_s = (now - last.taken_at).total_seconds()
            by_name = {
                s.name: s
                for s in with_verdicts(
                    last.targets, states, elapsed_s=elapsed_s, decided_by=decided_by
                )
            }
            recent = last.probes_last_minute
            if token.probe_id != old.probe_id:
                fresh_names = [
                    r[0]
                    for r in db.conn.execute(
                        # +target: a rowid range, not a walk of the (target, started_at)
                        # index (94 ms at 1 M rows instead of under 1 ms).
                        "SELECT DISTINCT +target FROM probes WHERE id > ?",
                        [old.probe_id],
                    )
                ]
                fresh = summarize(
                    db, window_s, now, self._rollup_cache, names=fresh_names, states=states
                )
                by_name.update((s.name, s) for s in fresh)
                recent = self._recent_count(db, now)
                self._last_5min = self._recent_count(db, now, 300)
            summaries = [by_name[s.name] for s in last.targets if s.name in by_name]
        if last is None or old != token:
            self._version += 1
        incidents = (
            last.incidents
            if last is not None and old == token
            else tuple(recent_incidents(db, now, window_s))
        )
        if self._last is not None and incidents == self._last.incidents:
            # The same list as a second ago (most new probes open or end nothing): the same
            # object, which the dashboard knows it has already made printable.
            incidents = self._last.incidents
        detail_snapshot = self._detail(db, detail, window_s, now, summaries, token, last is None)
        if self._read_official(db, now):
            self._version += 1
        status = prober_status(db)
        age_s = (now - parse_iso(status.heartbeat_at)).total_seconds() if status else None
        span_s = 300.0
        if status is not None:
            span_s = min(span_s, max((now - parse_iso(status.started_at)).total_seconds(), 60))
        size = sum(
            p.stat().st_size for p in (self.db_path, Path(f"{self.db_path}-wal")) if p.exists()
        )
        self._token = token
        self._last = Snapshot(
            taken_at=now,
            window_s=window_s,
            targets=tuple(summaries),
            prober=status,
            prober_age_s=age_s,
            db_bytes=size,
            probes_last_minute=int(recent),
            probes_per_minute=round(self._last_5min * 60 / span_s, 1),
            blind_since=blind.since if blind else None,
            blind_reason=blind.reason if blind else "",
            incidents=incidents,
            detail=detail_snapshot,
            version=self._version,
            notifications=self._notifications.read(db),
            official=self._official,
        )
        return self._last

    def _read_official(self, db: sqlite_utils.Database, now: datetime) -> bool:
        """Re-read the official status readings when the poller wrote one, and once a minute
        (a reading goes stale with time alone); True when what is shown changed."""
        newest = db.conn.execute("SELECT max(checked_at), count(*) FROM official_status").fetchone()
        key = (*newest, int(now.timestamp() // OFFICIAL_RECHECK_S), self.official_interval_s)
        if key == self._official_key:
            return False
        self._official_key = key
        official: Mapping[str, StoredOfficial] = {}
        if newest[1]:
            # Imported with the first reading: the status formats' module loads httpx.
            from store.official_status import official_by_target

            official = official_by_target(db, now=now, interval_s=self.official_interval_s)
        if official == self._official:
            return False
        self._official = official
        return True

    def _detail(
        self,
        db: sqlite_utils.Database,
        name: str | None,
        window_s: float,
        now: datetime,
        summaries: list[TargetSummary],
        token: _Token,
        full: bool,
    ) -> TargetDetail | None:
        if name is None:
            self._detail_key = None
            return None
        key = (name, window_s, token.probe_id, token.incident_id, token.states)
        last = self._last.detail if self._last is not None else None
        if not full and key == self._detail_key and last is not None and last.name == name:
            return last
        summary = next((s for s in summaries if s.name == name), None)
        self._detail_key = key
        return target_detail(db, name, window_s, now, summary.errors_by_kind if summary else None)

    @staticmethod
    def _recent_count(db: sqlite_utils.Database, now: datetime, seconds: float = 60) -> int:
        return int(
            db.conn.execute(
                "SELECT count(*) FROM probes WHERE started_at >= ?",
                [iso(now - timedelta(seconds=seconds))],
            ).fetchone()[0]
        )


def snapshot(
    db_path: Path | str, window_s: float, now: datetime | None = None, detail: str | None = None
) -> Snapshot:
    """Open ``db_path``, read everything the dashboard shows, and close it (any thread)."""
    reader = SnapshotReader(db_path)
    try:
        return reader.read(window_s, now, detail)
    finally:
        reader.close()

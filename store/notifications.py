"""Persisted alerts and the notifications log (tables from migration ``m009_alerts``).

The prober's writer thread owns one :class:`AlertKeeper`: it feeds outage events to the
:class:`store.alerting.AlertEngine`, saves every changed alert to ``alerts`` and queues one
``notifications`` row per notice and channel, in one transaction, then wakes the deliverer
(``tui.notify``), which sends them on its own thread and records every attempt here. Nothing
on this path does network I/O, so a slow receiver never delays a probe or a write.

``notifications.status``: ``pending`` (not tried yet), ``retrying`` (failed, tried again at
``next_attempt_at``), ``sent``, ``failed`` (gave up after the last attempt) or ``superseded``
(a newer notice about the same alert reached that channel first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from probes.timestamps import iso
from store.alerting import AlertEngine, AlertRules, AlertState, Notice, Severity, TargetView
from store.db import write_transaction
from store.maintenance_windows import ActiveWindow
from store.outage import Event, TargetMachine

#: Channel types whose notices are taken by the dashboard, not sent over the network.
LOCAL_TYPES = frozenset({"bell"})


def load_alerts(db: sqlite_utils.Database) -> dict[str, AlertState]:
    """Every persisted alert by key."""
    out = {}
    for r in db.query("SELECT * FROM alerts"):
        out[r["key"]] = AlertState(
            r["key"],
            bool(r["firing"]),
            r["kind"] or "down",
            Severity(r["severity"] or "warning"),
            r["target"],
            r["group_name"],
            r["state"] or "",
            r["summary"] or "",
            r["started_at"],
            r["ended_at"],
            r["last_notified_at"],
            tuple(json.loads(r["channels"] or "[]")),
        )
    return out


def save_alert(db: sqlite_utils.Database, a: AlertState) -> None:
    """Insert or replace one alert row."""
    db.execute(
        "INSERT OR REPLACE INTO alerts (key, firing, kind, severity, target, group_name, state, "
        "summary, started_at, ended_at, last_notified_at, channels) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            a.key,
            int(a.firing),
            a.kind,
            a.severity.value,
            a.target,
            a.group,
            a.state,
            a.summary,
            a.started_at,
            a.ended_at,
            a.last_notified_at,
            json.dumps(list(a.channels)),
        ],
    )


def queue_notice(
    db: sqlite_utils.Database, notice: Notice, channel_types: dict[str, str], now: datetime
) -> list[int]:
    """Insert one ``pending`` row per channel of ``notice``; returns their ids."""
    ids = []
    payload = json.dumps(notice.payload(), separators=(",", ":"))
    for channel in notice.channels:
        cur = db.execute(
            "INSERT INTO notifications (created_at, alert_key, event, kind, severity, target, "
            "group_name, summary, channel, channel_type, payload, status, attempts, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
            [
                iso(now),
                notice.key,
                notice.event,
                notice.kind,
                notice.severity.value,
                notice.target,
                notice.group,
                notice.summary,
                channel,
                channel_types.get(channel, ""),
                payload,
                iso(now),
            ],
        )
        ids.append(int(cur.lastrowid or 0))
    return ids


def views_of(machines: dict[str, TargetMachine], names: Iterable[str]) -> dict[str, TargetView]:
    """The alerting view of the outage machines of ``names``."""
    return {
        n: TargetView(m.s.state, m.s.cause_kind, m.s.since, m.s.cause_message)
        for n in names
        if (m := machines.get(n)) is not None
    }


class AlertKeeper:
    """Alert decisions on the prober's writer thread, persisted with the notices they queue.

    Args:
        db: the writer thread's connection.
        rules: alert rules from the config.
        states: every monitored target's outage state now.
        clock: the current UTC time (tests inject a fast clock).
        wake: called after new notices are committed (wakes the deliverer).
        blind_since: UTC ISO time the monitor went blind, None when it sees.
        channel_types: channel name -> type (recorded beside each notification).
        keep_days: notifications older than this are pruned by :meth:`tick`.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        rules: AlertRules,
        states: dict[str, TargetView],
        clock: Callable[[], datetime],
        wake: Callable[[], None] = lambda: None,
        blind_since: str | None = None,
        channel_types: dict[str, str] | None = None,
        keep_days: float = 365.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wake = wake
        self.channel_types = channel_types or {}
        self.keep_days = keep_days
        self.engine = AlertEngine(rules, states, load_alerts(db), blind_since)
        self._pruned_at: datetime | None = None

    def reconcile(self) -> list[Notice]:
        """Fire or resolve what changed while the prober was stopped (call once at start)."""
        return self._commit(self.engine.reconcile(self.clock()))

    def on_events(self, events: Sequence[Event]) -> list[Notice]:
        """A :class:`store.history.HistoryWriter` observer: decide and queue notices."""
        if not events:
            return []
        return self._commit(self.engine.on_events(events, self.clock()))

    def set_windows(self, active: Sequence[ActiveWindow]) -> list[Notice]:
        """Maintenance windows in force now (start and end notices)."""
        return self._commit(self.engine.set_windows(active, self.clock()))

    def tick(self) -> list[Notice]:
        """Reminders; prunes old notifications about once an hour."""
        now = self.clock()
        notices = self._commit(self.engine.tick(now))
        if self._pruned_at is None or now - self._pruned_at > timedelta(hours=1):
            self._pruned_at = now
            with write_transaction(self.db):
                self.db.execute(
                    "DELETE FROM notifications WHERE created_at < ? AND status NOT IN "
                    "('pending', 'retrying')",
                    [iso(now - timedelta(days=self.keep_days))],
                )
        return notices

    def _commit(self, notices: list[Notice]) -> list[Notice]:
        engine = self.engine
        if not notices and not engine.dirty:
            return notices
        now = self.clock()
        queued = False
        with write_transaction(self.db):
            for key in sorted(engine.dirty):
                save_alert(self.db, engine.alerts[key])
            engine.dirty.clear()
            for n in notices:
                queued |= bool(queue_notice(self.db, n, self.channel_types, now))
        if queued:
            self.wake()
        return notices


# ---- reading (dashboard, CLI, deliverer) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One row of ``notifications`` (no payload).

    Attributes:
        id: row id.
        created_at: UTC ISO 8601 time it was queued.
        alert_key: the alert.
        event: firing, resolved, reminder or test.
        severity: the alert's severity.
        summary: the human line.
        channel: channel name.
        channel_type: webhook, slack, alertmanager, command or bell.
        status: pending, retrying, sent, failed or superseded.
        attempts: delivery attempts so far.
        last_attempt_at: when the last attempt ended.
        result: the last attempt's result (``HTTP 200``, ``timeout after 10s``, ``exit 0``);
            never a URL, key or header.
    """

    id: int
    created_at: str
    alert_key: str
    event: str
    severity: str
    summary: str
    channel: str
    channel_type: str
    status: str
    attempts: int
    last_attempt_at: str | None
    result: str | None


_COLUMNS = (
    "id, created_at, alert_key, event, severity, summary, channel, channel_type, status, "
    "attempts, last_attempt_at, result"
)


def recent_notifications(db: sqlite_utils.Database, limit: int = 20) -> list[NotificationRow]:
    """The newest notifications, newest first."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM notifications ORDER BY id DESC LIMIT ?", [limit]
    ).fetchall()
    return [
        NotificationRow(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            r[4] or "",
            r[5] or "",
            r[6],
            r[7] or "",
            r[8],
            int(r[9] or 0),
            r[10],
            r[11],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class NotificationsSummary:
    """What the dashboard shows of the notifications log.

    Attributes:
        sent: notifications delivered, all time (kept rows).
        failed: notifications given up on.
        waiting: pending or retrying now.
        newest: the newest row, if any.
        newest_bell_id: id of the newest ``bell`` notification (the dashboard rings when it
            grows), 0 when none.
    """

    sent: int
    failed: int
    waiting: int
    newest: NotificationRow | None
    newest_bell_id: int


def notifications_summary(db: sqlite_utils.Database) -> NotificationsSummary | None:
    """Counts by outcome and the newest row; None when no notification was ever queued."""
    sent, failed, waiting, bell = db.conn.execute(
        "SELECT sum(status = 'sent'), sum(status = 'failed'), "
        "sum(status IN ('pending', 'retrying')), max(CASE WHEN channel_type = 'bell' "
        "THEN id END) FROM notifications"
    ).fetchone()
    newest = recent_notifications(db, 1)
    if not newest:
        return None
    return NotificationsSummary(
        int(sent or 0), int(failed or 0), int(waiting or 0), newest[0], int(bell or 0)
    )

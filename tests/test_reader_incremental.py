"""The dashboard reader's incremental reads give what a full read gives, step by step."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from probes.timestamps import iso
from store.db import open_db
from store.history import (
    HistoryWriter,
    MonitoredTarget,
    StateRows,
    persisted_states,
    uptime,
    uptimes,
)
from store.notifications import NotificationsWatch, notifications_summary
from tests.history_helpers import T0, minutes, record


def _notify(
    db: sqlite_utils.Database,
    status: str,
    *,
    created_at: str = "2026-11-30T12:00:00.000Z",
    channel_type: str = "webhook",
    event: str = "firing",
) -> int:
    cur = db.execute(
        "INSERT INTO notifications (created_at, alert_key, event, summary, channel, "
        "channel_type, status, attempts) VALUES (?, 'target:a', ?, 'a down', 'ops', ?, ?, 0)",
        [created_at, event, channel_type, status],
    )
    return int(cur.lastrowid or 0)


def _set(db: sqlite_utils.Database, row_id: int, status: str) -> None:
    db.execute("UPDATE notifications SET status = ? WHERE id = ?", [status, row_id])


def test_notifications_watch_follows_every_change(tmp_path: Path) -> None:
    """Appends, deliveries, retries, supersedes, the Alertmanager refresh row flipping,
    prunes: after each, the incremental summary equals a full count."""
    db = open_db(tmp_path / "n.db")
    clock = [0.0]
    watch = NotificationsWatch(clock=lambda: clock[0], recount_s=1e9)
    seen = []

    def check() -> None:
        clock[0] += 1
        got = watch.read(db)
        assert got == notifications_summary(db)
        seen.append(got)

    check()  # empty log: None
    old = [_notify(db, "sent", created_at="2025-01-01T00:00:00.000Z") for _ in range(3)]
    a = _notify(db, "pending")
    b = _notify(db, "pending", channel_type="bell")
    check()
    _set(db, a, "retrying")
    check()
    _set(db, b, "sent")
    c = _notify(db, "pending")
    check()
    _set(db, a, "superseded")
    _set(db, c, "failed")
    refresh = _notify(db, "sent", event="refresh", channel_type="alertmanager")
    check()
    _set(db, refresh, "failed")  # a re-send to Alertmanager failed, then worked again
    check()
    _set(db, refresh, "sent")
    check()
    db.execute("DELETE FROM notifications WHERE id IN (?, ?)", old[:2])  # the hourly prune
    check()
    _set(db, c, "sent")  # a final status changed after all: caught by the periodic recount
    clock[0] += 1e9
    check()
    assert seen[0] is None
    assert seen[-1] is not None and seen[-1].newest_bell_id == b
    assert (seen[-1].sent, seen[-1].failed, seen[-1].waiting) == (4, 0, 0)
    assert (seen[2].sent, seen[2].failed, seen[2].waiting) == (3, 0, 2)


def test_notifications_watch_reads_only_new_and_open_rows(tmp_path: Path) -> None:
    """Between recounts a read touches the rows after the newest seen and the rows that may
    still change, never the whole log."""
    db = open_db(tmp_path / "n.db")
    for _ in range(50):
        _notify(db, "sent")
    waiting = _notify(db, "retrying")
    watch = NotificationsWatch(clock=lambda: 0.0)
    watch.read(db)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        _notify(db, "pending")
        statements.clear()
        summary = watch.read(db)
    finally:
        db.conn.set_trace_callback(None)
    assert summary is not None and (summary.sent, summary.waiting) == (50, 2)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert not any("GROUP BY" in s or "count(" in s for s in reads), reads
    assert any(f"IN ({waiting})" in s or "WHERE id IN" in s for s in reads), reads


def test_persisted_states_reuses_only_unchanged_rows(tmp_path: Path) -> None:
    """A failure streak moves without a state change: the cached read sees it."""
    db = open_db(tmp_path / "s.db")
    w = HistoryWriter(db, [MonitoredTarget("a", "ha"), MonitoredTarget("b", "hb")], T0)
    w.store_probe(record("a", T0))
    w.store_probe(record("b", T0))
    seen: StateRows = {}
    first = persisted_states(db, seen)
    w.store_probe(record("a", T0 + minutes(1), "error", "server_error", "HTTP 500"))
    second = persisted_states(db, seen)
    assert second == persisted_states(db)
    assert second["a"].fail_streak == 1 and first["a"].fail_streak == 0
    assert second["b"] is first["b"], "an unchanged row is not parsed again"
    assert set(seen) == {"a", "b"}


def test_uptimes_read_once_equal_uptime_per_window(tmp_path: Path) -> None:
    """Several windows from one read give exactly what one read per window gives (outages,
    a target with none, monitor gaps across and inside the windows)."""
    db = open_db(tmp_path / "u.db")
    names = ["a", "b", "c"]
    w = HistoryWriter(db, [MonitoredTarget(n, f"h{n}") for n in names], T0)
    for i in range(240):  # 4 h, a probe a minute; a and b fail for a while
        when = T0 + minutes(i)
        for name in ("a", "b"):
            fails = (name == "a" and 30 <= i < 75) or (name == "b" and i % 50 < 7)
            w.store_probe(
                record(name, when, "error", "server_error") if fails else record(name, when)
            )
    db.execute(
        "INSERT INTO monitor_gaps (started_at, ended_at, cause, message, probes) VALUES "
        "(?, ?, 'prober_not_running', 'x', 0), (?, ?, 'network', 'y', 0)",
        [
            iso(T0 + minutes(50)),
            iso(T0 + minutes(52)),
            iso(T0 + minutes(200)),
            iso(T0 + minutes(230)),
        ],
    )
    now = T0 + minutes(240.5)
    windows = [3600.0, 2 * 3600.0, 86400.0, 30 * 86400.0]
    got = uptimes(db, windows, now, names)
    assert got == [uptime(db, w_s, now, names) for w_s in windows]
    assert got[0]["a"].down_s == 0 and got[-1]["a"].down_s > 0 and got[-1]["b"].down_s > 0
    assert got[-1]["c"].pct is None

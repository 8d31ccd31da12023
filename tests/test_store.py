"""The SQLite store: schema, WAL, inserts, window summaries, percentiles, CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probes.record import FIELD_NAMES, ProbeRecord
from probes.timestamps import iso
from store import control
from store.db import (
    SchemaNotReady,
    default_db_path,
    insert_probe,
    open_db,
    open_reader,
    read_schema,
)
from store.export import ExportFilter, iter_rows, parse_since, write_csv, write_jsonl
from store.health import State
from store.history import HistoryWriter, MonitoredTarget
from store.reader import snapshot
from store.stats import percentile
from store.summary import summarize
from tests.public_schema import PUBLIC_COLUMNS

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def rec(
    target: str,
    minutes_ago: float,
    ttft: float | None = 100.0,
    status: str = "ok",
    kind: str | None = None,
    **extra: object,
) -> ProbeRecord:
    r = ProbeRecord(
        started_at=iso(NOW - timedelta(minutes=minutes_ago)),
        target=target,
        provider="openai-compatible",
        model="m",
        status=status,  # type: ignore[arg-type]
        error_kind=kind,
        ttft_ms=ttft if status == "ok" else None,
        total_ms=(ttft or 0) * 2,
        decode_tps=50.0 if status == "ok" else None,
        cost_usd=0.001 if status == "ok" else None,
    )
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def publish(db, *names: str, interval_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    control.publish_targets(
        db,
        [
            control.PublishedTarget(n, "openai-compatible", "m", None, interval_s, True, False)
            for n in names
        ],
    )


def test_open_db_is_wal_and_migrations_are_idempotent(tmp_path: Path) -> None:
    db = open_db(tmp_path / "a.db")
    assert db.journal_mode == "wal"
    assert set(FIELD_NAMES) <= set(db["probes"].columns_dict)
    db.close()
    db = open_db(tmp_path / "a.db")  # second open: no migration re-run, no error
    assert {"probes", "targets", "prober", "commands"} <= set(db.table_names())


def test_percentile_is_linear_interpolation() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) is None and percentile([7.0], 99) == 7.0


def test_summary_over_window_uses_successes_only(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s.db")
    publish(db, "a")
    for i, ttft in enumerate([100, 200, 300, 400, 500]):
        insert_probe(db, rec("a", minutes_ago=10 - i, ttft=ttft))
    insert_probe(db, rec("a", minutes_ago=2, status="error", kind="server_error"))
    insert_probe(db, rec("a", minutes_ago=120, ttft=9999))  # outside a 1 h window
    (s,) = summarize(db, 3600, NOW)
    assert s.count == 6 and s.errors == 1
    assert s.error_rate == pytest.approx(1 / 6)
    assert s.ttft_p50_ms == 300 and s.ttft_p99_ms == pytest.approx(496.0)
    assert s.decode_tps_p50 == 50 and s.cost_per_request_usd == pytest.approx(0.001)
    assert s.top_error_kind == "server_error" and s.last_status == "error"
    assert s.last_age_s == pytest.approx(120)
    assert s.ttft_series_ms[-1] is None  # the failure is a gap, not 0 ms


def test_states_from_recent_probes(tmp_path: Path) -> None:
    """The prober's path: probes stored through the outage history, then summarised."""
    db = open_db(tmp_path / "st.db")
    names = ("up", "down", "limited", "empty")
    publish(db, *names, interval_s=60)
    history = HistoryWriter(
        db, [MonitoredTarget(n, f"{n}.example") for n in names], NOW - timedelta(minutes=10)
    )
    history.store_probe(rec("up", 1))
    for m in (3, 2, 1):
        history.store_probe(rec("down", m, status="error", kind="server_error"))
        history.store_probe(rec("limited", m, status="error", kind="rate_limited"))
    states = {s.name: s.verdict.state for s in summarize(db, 3600, NOW) if s.verdict}
    assert states == {
        "up": State.UP,
        "down": State.DOWN,
        "limited": State.DEGRADED,
        "empty": State.NO_DATA,
    }


def test_snapshot_reads_prober_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    db = open_db(path)
    publish(db, "a")
    control.heartbeat(db, pid=42, paused=False, config_path="x.toml")
    db.close()
    snap = snapshot(path, 3600)
    assert snap.prober is not None and snap.prober.pid == 42
    assert snap.prober_age_s is not None and snap.prober_age_s < 60
    assert [t.name for t in snap.targets] == ["a"] and snap.db_bytes > 0


def test_commands_round_trip(tmp_path: Path) -> None:
    db = open_db(tmp_path / "c.db")
    cid = control.send_command(db, "probe_now", "a")
    assert not control.command_done(db, cid)
    taken = control.take_commands(db)
    assert [(c.command, c.target) for c in taken] == [("probe_now", "a")]
    assert control.command_done(db, cid) and control.take_commands(db) == []
    with pytest.raises(ValueError):
        control.send_command(db, "reboot")


NASTY = 'boom, "quoted"\nsecond line =SUM(1)'


def test_csv_export_round_trips_and_neutralises_formulas(tmp_path: Path) -> None:
    db = open_db(tmp_path / "e.db")
    insert_probe(db, rec("a", 5, conn_reused=True))
    insert_probe(db, rec("a", 4, status="error", kind="server_error", error_message=NASTY))
    insert_probe(
        db, rec("b", 3, status="error", kind="http_error", error_message="=cmd|' /C calc'!A0")
    )
    out = io.StringIO(newline="")
    assert write_csv(iter_rows(db, ExportFilter()), out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == PUBLIC_COLUMNS
    assert rows[1]["error_message"] == NASTY  # commas, quotes, newline kept
    assert rows[2]["error_message"].startswith("'=")  # formula neutralised
    assert rows[0]["conn_reused"] == "true" and rows[0]["error_kind"] == ""
    assert rows[0]["started_at"].endswith("Z")
    only_b = list(iter_rows(db, ExportFilter(targets=("b",), status="error")))
    assert [r["target"] for r in only_b] == ["b"]


def test_jsonl_export(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    insert_probe(db, rec("a", 5, buffered=True))
    out = io.StringIO()
    write_jsonl(iter_rows(db, ExportFilter()), out)
    row = json.loads(out.getvalue())
    assert row["buffered"] is True and row["ttft_ms"] == 100.0 and row["error_kind"] is None


def test_parse_since() -> None:
    assert parse_since("24h", NOW) == "2026-11-29T12:00:00.000Z"
    assert parse_since("30m", NOW) == "2026-11-30T11:30:00.000Z"
    assert parse_since("2026-11-01", NOW) == "2026-11-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="24h"):
        parse_since("yesterday", NOW)


def test_default_db_path_honours_inferwatch_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERWATCH_DB", str(tmp_path / "elsewhere.db"))
    assert default_db_path() == tmp_path / "elsewhere.db"
    monkeypatch.delenv("INFERWATCH_DB")
    assert default_db_path().name == "inferwatch.db" and default_db_path().is_absolute()


def test_readers_check_the_schema_once_when_they_open(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with pytest.raises(SchemaNotReady, match="waiting for the prober to create the database"):
        open_reader(path)
    db = open_db(path)
    latest = read_schema(db).version
    # A database the prober has not migrated yet: one migration short.
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_unknown_error_kind'")
    db.conn.commit()
    db.close()
    with pytest.raises(SchemaNotReady) as caught:
        open_reader(path)
    assert str(caught.value) == (
        f"database schema v{latest - 1}, this inferwatch reads v{latest}: "
        "waiting for the prober to migrate it"
    )
    snap = snapshot(path, 3600, NOW)
    assert snap.targets == () and snap.waiting == str(caught.value)
    open_db(path).close()  # the prober migrates
    reader = open_reader(path)
    assert read_schema(reader).ready
    reader.close()
    assert snapshot(path, 3600, NOW).waiting == "waiting for the prober to publish its targets"


def test_a_command_sent_while_the_prober_commits_is_not_locked_out(tmp_path: Path) -> None:
    """CI failure (test_workers_commands_and_a_restarted_worker): ``send_command`` read the
    table's schema in a deferred transaction, the prober committed before its INSERT, and the
    stale snapshot failed at once with "database is locked" (the busy timeout never applies
    to an upgrade). Here another connection writes exactly between the read and the INSERT."""
    import sqlite3

    path = tmp_path / "c.db"
    open_db(path).close()
    db = open_db(path)
    other = sqlite3.connect(str(path), timeout=0.2, isolation_level=None)
    interleaved: list[str] = []

    def prober_commits_now(sql: str, params: object) -> None:
        if sql.startswith('INSERT INTO "commands"') and not interleaved:
            try:
                other.execute("INSERT INTO commands (command, created_at) VALUES ('pause', 'x')")
                interleaved.append("committed")
            except sqlite3.OperationalError as exc:  # the write lock is already ours: fine
                interleaved.append(str(exc))

    db._tracer = prober_commits_now  # sqlite-utils calls it before each statement
    cid = control.send_command(db, "probe_now", "a")
    db._tracer = None
    assert interleaved, "the interleaved write was attempted"
    assert [r["command"] for r in db.query("SELECT command FROM commands WHERE id = ?", [cid])] == [
        "probe_now"
    ]
    other.close()
    db.close()

"""Open the database: WAL mode, a busy timeout, and versioned schema migrations.

Every process opens its own connection (``sqlite-utils`` binds a ``Database`` to its thread).
WAL lets the dashboard and exports read while the prober writes; ``busy_timeout`` makes a
writer wait for a lock instead of failing with "database is locked". ``synchronous=NORMAL``
in WAL mode keeps every committed probe across a crash or SIGKILL of the process (only a power
loss can drop the last commits).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from probes.record import FIELD_NAMES, ProbeRecord
from store import histogram
from store.paths import default_db_path as default_db_path  # re-exported: its old home
from store.tally import UNKNOWN_KIND

BUSY_TIMEOUT_S = 30.0

migrations = Migrations("inferwatch")

INT_FIELDS = {
    "http_status",
    "token_events",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "ratelimit_remaining_requests",
    "ratelimit_remaining_tokens",
}
BOOL_FIELDS = {
    "conn_reused",
    "buffered",
    "reasoning_hidden",
    "no_visible_output",
    "usage_inconsistent",
    "cost_mismatch",
    "cold",
    "cold_load",
}
TEXT_FIELDS = {
    "started_at",
    "target",
    "provider",
    "model",
    "status",
    "error_kind",
    "error_message",
    "usage_source",
    "finish_reason",
    "cost_source",
    "request_id",
    "upstream_provider",
    "kind",
    "workload",
    "vantage",
    "out_of_range_fields",
    "response_model",
}


def column_type(name: str) -> type:
    """SQLite column type of a record field (booleans are stored as 0/1 integers)."""
    if name in TEXT_FIELDS:
        return str
    if name in INT_FIELDS or name in BOOL_FIELDS:
        return int
    return float


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Probe rows, the prober's published targets and heartbeat, and UI→prober commands."""
    columns: dict[str, type] = {"id": int}
    columns.update({name: column_type(name) for name in FIELD_NAMES})
    db["probes"].create(columns, pk="id", not_null={"started_at", "target", "status"})  # type: ignore[union-attr]
    db["probes"].create_index(["target", "started_at"])  # type: ignore[union-attr]
    db["probes"].create_index(["started_at"])  # type: ignore[union-attr]
    db["targets"].create(  # type: ignore[union-attr]
        {
            "name": str,
            "provider": str,
            "model": str,
            "group_name": str,
            "interval_s": float,
            "configured": int,
            "enabled": int,
            "paused": int,
            "key_env": str,
            "base_url": str,
            "updated_at": str,
        },
        pk="name",
    )
    db["prober"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "pid": int,
            "started_at": str,
            "heartbeat_at": str,
            "paused": int,
            "config_path": str,
        },
        pk="id",
    )
    db["commands"].create(  # type: ignore[union-attr]
        {"id": int, "command": str, "target": str, "created_at": str, "done_at": str},
        pk="id",
    )


@migrations()
def m002_server_load_ms(db: sqlite_utils.Database) -> None:
    """Add ``server_load_ms`` (Ollama ``load_duration``) to databases created before it."""
    if "server_load_ms" not in db["probes"].columns_dict:
        db["probes"].add_column("server_load_ms", float)  # type: ignore[union-attr]


ROLLUP_TABLES = ("rollup_minute", "rollup_hour", "rollup_day")


@migrations()
def m003_history(db: sqlite_utils.Database) -> None:
    """Outage state, incidents, monitor blind periods, rollups and maintenance bookmarks.

    * ``target_state``: one row per target, the outage machine's state (resumed on restart).
    * ``incidents``: one row per state change; ``ended_at`` NULL while it is the current one.
    * ``monitor_gaps``: periods when the monitor could not see (prober not running, no
      network); uptime counts them as unknown.
    * ``rollup_minute`` / ``rollup_hour`` / ``rollup_day``: per target and UTC bucket start,
      counts, errors by kind (JSON), log histograms (JSON, see ``store.histogram``), sums.
      Keyed ``(bucket, target)`` so time-range scans and pruning walk the primary key.
    * ``maintenance``: key/value bookmarks (``rollup_id``: last probe id rolled up).
    """
    db.execute(
        "CREATE TABLE target_state (target TEXT PRIMARY KEY, state TEXT NOT NULL, since TEXT, "
        "cause_kind TEXT, cause_message TEXT, incident_id INTEGER, data TEXT, updated_at TEXT)"
    )
    db.execute(
        "CREATE TABLE incidents (id INTEGER PRIMARY KEY, target TEXT NOT NULL, "
        "from_state TEXT NOT NULL, to_state TEXT NOT NULL, started_at TEXT NOT NULL, "
        "ended_at TEXT, duration_s REAL, cause_kind TEXT, cause_message TEXT, "
        "probes INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX idx_incidents_target_started ON incidents (target, started_at)")
    db.execute("CREATE INDEX idx_incidents_started ON incidents (started_at)")
    db.execute(
        "CREATE TABLE monitor_gaps (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, "
        "ended_at TEXT, cause TEXT NOT NULL, message TEXT, probes INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX idx_monitor_gaps_started ON monitor_gaps (started_at)")
    for table in ROLLUP_TABLES:
        db.execute(
            f"CREATE TABLE {table} (bucket TEXT NOT NULL, target TEXT NOT NULL, provider TEXT, "
            "model TEXT, probes INTEGER NOT NULL, ok INTEGER NOT NULL, errors TEXT, "
            "ttft_ms_hist TEXT, total_ms_hist TEXT, decode_tps_hist TEXT, "
            "ttft_ms_sum REAL, ttft_n INTEGER, total_ms_sum REAL, total_n INTEGER, "
            "decode_tps_sum REAL, decode_tps_n INTEGER, input_tokens INTEGER, "
            "output_tokens INTEGER, cache_read_tokens INTEGER, cache_input_tokens INTEGER, "
            "cost_usd REAL, cost_n INTEGER, PRIMARY KEY (bucket, target)) WITHOUT ROWID"
        )
    db.execute("CREATE TABLE maintenance (key TEXT PRIMARY KEY, value TEXT)")


@migrations(transactional=False)
def m004_incremental_vacuum(db: sqlite_utils.Database) -> None:
    """Databases created before auto_vacuum was set get it by one full VACUUM (once).

    New databases are created with ``auto_vacuum = INCREMENTAL`` by :func:`open_db`, so this
    is a no-op for them. With it, pruning frees pages that ``PRAGMA incremental_vacuum`` can
    return to the file system in small steps.
    """
    if _pragma(db, "auto_vacuum") != 2:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")


def _pragma(db: sqlite_utils.Database, name: str) -> int:
    return int(db.conn.execute(f"PRAGMA {name}").fetchone()[0])


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``).

    ``db.atomic()`` opens a deferred transaction: one that reads and then writes fails at
    once with "database is locked" when another process committed in between (SQLite cannot
    upgrade a stale read snapshot; the busy timeout does not help). Taking the lock first
    makes the transaction wait up to ``busy_timeout`` instead. Nested use becomes a savepoint.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    else:
        db.conn.execute("COMMIT")


@migrations()
def m005_cost_budget(db: sqlite_utils.Database) -> None:
    """Issue #6: the cost-mismatch flag on probes; the schedule the probing budget produced,
    published per target (effective interval, its reason, the measured cost per probe) and the
    prober's overall daily budget."""
    # m001 builds the probes table from FIELD_NAMES, so a fresh database already has it.
    if "cost_mismatch" not in db["probes"].columns_dict:
        db["probes"].add_column("cost_mismatch", int)  # type: ignore[union-attr]
    targets = db["targets"]
    targets.add_column("jitter_s", float)  # type: ignore[union-attr]
    targets.add_column("effective_interval_s", float)  # type: ignore[union-attr]
    targets.add_column("daily_budget_usd", float)  # type: ignore[union-attr]
    targets.add_column("cost_per_probe_usd", float)  # type: ignore[union-attr]
    targets.add_column("budget_note", str)  # type: ignore[union-attr]
    db["prober"].add_column("daily_budget_usd", float)  # type: ignore[union-attr]


@migrations()
def m006_numbers(db: sqlite_utils.Database) -> None:
    """Issue #9: connection phases (``dns_ms``, ``connect_ms``, ``tls_ms``), the model that
    answered (``response_model``), the price-table estimate beside a provider-charged cost
    (``cost_estimate_usd``) and the ``cold_load`` flag. Adds only the columns that are missing
    (m001 builds a fresh database from the current record already)."""
    columns = db["probes"].columns_dict
    for name in ("response_model", "cost_estimate_usd", "dns_ms", "connect_ms", "tls_ms"):
        if name not in columns:
            db["probes"].add_column(name, column_type(name))  # type: ignore[union-attr]
    if "cold_load" not in columns:
        db["probes"].add_column("cold_load", int)  # type: ignore[union-attr]


@migrations()
def m007_unknown_error_kind(db: sqlite_utils.Database) -> None:
    """A failure without an error kind is counted as ``unknown`` (``store.tally.UNKNOWN_KIND``)
    by every summary; rollup rows written before counted it as ``error``: rename that key."""
    for table in ROLLUP_TABLES:
        rows = db.conn.execute(
            f"SELECT bucket, target, errors FROM {table} WHERE errors LIKE '%\"error\":%'"
        ).fetchall()
        for bucket, target, errors in rows:
            counts: dict[str, int] = json.loads(errors)
            if "error" not in counts:
                continue
            counts[UNKNOWN_KIND] = counts.get(UNKNOWN_KIND, 0) + counts.pop("error")
            db.execute(
                f"UPDATE {table} SET errors = ? WHERE bucket = ? AND target = ?",
                [json.dumps(counts, separators=(",", ":"), sort_keys=True), bucket, target],
            )


@migrations()
def m009_alerts(db: sqlite_utils.Database) -> None:
    """Issue #12: the vantage of each probe; alert state and the notifications log.

    * ``probes.vantage``: where the probe ran from (docs/fleet.md).
    * ``alerts``: one row per alert (a target, a group, the monitor, a maintenance window):
      whether it fires, its severity and when it was last notified, so a restarted prober
      neither repeats an alert nor forgets to resolve one (store/alerting.py).
    * ``notifications``: one row per notice and channel: what, where, when, every attempt's
      result (tui/notify.py delivers them; the dashboard reads them).
    """
    if "vantage" not in db["probes"].columns_dict:
        db["probes"].add_column("vantage", str)  # type: ignore[union-attr]
    db.execute(
        "CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, firing INTEGER NOT NULL, "
        "kind TEXT, severity TEXT, target TEXT, group_name TEXT, state TEXT, summary TEXT, "
        "started_at TEXT, ended_at TEXT, last_notified_at TEXT, channels TEXT, data TEXT)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY, "
        "created_at TEXT NOT NULL, alert_key TEXT NOT NULL, event TEXT NOT NULL, kind TEXT, "
        "severity TEXT, target TEXT, group_name TEXT, summary TEXT, channel TEXT NOT NULL, "
        "channel_type TEXT, payload TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL "
        "DEFAULT 0, last_attempt_at TEXT, next_attempt_at TEXT, result TEXT, sent_at TEXT)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_notifications_due "
        "ON notifications (status, next_attempt_at)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_notifications_created ON notifications (created_at)")


#: Record fields added by issue #13 (m010_questions) and their column types.
_QUESTIONS_COLUMNS = ("kind", "workload", "idle_s", "cold", "server_ttft_ms", "server_predict_ms")


@migrations()
def m010_questions(db: sqlite_utils.Database) -> None:
    """Issue #13: probe kinds, cold starts, Replicate's own timings; official status and
    prompt-caching check results.

    * ``probes``: ``kind`` (existing rows are canaries), ``workload``, ``idle_s``, ``cold``,
      ``server_ttft_ms``, ``server_predict_ms`` (only the columns that are missing: a fresh
      database has them from m001).
    * ``official_status``: the latest state of each polled official status page (one row per
      page and component), written by the status poller off the probing path.
    * ``cache_checks``: one row per prompt-caching check (docs/questions.md).
    """
    columns = db["probes"].columns_dict
    for name in _QUESTIONS_COLUMNS:
        if name in columns:
            continue
        if name == "kind":
            db["probes"].add_column("kind", str, not_null_default="canary")  # type: ignore[union-attr]
        else:
            db["probes"].add_column(name, column_type(name))  # type: ignore[union-attr]
    db.execute(
        "CREATE TABLE IF NOT EXISTS official_status (key TEXT PRIMARY KEY, url TEXT NOT NULL, "
        "format TEXT NOT NULL, component TEXT, targets TEXT, state TEXT NOT NULL, "
        "description TEXT, indicator TEXT, component_status TEXT, incidents TEXT, "
        "page_url TEXT, checked_at TEXT NOT NULL, changed_at TEXT, fetch_ms REAL)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS cache_checks (id INTEGER PRIMARY KEY, target TEXT NOT NULL, "
        "started_at TEXT NOT NULL, verdict TEXT NOT NULL, mode TEXT, prefix_tokens INTEGER, "
        "input_tokens INTEGER, cached_tokens INTEGER, cached_share REAL, first_ttft_ms REAL, "
        "second_ttft_ms REAL, ttft_saved REAL, cost_usd REAL, uncached_cost_usd REAL, "
        "cost_saved REAL, message TEXT)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_cache_checks_target_started "
        "ON cache_checks (target, started_at)"
    )


@migrations()
def m007h_hostile(db: sqlite_utils.Database) -> None:
    """Issue #10: ``out_of_range_fields`` on probes (provider numbers nulled as out of range)."""
    # m001 builds the probes table from FIELD_NAMES, so a fresh database already has it.
    if "out_of_range_fields" not in db["probes"].columns_dict:
        db["probes"].add_column("out_of_range_fields", str)  # type: ignore[union-attr]


@migrations()
def m008_engine(db: sqlite_utils.Database) -> None:
    """Issue #15: how late each probe started and the loop lag it saw; the prober's workers,
    skipped ticks, current problem (shown on the status line) and loop statistics; per target,
    skipped ticks and the latest error of its probe loop."""
    probes = db["probes"].columns_dict
    for name in ("start_late_ms", "loop_lag_ms"):
        if name not in probes:
            db["probes"].add_column(name, float)  # type: ignore[union-attr]
    columns = {
        "prober": {"workers": int, "problem": str, "skipped_ticks": int, "stats": str},
        "targets": {"skipped_ticks": int, "loop_error": str},
    }
    for table, wanted in columns.items():
        have = db[table].columns_dict
        for name, kind in wanted.items():
            if name not in have:
                db[table].add_column(name, kind)  # type: ignore[union-attr]


@migrations()
def m012_canary_rollups(db: sqlite_utils.Database) -> None:
    """Rollups count canary probes only (docs/questions.md, "Probe kinds"): take the cache
    checks, workloads and cold-schedule probes that earlier rollups counted back out of them
    (``store.rollups.remove_non_canaries``), so a target's long-window figures are its
    canaries' from the first read after the upgrade."""
    from store.rollups import remove_non_canaries  # store.rollups imports this module

    remove_non_canaries(db)


@dataclass(frozen=True, slots=True)
class Schema:
    """A database's schema as a reader found it: which of this inferwatch's migrations are in.

    Attributes:
        exists: False when there is no database file yet.
        version: how many of this inferwatch's migrations the database has (its ``vN``).
        latest: how many this inferwatch has.
    """

    exists: bool
    version: int
    latest: int

    @property
    def ready(self) -> bool:
        """True when every table and column this inferwatch reads is there."""
        return self.exists and self.version >= self.latest

    @property
    def waiting(self) -> str:
        """Why a reader cannot read the database yet, "" when it can: the one place that says
        so (the dashboard, ``export`` and ``cost`` show it)."""
        if not self.exists or self.version == 0:
            return "waiting for the prober to create the database"
        if not self.ready:
            return (
                f"database schema v{self.version}, this inferwatch reads v{self.latest}: "
                "waiting for the prober to migrate it"
            )
        return ""


class SchemaNotReady(Exception):
    """The database does not exist yet or has not been migrated to this inferwatch's schema."""

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema.waiting)
        self.schema = schema


def _latest() -> int:
    """How many migrations this inferwatch has (all of them are pending on an empty database)."""
    return len(migrations.pending(sqlite_utils.Database(memory=True)))


def read_schema(db: sqlite_utils.Database) -> Schema:
    """The schema of an open database (read only: sqlite-utils' record of applied migrations)."""
    latest = _latest()
    return Schema(exists=True, version=latest - len(migrations.pending(db)), latest=latest)


def open_reader(path: Path | str, *, any_thread: bool = False) -> sqlite_utils.Database:
    """Open an existing database for reading, checking its schema once.

    Readers never migrate (that takes the write lock the prober needs); a database the
    prober has migrated has every table and column they read, so they need no further checks.

    Args:
        path: database file.
        any_thread: as for :func:`open_db`.

    Raises:
        SchemaNotReady: when the file does not exist or lacks some of this inferwatch's
            migrations (its ``schema.waiting`` says so in words).
        sqlite3.DatabaseError: when the file is not an SQLite database.
    """
    path = Path(path)
    if not path.exists():
        raise SchemaNotReady(Schema(exists=False, version=0, latest=_latest()))
    db = open_db(path, migrate=False, any_thread=any_thread)
    schema = read_schema(db)
    if not schema.ready:
        db.close()
        raise SchemaNotReady(schema)
    return db


def open_db(
    path: Path | str, *, migrate: bool = True, any_thread: bool = False
) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations.

    Args:
        path: database file; its parent directory is created.
        migrate: apply pending migrations (readers may pass False to avoid taking write locks).
        any_thread: allow use from threads other than the opening one; the caller guarantees
            one user at a time (the dashboard's non-overlapping refreshes).

    Raises:
        sqlite3.DatabaseError: when the file is not an SQLite database.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=not any_thread)
    conn.create_function("iw_hist_merge", 2, histogram.merge_json, deterministic=True)
    conn.create_function("iw_counts_merge", 2, histogram.merge_counts_json, deterministic=True)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if migrate and _pragma(db, "page_count") == 0:
        # Only possible before the first table exists, and before WAL writes the header.
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if db.journal_mode != "wal":
        db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    # Keep the WAL file from staying large after a burst (a long export holds checkpoints).
    db.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
    if migrate and migrations.pending(db):
        migrations.apply(db)
    return db


def record_row(record: ProbeRecord) -> dict[str, object]:
    """A record as a database row (booleans as 0/1)."""
    row = record.to_dict()
    for name in BOOL_FIELDS:
        value = row[name]
        row[name] = None if value is None else int(bool(value))
    return row


def insert_probe(db: sqlite_utils.Database, record: ProbeRecord) -> int:
    """Insert one finished probe in its own committed transaction; returns its row id."""
    with write_transaction(db):
        table = db.table("probes")
        table.insert(record_row(record))
        rowid = table.last_rowid
    return int(rowid or 0)

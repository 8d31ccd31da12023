"""Open the database: WAL mode, a busy timeout, and versioned schema migrations.

Every process opens its own connection (``sqlite-utils`` binds a ``Database`` to its thread).
WAL lets the dashboard and exports read while the prober writes; ``busy_timeout`` makes a
writer wait for a lock instead of failing with "database is locked". ``synchronous=NORMAL``
in WAL mode keeps every committed probe across a crash or SIGKILL of the process (only a power
loss can drop the last commits).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import platformdirs
import sqlite_utils
from sqlite_utils import Migrations

from probes.record import FIELD_NAMES, ProbeRecord

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
def m002_cost_budget(db: sqlite_utils.Database) -> None:
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


def default_db_path() -> Path:
    """``inferwatch.db`` under the user's data directory (platformdirs)."""
    return Path(platformdirs.user_data_dir("inferwatch", appauthor=False)) / "inferwatch.db"


def open_db(path: Path | str, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations.

    Args:
        path: database file; its parent directory is created.
        migrate: apply pending migrations (readers may pass False to avoid taking write locks).

    Raises:
        sqlite3.DatabaseError: when the file is not an SQLite database.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if db.journal_mode != "wal":
        db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    if migrate:
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
    with db.atomic():
        table = db.table("probes")
        table.insert(record_row(record))
        rowid = table.last_rowid
    return int(rowid or 0)

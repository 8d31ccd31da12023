"""Per-minute, per-hour and per-day rollups of probe rows, retention, and file-size upkeep.

Rollups count canary probes only (the headline figures' probes, docs/questions.md "Probe
kinds"); the other kinds stay in the raw rows until retention deletes them.

Rollups are built incrementally from a bookmark: ``maintenance.rollup_id`` is the highest
probe id already counted. :func:`rollup_pending` reads the next batch of probes after it,
merges them into ``rollup_minute``/``rollup_hour``/``rollup_day`` and moves the bookmark in
the same transaction, so every probe is counted exactly once, even across a crash, and probes
that arrive late (a long probe finishing after later ones) are not missed.

Retention (:func:`prune`) deletes raw probes older than ``raw_retention_days`` *only once they
are rolled up*, and rollups older than ``rollup_retention_days``, in small batches, each its
own short transaction, so the prober's inserts wait at most one batch. Freed pages are handed
back to the file system by :func:`incremental_vacuum` (the database uses
``auto_vacuum = INCREMENTAL``; docs/uptime.md "Storage" explains the strategy).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from probes.timestamps import Unit, bucket_start, iso, parse_iso
from store import histogram
from store.db import ROLLUP_TABLES, write_transaction
from store.tally import CANARY, TALLY_COLUMNS, Tally


@dataclass(frozen=True, slots=True)
class Level:
    """One rollup table: its name, its bucket length in seconds and the unit of its buckets."""

    table: str
    seconds: int
    unit: Unit


#: The rollup tables, finest first.
LEVELS: tuple[Level, ...] = (
    Level("rollup_minute", 60, "minute"),
    Level("rollup_hour", 3600, "hour"),
    Level("rollup_day", 86400, "day"),
)
assert tuple(level.table for level in LEVELS) == ROLLUP_TABLES
#: Bucket length in seconds of each rollup table.
BUCKET_S: dict[str, int] = {level.table: level.seconds for level in LEVELS}

ROLLUP_BATCH = 1000
PRUNE_BATCH = 2000
VACUUM_PAGES = 512

_COLUMNS = (
    "bucket, target, provider, model, probes, ok, errors, ttft_ms_hist, total_ms_hist, "
    "decode_tps_hist, ttft_ms_sum, ttft_n, total_ms_sum, total_n, decode_tps_sum, decode_tps_n, "
    "input_tokens, output_tokens, cache_read_tokens, cache_input_tokens, cost_usd, cost_n"
)


@dataclass(slots=True)
class RollupRow(Tally):
    """One rollup row being built: the :class:`~store.tally.Tally` of one target and bucket,
    with the provider and model of its newest probe."""

    provider: str | None = None
    model: str | None = None

    def values(self, bucket: str, target: str) -> tuple[Any, ...]:
        """The row for an insert, in ``_COLUMNS`` order."""
        return (
            bucket,
            target,
            self.provider,
            self.model,
            self.probes,
            self.ok,
            json.dumps(self.errors, separators=(",", ":"), sort_keys=True) if self.errors else None,
            histogram.dumps(self.ttft),
            histogram.dumps(self.total),
            histogram.dumps(self.tps),
            self.ttft_sum,
            self.ttft_n,
            self.total_sum,
            self.total_n,
            self.tps_sum,
            self.tps_n,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_input_tokens,
            self.cost_usd,
            self.cost_n,
        )


_UPSERT = (
    "INSERT INTO {table} ("
    + _COLUMNS
    + ") VALUES ("
    + ", ".join("?" * 22)
    + ") ON CONFLICT(bucket, target) DO UPDATE SET provider = excluded.provider, "
    "model = excluded.model, probes = probes + excluded.probes, ok = ok + excluded.ok, "
    "errors = iw_counts_merge(errors, excluded.errors), "
    "ttft_ms_hist = iw_hist_merge(ttft_ms_hist, excluded.ttft_ms_hist), "
    "total_ms_hist = iw_hist_merge(total_ms_hist, excluded.total_ms_hist), "
    "decode_tps_hist = iw_hist_merge(decode_tps_hist, excluded.decode_tps_hist), "
    "ttft_ms_sum = ttft_ms_sum + excluded.ttft_ms_sum, ttft_n = ttft_n + excluded.ttft_n, "
    "total_ms_sum = total_ms_sum + excluded.total_ms_sum, total_n = total_n + excluded.total_n, "
    "decode_tps_sum = decode_tps_sum + excluded.decode_tps_sum, "
    "decode_tps_n = decode_tps_n + excluded.decode_tps_n, "
    "input_tokens = input_tokens + excluded.input_tokens, "
    "output_tokens = output_tokens + excluded.output_tokens, "
    "cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, "
    "cache_input_tokens = cache_input_tokens + excluded.cache_input_tokens, "
    "cost_usd = cost_usd + excluded.cost_usd, cost_n = cost_n + excluded.cost_n"
)

#: The probes a rollup step reads: the tally's columns, then where the row goes and its kind.
ROW_SQL = f"SELECT {TALLY_COLUMNS}, id, started_at, target, provider, model, kind FROM probes"
_ID, _STARTED_AT, _TARGET, _PROVIDER, _MODEL, _KIND = range(9, 15)


def get_bookmark(db: sqlite_utils.Database, key: str = "rollup_id") -> int:
    """The integer bookmark ``key`` from ``maintenance`` (0 when unset)."""
    row = db.conn.execute("SELECT value FROM maintenance WHERE key = ?", [key]).fetchone()
    return int(row[0]) if row else 0


def _set_bookmark(db: sqlite_utils.Database, key: str, value: int) -> None:
    db.execute(
        "INSERT INTO maintenance (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, str(value)],
    )


def aggregate(
    rows: list[tuple[Any, ...]], canaries_only: bool = True
) -> list[dict[tuple[str, str], RollupRow]]:
    """Group probe rows (``ROW_SQL`` shape, in id order) into one ``{(bucket, target):
    RollupRow}`` per level.

    Only canaries are rolled up (:data:`store.tally.CANARY`): rollups feed the headline
    figures of long windows, which the other kinds must not skew; the bookmark still passes
    over the other kinds' rows. ``canaries_only=False`` groups every row given (what
    :func:`remove_non_canaries` takes back out of rows written before).
    """
    levels: list[dict[tuple[str, str], RollupRow]] = [{} for _ in LEVELS]
    minute = levels[0]
    for row in rows:
        if canaries_only and row[_KIND] != CANARY:
            continue
        key = (bucket_start(row[_STARTED_AT], "minute"), row[_TARGET])
        part = minute.get(key)
        if part is None:
            part = minute[key] = RollupRow()
        part.provider, part.model = row[_PROVIDER], row[_MODEL]
        part.add_rows((row,))  # row by row: no per-minute lists kept alive for the collector
    # Coarser levels add the minute tallies up (fewer histogram updates than raw rows); the
    # targets of a minute share its hour and day, so each minute's buckets are computed once.
    for level in (1, 2):
        unit = LEVELS[level].unit
        dest = levels[level]
        coarse: dict[str, str] = {}
        for (bucket, target), part in minute.items():
            up = coarse.get(bucket)
            if up is None:
                up = coarse[bucket] = bucket_start(bucket, unit)
            into = dest.get((up, target))
            if into is None:
                into = dest[(up, target)] = RollupRow()
            into.provider, into.model = part.provider, part.model
            into.add(part)
    return levels


def rollup_pending(db: sqlite_utils.Database, batch: int = ROLLUP_BATCH) -> int:
    """Roll up the next ``batch`` probes after the bookmark in one transaction.

    Returns:
        How many probes were rolled up (0 when caught up).

    Raises:
        sqlite3.OperationalError: when the database stays locked past the busy timeout.
    """
    with write_transaction(db):
        start = get_bookmark(db)
        rows = db.conn.execute(
            ROW_SQL + " WHERE id > ? ORDER BY id LIMIT ?", [start, batch]
        ).fetchall()
        if not rows:
            return 0
        for level, groups in zip(LEVELS, aggregate(rows), strict=True):
            db.conn.executemany(
                _UPSERT.format(table=level.table),
                [agg.values(bucket, target) for (bucket, target), agg in groups.items()],
            )
        _set_bookmark(db, "rollup_id", int(rows[-1][_ID]))
    return len(rows)


def remove_non_canaries(db: sqlite_utils.Database) -> int:
    """Take probes of other kinds than canary back out of the rollup rows they were counted in.

    Rollups written before they counted canaries only (issue #13's first release counted
    every kind) mix a long-prompt workload's TTFT into a target's 24 h figures. Every
    non-canary probe still stored up to the bookmark is tallied again as it was counted and
    subtracted from its minute, hour and day rows (counts, sums and histograms are all
    additive); a row left without probes is deleted. Probes retention already deleted cannot
    be taken out (they are older than ``raw_days``, 30 by default). Runs once per database
    (``maintenance.canary_rollups`` records it): a second run would subtract them twice.

    Returns:
        How many probes were taken out (0 when it ran before).
    """
    if get_bookmark(db, _CLEANED):
        return 0
    rows = db.conn.execute(
        ROW_SQL + " WHERE id <= ? AND kind != ? ORDER BY id", [get_bookmark(db), CANARY]
    ).fetchall()
    for level, groups in zip(LEVELS, aggregate(rows, canaries_only=False), strict=True):
        for (bucket, target), part in groups.items():
            _subtract(db, level.table, bucket, target, part)
    _set_bookmark(db, _CLEANED, 1)
    return len(rows)


#: The ``maintenance`` key set once :func:`remove_non_canaries` has run.
_CLEANED = "canary_rollups"


_NAMES = _COLUMNS.split(", ")


def _subtract(
    db: sqlite_utils.Database, table: str, bucket: str, target: str, part: RollupRow
) -> None:
    """Subtract ``part`` from one stored rollup row (deleted when no probe is left)."""
    where = f"FROM {table} WHERE bucket = ? AND target = ?"
    old = db.conn.execute(f"SELECT {_COLUMNS} {where}", [bucket, target]).fetchone()
    if old is None:
        return
    minus = part.values(bucket, target)
    new = list(old)
    for i, name in enumerate(_NAMES[4:], start=4):
        a, b = old[i], minus[i]
        if name == "errors" or name.endswith("_hist"):
            counts: dict[str, int] = json.loads(a) if a else {}
            for k, n in (json.loads(b) if b else {}).items():
                counts[k] = counts.get(k, 0) - n
            kept = {k: n for k, n in counts.items() if n > 0}
            new[i] = (
                None
                if not kept
                else histogram.dumps(kept)
                if name != "errors"
                else json.dumps(kept, separators=(",", ":"), sort_keys=True)
            )
        else:
            new[i] = (a or 0) - (b or 0)
    values = dict(zip(_NAMES, new, strict=True))
    if values["probes"] <= 0:
        db.execute(f"DELETE {where}", [bucket, target])
        return
    for total, n in (("ttft_ms_sum", "ttft_n"), ("total_ms_sum", "total_n")):
        if values[n] <= 0:  # float sums need not come back to exactly 0
            values[total] = 0.0
    if values["decode_tps_n"] <= 0:
        values["decode_tps_sum"] = 0.0
    if values["cost_n"] <= 0:
        values["cost_usd"] = 0.0
    sets = ", ".join(f"{name} = ?" for name in _NAMES[4:])
    db.execute(
        f"UPDATE {table} SET {sets} WHERE bucket = ? AND target = ?",
        [*(values[name] for name in _NAMES[4:]), bucket, target],
    )


def rollup_all(db: sqlite_utils.Database, batch: int = ROLLUP_BATCH) -> int:
    """Run :func:`rollup_pending` until caught up; returns the probes rolled up."""
    done = 0
    while True:
        n = rollup_pending(db, batch)
        done += n
        if n == 0:
            return done


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of row is kept.

    Attributes:
        raw_days: raw probe rows (default 30 days).
        rollup_days: minute, hour and day rollups, incidents and monitor gaps (default 365).
    """

    raw_days: float = 30.0
    rollup_days: float = 365.0


def prune(
    db: sqlite_utils.Database,
    now: datetime,
    retention: Retention,
    batch: int = PRUNE_BATCH,
) -> int:
    """Delete one batch of expired rows per table, each in its own short transaction.

    Raw probes are deleted only once rolled up (``id <= rollup_id``), so retention never
    loses a probe from the rollups, and the newest probe row is kept so that ids keep
    growing past the bookmark. Call repeatedly until it returns 0.

    Ages are measured back from the newest stored probe, or from ``now`` when that is
    earlier: a wall clock that jumps ahead (or a database opened again after months) never
    makes retention delete what was stored last, only what is older than the retention
    before it (docs/uptime.md, "Storage").

    Returns:
        Rows deleted in this call.
    """
    row = db.conn.execute("SELECT max(started_at) FROM probes").fetchone()
    if row and row[0]:
        with contextlib.suppress(ValueError):
            now = min(now, parse_iso(row[0]))
    raw_cut = iso(now - timedelta(days=retention.raw_days))
    roll_cut = iso(now - timedelta(days=retention.rollup_days))
    deleted = 0
    with write_transaction(db):
        bookmark = get_bookmark(db)
        # The newest row is always kept: ids are rowids (no AUTOINCREMENT), and once the
        # highest one is gone SQLite hands it out again, at or below the bookmark, so the next
        # probe would never be rolled up.
        deleted += db.execute(
            "DELETE FROM probes WHERE id IN (SELECT id FROM probes WHERE started_at < ? "
            "AND id <= ? AND id < (SELECT max(id) FROM probes) ORDER BY started_at LIMIT ?)",
            [raw_cut, bookmark, batch],
        ).rowcount
    for table in ROLLUP_TABLES:
        with write_transaction(db):
            deleted += db.execute(
                f"DELETE FROM {table} WHERE bucket IN (SELECT DISTINCT bucket FROM {table} "
                "WHERE bucket < ? ORDER BY bucket LIMIT ?)",
                [roll_cut, max(1, batch // 100)],
            ).rowcount
    with write_transaction(db):
        deleted += db.execute(
            "DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE ended_at < ? "
            "LIMIT ?)",
            [roll_cut, batch],
        ).rowcount
        deleted += db.execute(
            "DELETE FROM monitor_gaps WHERE id IN (SELECT id FROM monitor_gaps "
            "WHERE ended_at < ? LIMIT ?)",
            [roll_cut, batch],
        ).rowcount
    return deleted


def incremental_vacuum(db: sqlite_utils.Database, pages: int = VACUUM_PAGES) -> int:
    """Return up to ``pages`` free pages to the file system; returns the free pages left.

    A no-op on databases without ``auto_vacuum = INCREMENTAL``.
    """
    free = int(db.conn.execute("PRAGMA freelist_count").fetchone()[0])
    if free and not db.conn.in_transaction:
        # executescript steps the pragma to completion (execute() frees a single page).
        db.conn.executescript(f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(pages)}); COMMIT;")
        free = int(db.conn.execute("PRAGMA freelist_count").fetchone()[0])
    return free


def maintenance_steps(
    db: sqlite_utils.Database, now: datetime, retention: Retention
) -> Iterator[str]:
    """The upkeep work as small steps; run each with the writer between probe inserts.

    Yields a short label after each step (rollup batch, prune batch, vacuum step) until there
    is nothing left to do.
    """
    while rollup_pending(db):
        yield "rollup"
    while prune(db, now, retention):
        yield "prune"
    free = incremental_vacuum(db)
    yield "vacuum"
    while free > VACUUM_PAGES:
        free = incremental_vacuum(db)
        yield "vacuum"

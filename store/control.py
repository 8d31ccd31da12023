"""How the prober and the dashboard talk through the database.

The prober publishes its targets and a heartbeat; the dashboard queues commands (pause,
resume, probe now) that the prober picks up within a second and marks done, so the
dashboard can show that they took effect.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlite_utils

from probes.budget import PlannedInterval
from probes.timestamps import now_iso
from store.db import write_transaction

PROBER_ID = 1
COMMANDS = ("pause", "resume", "probe_now")


@dataclass(frozen=True, slots=True)
class PublishedTarget:
    """A target as the prober published it (what the dashboard lists).

    Attributes:
        name: unique target name.
        provider: provider name.
        model: model id.
        group_name: display group, or None.
        interval_s: probe interval in seconds.
        configured: False when the key variable was unset.
        paused: True when probing of this target is paused.
        jitter_s: the prober's jitter (it moves starts within their slot, not the rate).
        effective_interval_s: the interval after probing budgets (>= ``interval_s``), seconds;
            None when the prober has not published one (an older prober).
        daily_budget_usd: the target's own probing budget, USD per day, or None.
        cost_per_probe_usd: the scheduler's measured mean cost per probe, USD, or None.
        budget_note: why the interval was stretched or cannot be budgeted ("" when it runs
            as configured); the dashboard shows it.
        network_path: ``loopback``, ``private`` or ``internet`` (``store.outage.network_path``
            of its host): a monitor without internet does not make a local target stale.
        in_flight_since: UTC ISO 8601 start of the probe in flight, as the prober last
            published it (``store.inflight``), or None.
        api_key_env: the name of the target's key variable (never its value), or None.
    """

    name: str
    provider: str
    model: str
    group_name: str | None
    interval_s: float
    configured: bool
    paused: bool
    jitter_s: float = 0.0
    effective_interval_s: float | None = None
    daily_budget_usd: float | None = None
    cost_per_probe_usd: float | None = None
    budget_note: str = ""
    network_path: str = "internet"
    in_flight_since: str | None = None
    api_key_env: str | None = None

    @property
    def stretched(self) -> bool:
        """True when a probing budget stretched the interval."""
        return self.effective_interval_s is not None and self.effective_interval_s > self.interval_s


def publish_targets(db: sqlite_utils.Database, targets: list[PublishedTarget]) -> None:
    """Replace the published target list (the prober calls this at start)."""
    now = now_iso()
    with write_transaction(db):
        db.execute("DELETE FROM targets")
        db.table("targets").insert_all(
            {
                "name": t.name,
                "provider": t.provider,
                "model": t.model,
                "group_name": t.group_name,
                "interval_s": t.interval_s,
                "configured": int(t.configured),
                "enabled": 1,
                "paused": int(t.paused),
                "updated_at": now,
                "jitter_s": t.jitter_s,
                "effective_interval_s": t.effective_interval_s or t.interval_s,
                "daily_budget_usd": t.daily_budget_usd,
                "cost_per_probe_usd": t.cost_per_probe_usd,
                "budget_note": t.budget_note,
                "network_path": t.network_path,
                "api_key_env": t.api_key_env,
            }
            for t in targets
        )


def publish_schedule(
    db: sqlite_utils.Database,
    plans: Iterable[PlannedInterval],
    daily_budget_usd: float | None,
) -> None:
    """Publish the scheduler's current interval plan (the prober calls this when it changes).

    Args:
        db: the prober's database.
        plans: one plan per target (``probes.budget.plan_intervals``).
        daily_budget_usd: the prober's overall budget, USD per day, or None; stored with the
            heartbeat row once it exists.
    """
    with write_transaction(db):
        for p in plans:
            db.execute(
                "UPDATE targets SET effective_interval_s = ?, cost_per_probe_usd = ?, "
                "budget_note = ?, daily_budget_usd = ? WHERE name = ?",
                [
                    p.effective_interval_s,
                    p.cost_per_probe_usd,
                    p.note,
                    p.daily_budget_usd,
                    p.name,
                ],
            )
        db.execute("UPDATE prober SET daily_budget_usd = ?", [daily_budget_usd])


def published_targets(
    db: sqlite_utils.Database, names: Collection[str] | None = None
) -> list[PublishedTarget]:
    """The targets the prober published, in config order (only ``names``, when given: the
    dashboard re-summarises a few targets a second)."""
    where, params = "", []
    if names is not None:
        where, params = f" WHERE name IN ({','.join('?' * len(names))})", list(names)
    return [
        PublishedTarget(
            name=r["name"],
            provider=r["provider"],
            model=r["model"],
            group_name=r["group_name"],
            interval_s=r["interval_s"],
            configured=bool(r["configured"]),
            paused=bool(r["paused"]),
            jitter_s=r.get("jitter_s") or 0.0,
            effective_interval_s=r.get("effective_interval_s"),
            daily_budget_usd=r.get("daily_budget_usd"),
            cost_per_probe_usd=r.get("cost_per_probe_usd"),
            budget_note=r.get("budget_note") or "",
            network_path=r.get("network_path") or "internet",
            in_flight_since=r.get("in_flight_since"),
            api_key_env=r.get("api_key_env"),
        )
        for r in db.query(f"SELECT * FROM targets{where} ORDER BY rowid", params)
    ]


def heartbeat(
    db: sqlite_utils.Database,
    pid: int,
    paused: bool,
    config_path: str,
    *,
    workers: int | None = None,
    problem: str = "",
    skipped_ticks: int | None = None,
    stats: str | None = None,
) -> None:
    """Record that the prober is alive now (called every couple of seconds).

    Args:
        db: the prober's database.
        pid: the prober's process id (the one to signal; its workers are its children).
        paused: True when every target is paused.
        config_path: where the targets came from, shown by the dashboard.
        workers: probing worker processes, None when not known.
        problem: what is wrong with the prober right now, "" when nothing (the dashboard
            shows it on the status line).
        skipped_ticks: ticks skipped since the prober started, all targets.
        stats: JSON with the prober's own figures (workers' loop lag, probes held).
    """
    now = now_iso()
    with write_transaction(db):
        db.execute(
            "INSERT INTO prober (id, pid, started_at, heartbeat_at, paused, config_path, "
            "workers, problem, skipped_ticks, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET pid=excluded.pid, "
            "heartbeat_at=excluded.heartbeat_at, paused=excluded.paused, "
            "config_path=excluded.config_path, workers=excluded.workers, "
            "problem=excluded.problem, skipped_ticks=excluded.skipped_ticks, "
            "stats=excluded.stats, "
            "started_at=CASE WHEN prober.pid=excluded.pid THEN prober.started_at "
            "ELSE excluded.started_at END",
            [
                PROBER_ID,
                pid,
                now,
                now,
                int(paused),
                config_path,
                workers,
                problem or None,
                skipped_ticks,
                stats,
            ],
        )


def publish_target_health(
    db: sqlite_utils.Database, health: Iterable[tuple[str, int, str | None]]
) -> None:
    """Publish per-target scheduler health: ``(name, skipped_ticks, loop_error)`` rows.

    ``loop_error`` is the latest exception of the target's probe loop (it carried on), or
    None.
    """
    with write_transaction(db):
        db.conn.executemany(
            "UPDATE targets SET skipped_ticks = ?, loop_error = ? WHERE name = ?",
            [(skipped, error, name) for name, skipped, error in health],
        )


@dataclass(frozen=True, slots=True)
class ProberStatus:
    """The prober's last heartbeat. Timestamps are UTC ISO 8601 strings.

    Attributes:
        pid: the prober's process id.
        started_at: when this prober started.
        heartbeat_at: its latest heartbeat.
        paused: every target paused.
        daily_budget_usd: the prober's overall probing budget (USD per day), or None.
        problem: what is wrong with the prober now (storage failing, a worker restarted, a
            probe loop error), "" when nothing.
        workers: probing worker processes, None when the prober did not say.
        skipped_ticks: ticks skipped because the previous probe was still running.
    """

    pid: int
    started_at: str
    heartbeat_at: str
    paused: bool
    daily_budget_usd: float | None = None
    problem: str = ""
    workers: int | None = None
    skipped_ticks: int = 0


def prober_status(db: sqlite_utils.Database) -> ProberStatus | None:
    """The prober's last heartbeat, or None when no prober ever ran on this database."""
    rows = list(db.query("SELECT * FROM prober WHERE id = ?", [PROBER_ID]))
    if not rows:
        return None
    r = rows[0]
    return ProberStatus(
        r["pid"],
        r["started_at"],
        r["heartbeat_at"],
        bool(r["paused"]),
        r.get("daily_budget_usd"),
        r.get("problem") or "",
        r.get("workers"),
        r.get("skipped_ticks") or 0,
    )


def send_command(db: sqlite_utils.Database, command: str, target: str | None = None) -> int:
    """Queue a command for the prober; returns its id.

    Raises:
        ValueError: for a command not in :data:`COMMANDS`.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    with write_transaction(db):
        table = db.table("commands")
        table.insert({"command": command, "target": target, "created_at": now_iso()})
        return int(table.last_rowid or 0)


@dataclass(frozen=True, slots=True)
class Command:
    """A queued command."""

    id: int
    command: str
    target: str | None


def take_commands(db: sqlite_utils.Database) -> list[Command]:
    """Return pending commands and mark them done (the prober calls this)."""
    # Read-then-write: take the write lock first, or a dashboard commit in between makes
    # SQLite fail at once with "database is locked" (a stale snapshot cannot be upgraded).
    with write_transaction(db):
        rows = list(db.query("SELECT id, command, target FROM commands WHERE done_at IS NULL"))
        if rows:
            db.execute(
                f"UPDATE commands SET done_at = ? WHERE id IN ({','.join('?' * len(rows))})",
                [now_iso(), *[r["id"] for r in rows]],
            )
    return [Command(r["id"], r["command"], r["target"]) for r in rows]


def command_done(db: sqlite_utils.Database, command_id: int) -> bool:
    """True once the prober has taken the command."""
    rows = list(db.query("SELECT done_at FROM commands WHERE id = ?", [command_id]))
    return bool(rows and rows[0]["done_at"])


def set_target_paused(db: sqlite_utils.Database, name: str | None, paused: bool) -> None:
    """Mark one target (or all, when ``name`` is None) paused or resumed in the published list."""
    with write_transaction(db):
        if name is None:
            db.execute("UPDATE targets SET paused = ?", [int(paused)])
        else:
            db.execute("UPDATE targets SET paused = ? WHERE name = ?", [int(paused), name])

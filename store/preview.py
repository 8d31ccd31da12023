"""The dashboard's first table: the published targets, before anything heavy is loaded.

A full read (:mod:`store.reader`) needs the query modules, sqlite-utils and the config models
(pydantic): about half a second of imports before the first figure. The targets the prober
published are one small table, read here with the standard library's ``sqlite3`` alone, so the
dashboard can draw its table of names at once and fill in the figures when the first snapshot
lands. Nothing is written, created or migrated.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store.summary import TargetSummary

_SQL = (
    "SELECT name, provider, model, group_name, interval_s, configured, paused, "
    "effective_interval_s, budget_note FROM targets ORDER BY rowid"
)


def published_summaries(path: Path | str) -> tuple[TargetSummary, ...]:
    """The published targets as summaries without figures, in config order.

    Their ``computed_at`` is None (nothing read yet) and so is their displayed state.

    Args:
        path: the database file.

    Returns:
        One summary per published target; empty when the file, its targets table or one of
        these columns does not exist yet, or the file cannot be read (the full read says why).
    """
    path = Path(path)
    if not path.is_file():
        return ()
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return ()
    try:
        rows = conn.execute(_SQL).fetchall()
    except sqlite3.Error:  # no targets table yet, an older schema, not a database
        return ()
    finally:
        conn.close()
    return tuple(
        TargetSummary(
            name=name,
            provider=provider,
            model=model,
            group_name=group_name,
            interval_s=interval_s,
            configured=bool(configured),
            paused=bool(paused),
            effective_interval_s=effective_interval_s,
            budget_note=budget_note or "",
        )
        for (
            name,
            provider,
            model,
            group_name,
            interval_s,
            configured,
            paused,
            effective_interval_s,
            budget_note,
        ) in rows
    )

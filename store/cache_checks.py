"""Prompt-caching check results in the database, and the text shown per target.

:func:`save_cache_check` stores one :class:`probes.cache_check.CacheCheckResult` (table
``cache_checks``, m010; its two requests are ordinary probe rows of kind ``cache_check``);
:func:`latest_cache_checks` reads the newest per target; :func:`cache_text` words it:
``cache ✔ 92 % read, TTFT −38 %, cost −71 %``, ``✘ not caching (0 of 4,200 tokens)``,
``– not supported``.
"""

from __future__ import annotations

import dataclasses

import sqlite_utils

from probes.cache_check import CacheCheckResult
from store.db import write_transaction

_COLUMNS = tuple(f.name for f in dataclasses.fields(CacheCheckResult))


def save_cache_check(db: sqlite_utils.Database, result: CacheCheckResult) -> int:
    """Store one check's verdict; returns its row id."""
    with write_transaction(db):
        table = db.table("cache_checks")
        table.insert(dataclasses.asdict(result))
        rowid = table.last_rowid
    return int(rowid or 0)


def latest_cache_checks(
    db: sqlite_utils.Database, target: str | None = None
) -> dict[str, CacheCheckResult]:
    """The newest check per target name (of ``target`` only, when given)."""
    only, params = (" AND c.target = ?", [target]) if target is not None else ("", [])
    rows = db.query(
        f"SELECT {', '.join(_COLUMNS)} FROM cache_checks c WHERE id = "
        "(SELECT id FROM cache_checks WHERE target = c.target ORDER BY started_at DESC, id DESC "
        f"LIMIT 1){only} ORDER BY target",
        params,
    )
    return {r["target"]: CacheCheckResult(**r) for r in rows}


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _change(saved: float | None) -> str:
    """A saving as a signed change: 0.38 saved reads ``−38 %``, −0.12 reads ``+12 %``."""
    if saved is None:
        return "?"
    change = -saved * 100
    if round(change) == 0:
        return "±0 %"
    return f"{'−' if change < 0 else '+'}{abs(change):.0f} %"


def cache_text(result: CacheCheckResult | None) -> str:
    """One line for a target's prompt caching (plain text; symbols carry the meaning).

    * ``cache ✔ 92 % read, TTFT −38 %, cost −71 %`` (cost ``?`` when unpriced)
    * ``✘ not caching (0 of 4,200 tokens)``
    * ``? cache not reported (4,200 tokens)``, ``? prefix too short (900 of 1,024 tokens)``,
      ``? check failed: …``
    * ``– not supported``; ``– not checked`` when there is no result.
    """
    if result is None:
        return "– not checked"
    if result.verdict == "not_supported":
        return "– not supported"
    if result.verdict == "failed":
        return f"? check failed: {result.message}"
    if result.verdict == "too_short":
        return f"? {result.message}"
    total = f"{result.input_tokens:,}" if result.input_tokens is not None else "?"
    if result.verdict == "not_reported":
        return f"? cache not reported ({total} tokens)"
    if result.verdict == "not_caching":
        return f"✘ not caching (0 of {total} tokens)"
    share = _pct(result.cached_share) if result.cached_share is not None else "?"
    return (
        f"cache ✔ {share} read, TTFT {_change(result.ttft_saved)}, "
        f"cost {_change(result.cost_saved)}"
    )

"""Stream probe history out as CSV (RFC 4180, UTF-8) or JSON Lines, never loading it whole.

Columns are the public schema (``probes.record.FIELD_NAMES``), in order. Text that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) is
prefixed with ``'`` (OWASP "CSV injection"); newlines inside messages stay, quoted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import sqlite_utils

from probes.record import FIELD_NAMES
from store.db import BOOL_FIELDS, TEXT_FIELDS
from store.queries import iso

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> str:
    """Turn ``24h``, ``7d``, ``30m`` or an ISO date/time into a stored-format UTC bound.

    Raises:
        ValueError: for anything else, with an example of what is accepted.
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        return iso(now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)]))
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use a duration like 30m, 24h, 7d or an ISO date "
            "like 2026-11-30 or 2026-11-30T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return iso(when)


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which rows to export. Bounds are stored-format UTC strings (see :func:`parse_since`)."""

    since: str | None = None
    until: str | None = None
    targets: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    status: str | None = None


def iter_rows(db: sqlite_utils.Database, flt: ExportFilter) -> Iterator[dict[str, Any]]:
    """Yield matching probe rows in time order, one at a time (a cursor, not a list)."""
    where: list[str] = []
    params: list[Any] = []
    if flt.since:
        where.append("started_at >= ?")
        params.append(flt.since)
    if flt.until:
        where.append("started_at < ?")
        params.append(flt.until)
    if flt.targets:
        where.append(f"target IN ({','.join('?' * len(flt.targets))})")
        params.extend(flt.targets)
    if flt.providers:
        where.append(f"provider IN ({','.join('?' * len(flt.providers))})")
        params.extend(flt.providers)
    if flt.status:
        where.append("status = ?")
        params.append(flt.status)
    sql = f"SELECT {', '.join(FIELD_NAMES)} FROM probes"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at, id"
    yield from db.query(sql, params)


def _neutralise(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write rows as CSV with a header; returns the number of data rows.

    ``out`` should be opened with ``newline=""`` so the CSV module controls line endings.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELD_NAMES)
    count = 0
    for row in rows:
        cells = []
        for name in FIELD_NAMES:
            value = row[name]
            if value is None:
                cells.append("")
            elif name in BOOL_FIELDS:
                cells.append("true" if value else "false")
            elif name in TEXT_FIELDS and isinstance(value, str):
                cells.append(_neutralise(value))
            else:
                cells.append(value)
        writer.writerow(cells)
        count += 1
    return count


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write rows as JSON Lines (booleans as JSON booleans); returns the row count."""
    count = 0
    for row in rows:
        for name in BOOL_FIELDS:
            if row[name] is not None:
                row[name] = bool(row[name])
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count

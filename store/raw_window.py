"""A short window's figures and trend from raw probe rows (one range scan), and each target's
newest probe.

Windows up to :data:`store.windows.RAW_WINDOW_MAX_S` read every probe row since the window
start through ``probes(started_at)`` and tally them exactly (:mod:`store.tally`): percentiles
are linear-interpolated over the real values.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from probes.timestamps import parse_iso
from store.tally import CANARY_SQL, TALLY_COLUMNS, WindowFigures, tally_rows
from store.trends import Trend, TrendSpec, bucket_sql, raw_trend
from store.windows import SERIES_POINTS, target_filter

#: What the newest probe shows beyond the tally's columns (:meth:`LastProbe.from_row`).
_LAST_COLUMNS = (
    "started_at, error_message, ratelimit_remaining_requests, ratelimit_remaining_tokens, "
    "ratelimit_reset_requests_s, ratelimit_reset_tokens_s"
)
#: A raw row as read by :func:`last_probe`: the tally's columns (status, error kind and TTFT
#: among them), the target, then :data:`_LAST_COLUMNS`.
_COLUMNS = f"{TALLY_COLUMNS}, target, {_LAST_COLUMNS}"
_TARGET = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class LastProbe:
    """A target's newest probe, whatever its age.

    Attributes:
        started_at: its UTC start (stored format).
        status: ``ok`` or ``error``.
        error_kind: its failure class, or None.
        error_message: its (redacted) message, or None.
        ttft_ms: its TTFT, ms, or None.
        ratelimit_remaining_requests: requests left in the provider's window, as it reported.
        ratelimit_remaining_tokens: tokens left.
        ratelimit_reset_requests_s: seconds until the requests window resets.
        ratelimit_reset_tokens_s: seconds until the tokens window resets.
        age_s: seconds from its start to the time the window was read.
    """

    started_at: str
    status: str
    error_kind: str | None
    error_message: str | None
    ttft_ms: float | None
    ratelimit_remaining_requests: int | None
    ratelimit_remaining_tokens: int | None
    ratelimit_reset_requests_s: float | None
    ratelimit_reset_tokens_s: float | None
    age_s: float

    @classmethod
    def from_row(cls, row: Sequence[Any], now: datetime) -> LastProbe:
        """From a row of ``_COLUMNS``, aged at ``now``."""
        status, kind, ttft = row[0], row[1], row[2]
        started_at, message, requests, tokens, requests_s, tokens_s = row[_TARGET + 1 :]
        return cls(
            started_at=started_at,
            status=status,
            error_kind=kind,
            error_message=message,
            ttft_ms=ttft,
            ratelimit_remaining_requests=requests,
            ratelimit_remaining_tokens=tokens,
            ratelimit_reset_requests_s=requests_s,
            ratelimit_reset_tokens_s=tokens_s,
            age_s=(now - parse_iso(str(started_at))).total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class WindowPart:
    """What one window source gives for a target.

    Attributes:
        figures: the window's figures.
        series_ms: TTFT series, oldest first: per probe for raw windows (None for a failure),
            the mean per hour (per day beyond 2 days) for rollup windows.
        last: the newest probe when the window read it (raw windows), else None.
        trend: the window in equal time buckets when it was read from the same rows (raw
            windows asked for one), else None.
    """

    figures: WindowFigures
    series_ms: tuple[float | None, ...]
    last: LastProbe | None = None
    trend: Trend | None = None


#: Where :func:`raw_window`'s rows carry their trend bucket and their id (after the tally's
#: columns and the target).
_BUCKET, _ID = _TARGET + 1, _TARGET + 2
#: Newest probes read per query (well under SQLite's bound-parameter limit).
_IDS_PER_QUERY = 500


def raw_window(
    db: sqlite_utils.Database,
    since: str,
    now: datetime,
    names: Collection[str] | None = None,
    trend: TrendSpec | None = None,
) -> dict[str, WindowPart]:
    """Every target's figures over its probes started at or after ``since`` (stored format).

    One range scan in time order reads only the tally's columns, the target, the trend bucket
    and the row id; what the newest probe alone shows (its message, rate-limit headers) is
    read afterwards for one row per target. The trend comes from the same rows, so a raw
    window is read once.

    Args:
        db: an open database.
        since: the window start.
        now: the current UTC time (the newest probe's age).
        names: only these targets (default: every target with probes). With all of them,
            pass None: the time index is then read alone, not once per target.
        trend: the trend's buckets (their start should be ``since``); None for no trend.

    Returns:
        Target name -> its part; targets without probes in the window are absent.
    """
    where, params = target_filter("target", names)
    bucket, bucket_params = (bucket_sql("started_at"), trend.params()) if trend else ("NULL", [])
    sql = (
        f"SELECT {TALLY_COLUMNS}, target, {bucket}, id FROM probes "
        f"WHERE started_at >= ? AND {CANARY_SQL}{where} ORDER BY started_at"
    )
    rows_by: dict[str, list[tuple[Any, ...]]] = {}
    for row in db.conn.execute(sql, [*bucket_params, since, *params]):
        rows = rows_by.get(row[_TARGET])
        if rows is None:
            rows_by[row[_TARGET]] = [row]
        else:
            rows.append(row)
    newest = _newest(db, [rows[-1][_ID] for rows in rows_by.values()])
    parts = {}
    for name, rows in rows_by.items():
        last = rows[-1]
        parts[name] = WindowPart(
            figures=tally_rows(rows, exact=True).figures(),
            series_ms=tuple(
                float(r[2]) if r[0] == "ok" and r[2] is not None else None
                for r in rows[-SERIES_POINTS:]
            ),
            last=LastProbe.from_row((*last[: _TARGET + 1], *newest[last[_ID]]), now),
            trend=raw_trend(trend, rows, _BUCKET) if trend else None,
        )
    return parts


def _newest(db: sqlite_utils.Database, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """:data:`_LAST_COLUMNS` of the given probe ids, by id."""
    out: dict[int, tuple[Any, ...]] = {}
    for i in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[i : i + _IDS_PER_QUERY]
        for row in db.conn.execute(
            f"SELECT id, {_LAST_COLUMNS} FROM probes WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            out[row[0]] = row[1:]
    return out


def last_probe(db: sqlite_utils.Database, name: str, now: datetime) -> LastProbe | None:
    """A target's newest canary probe, whatever its age (None when it has none)."""
    row = db.conn.execute(
        f"SELECT {_COLUMNS} FROM probes WHERE target = ? AND {CANARY_SQL} "
        "ORDER BY started_at DESC LIMIT 1",
        [name],
    ).fetchone()
    return LastProbe.from_row(row, now) if row else None

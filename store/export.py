"""Stream history out as CSV (RFC 4180, UTF-8) or JSON Lines, never loading it whole.

Tables (``--table``): ``probes`` (the public schema ``probes.record.FIELD_NAMES``, in
order), ``rollups-minute`` / ``rollups-hour`` / ``rollups-day`` (one row per target and UTC
bucket, percentiles from the histograms), ``incidents`` (state changes) and ``monitor-gaps``
(when the monitor was blind). Units are in the column names (``_ms``, ``_s``, ``_usd``,
``_tps``, ``_tokens``); timestamps are UTC ISO 8601. In CSV, text that can hold a comma, a
quote or a line break is quoted; text that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``, tab or CR) is prefixed with ``'`` (OWASP "CSV injection");
line breaks inside messages stay, quoted, as LF (CRLF and CR become LF, as in a spreadsheet
cell); NUL becomes U+FFFD; other control characters and bidi overrides are escaped (``\x1b``,
``\u202e``, see ``probes.text.printable``) so CSV printed to a terminal cannot drive it (text
is cleaned when probed; on export the cells of :data:`PROVIDER_TEXT` are checked again, for
rows stored before that); a cell holds at most
:data:`CSV_CELL_MAX_CHARS` characters. JSON Lines never hold ``Infinity`` or ``NaN`` (a
non-finite number is ``null``). Rows come from one cursor in chunks of a few thousand: memory
stays flat whatever the history size. The probes table's CSV lines are
formatted by SQLite (one ``printf()`` per row, as fast as ``sqlite3 -csv`` on the same rows,
bytes from SQLite straight to the file); the other tables go through :func:`write_table_csv`,
with the same cells.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

import sqlite_utils

from probes.record import FIELD_NAMES
from probes.text import cap, printable
from probes.timestamps import iso, parse_iso_utc
from store import histogram
from store.db import BOOL_FIELDS, TEXT_FIELDS, column_type, open_reader

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Longest CSV cell, characters (a spreadsheet cell holds 32,767); longer text is cut, "…".
CSV_CELL_MAX_CHARS = 32_000
#: Columns whose text came from a provider. Records are cleaned when probed
#: (``probes.sanitize``); rows stored before that can still hold raw control characters or
#: long text, so these cells (and any text not known to be ours or validated config, see
#: :data:`OWN_TEXT`, :data:`CONFIG_TEXT`) are checked on export too.
PROVIDER_TEXT = frozenset({"error_message", "request_id", "finish_reason", "upstream_provider"})
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
        when = parse_iso_utc(text)
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use a duration like 30m, 24h, 7d or an ISO date "
            "like 2026-11-30 or 2026-11-30T12:00:00Z"
        ) from None
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
    where, params = _where(_table("probes"), flt)
    sql = f"SELECT {', '.join(FIELD_NAMES)} FROM probes{where} ORDER BY started_at, id"
    yield from db.query(sql, params)


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write probe rows (dicts, as from :func:`iter_rows`) as CSV with a header; returns the
    number of data rows. ``out`` should be opened with ``newline=""``."""
    return write_table_csv(
        (tuple(r[n] for n in FIELD_NAMES) for r in rows), TABLES["probes"].columns, out
    )


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write probe rows as JSON Lines (booleans as JSON booleans); returns the row count."""
    return write_table_jsonl(
        (tuple(r[n] for n in FIELD_NAMES) for r in rows), TABLES["probes"].columns, out
    )


# ---- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """An exported column.

    Attributes:
        name: header name (units in the name).
        kind: ``text`` (neutralised in CSV), ``bool`` (true/false), or ``number``.
    """

    name: str
    kind: str = "number"


@dataclass(frozen=True, slots=True)
class Table:
    """How to read one exportable table.

    Attributes:
        name: ``--table`` value.
        sql: SELECT list and FROM clause.
        time_column: column the time filters apply to.
        order: ORDER BY clause.
        columns: output columns (after ``convert``).
        convert: turns a database row into output values, or None for the identity.
        has_status: whether ``--status`` applies.
        has_provider: whether the table has a provider column (else via ``targets``).
    """

    name: str
    sql: str
    time_column: str
    order: str
    columns: tuple[Column, ...]
    convert: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
    has_status: bool = False
    has_provider: bool = True


def _probe_column(name: str) -> Column:
    if name in BOOL_FIELDS:
        return Column(name, "bool")
    return Column(name, "text" if name in TEXT_FIELDS else "number")


_ROLLUP_SELECT = (
    "bucket, target, provider, model, probes, ok, errors, ttft_ms_hist, total_ms_hist, "
    "decode_tps_hist, ttft_ms_sum, ttft_n, total_ms_sum, total_n, input_tokens, "
    "output_tokens, cache_read_tokens, cost_usd"
)


def _rollup_converter(bucket_s: int) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        (bucket, target, provider, model, probes, ok, errors, th, tt, tp) = row[:10]
        (ttft_sum, ttft_n, total_sum, total_n, inp, out, cache, cost) = row[10:]
        ttft, total, tps = histogram.loads(th), histogram.loads(tt), histogram.loads(tp)
        return (
            bucket,
            bucket_s,
            target,
            provider,
            model,
            probes,
            ok,
            probes - ok,
            errors or "",
            *histogram.quantiles(ttft, (50, 95, 99)),
            ttft_sum / ttft_n if ttft_n else None,
            *histogram.quantiles(total, (50, 95, 99)),
            total_sum / total_n if total_n else None,
            histogram.quantile(tps, 50),
            inp,
            out,
            cache,
            cost,
            th or "",
        )

    return convert


_ROLLUP_COLUMNS = (
    Column("bucket_start", "text"),
    Column("bucket_s"),
    Column("target", "text"),
    Column("provider", "text"),
    Column("model", "text"),
    Column("probes"),
    Column("ok"),
    Column("errors"),
    Column("errors_by_kind_json", "text"),
    Column("ttft_ms_p50"),
    Column("ttft_ms_p95"),
    Column("ttft_ms_p99"),
    Column("ttft_ms_mean"),
    Column("total_ms_p50"),
    Column("total_ms_p95"),
    Column("total_ms_p99"),
    Column("total_ms_mean"),
    Column("decode_tps_p50"),
    Column("input_tokens"),
    Column("output_tokens"),
    Column("cache_read_tokens"),
    Column("cost_usd"),
    Column("ttft_ms_histogram_json", "text"),
)

_INCIDENT_COLUMNS = (
    Column("id"),
    Column("target", "text"),
    Column("from_state", "text"),
    Column("to_state", "text"),
    Column("started_at", "text"),
    Column("ended_at", "text"),
    Column("duration_s"),
    Column("cause_kind", "text"),
    Column("cause_message", "text"),
    Column("probes"),
    Column("failures"),
)

_GAP_COLUMNS = (
    Column("id"),
    Column("started_at", "text"),
    Column("ended_at", "text"),
    Column("duration_s"),
    Column("cause", "text"),
    Column("message", "text"),
    Column("probes"),
)

TABLES: dict[str, Table] = {
    "probes": Table(
        "probes",
        f"SELECT {', '.join(FIELD_NAMES)} FROM probes",
        "started_at",
        "started_at, id",
        tuple(_probe_column(n) for n in FIELD_NAMES),
        has_status=True,
    ),
    **{
        f"rollups-{level}": Table(
            f"rollups-{level}",
            f"SELECT {_ROLLUP_SELECT} FROM rollup_{level}",
            "bucket",
            "bucket, target",
            _ROLLUP_COLUMNS,
            _rollup_converter(seconds),
        )
        for level, seconds in (("minute", 60), ("hour", 3600), ("day", 86400))
    },
    "incidents": Table(
        "incidents",
        "SELECT " + ", ".join(c.name for c in _INCIDENT_COLUMNS) + " FROM incidents",
        "started_at",
        "started_at, id",
        _INCIDENT_COLUMNS,
        has_provider=False,
    ),
    "monitor-gaps": Table(
        "monitor-gaps",
        "SELECT id, started_at, ended_at, (julianday(ended_at) - julianday(started_at)) * 86400.0,"
        " cause, message, probes FROM monitor_gaps",
        "started_at",
        "started_at, id",
        _GAP_COLUMNS,
        tuple,  # computed duration: not the SQL fast path
        has_provider=False,
    ),
}


def _where(table: Table, flt: ExportFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if flt.since:
        where.append(f"{table.time_column} >= ?")
        params.append(flt.since)
    if flt.until:
        where.append(f"{table.time_column} < ?")
        params.append(flt.until)
    if flt.targets and table.name != "monitor-gaps":
        where.append(f"target IN ({','.join('?' * len(flt.targets))})")
        params.extend(flt.targets)
    if flt.providers:
        marks = ",".join("?" * len(flt.providers))
        if table.has_provider:
            where.append(f"provider IN ({marks})")
        elif table.name == "incidents":
            where.append(f"target IN (SELECT name FROM targets WHERE provider IN ({marks}))")
        else:
            raise ValueError(f"--provider does not apply to --table {table.name}")
        params.extend(flt.providers)
    if flt.status:
        if not table.has_status:
            raise ValueError(f"--status applies to --table probes only, not {table.name}")
        where.append("status = ?")
        params.append(flt.status)
    return (" WHERE " + " AND ".join(where)) if where else "", params


def count_rows(db: sqlite_utils.Database, table: str, flt: ExportFilter) -> int:
    """How many rows :func:`iter_table` would yield (for a progress bar).

    Raises:
        ValueError: for an unknown table or a filter that does not apply to it.
    """
    t = _table(table)
    where, params = _where(t, flt)
    sql = t.sql.split(" FROM ", 1)[1]
    return int(db.conn.execute(f"SELECT count(*) FROM {sql}{where}", params).fetchone()[0])


def _table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; one of: {', '.join(TABLES)}") from None


def iter_table(
    db: sqlite_utils.Database, table: str, flt: ExportFilter
) -> Iterator[tuple[Any, ...]]:
    """Yield the rows of ``table`` matching ``flt`` as tuples in ``TABLES[table].columns``
    order, in time order, straight from one cursor.

    Raises:
        ValueError: for an unknown table or a filter that does not apply to it.
    """
    t = _table(table)
    where, params = _where(t, flt)
    cursor = db.conn.execute(f"{t.sql}{where} ORDER BY {t.order}", params)
    cursor.arraysize = 1000
    convert = t.convert
    while True:
        chunk = cursor.fetchmany()
        if not chunk:
            return
        if convert is None:
            yield from chunk
        else:
            for row in chunk:
                yield convert(row)


def write_table_csv(rows: Iterable[Sequence[Any]], columns: Sequence[Column], out: TextIO) -> int:
    """Write rows as RFC 4180 CSV (CRLF, a header, formula-like text neutralised).

    Args:
        rows: value tuples in ``columns`` order.
        columns: the columns.
        out: a text stream opened with ``newline=""`` (UTF-8 for files).

    Returns:
        The number of data rows.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    text = [i for i, c in enumerate(columns) if c.kind == "text"]
    flags = [i for i, c in enumerate(columns) if c.kind == "bool"]
    counter = [0]

    def cells() -> Iterator[list[Any]]:
        for row in rows:
            values = list(row)
            for i in text:
                v = values[i]
                if v:
                    values[i] = csv_text(v)
            for i in flags:
                v = values[i]
                if v is not None:
                    values[i] = "true" if v else "false"
            counter[0] += 1
            yield values

    writer.writerows(cells())
    return counter[0]


def csv_text(value: str) -> str:
    """A text cell as exported to CSV: NUL (which no spreadsheet cell keeps) becomes U+FFFD,
    CRLF and CR become LF (a spreadsheet cell's line break), other control and bidi characters
    are escaped (``\\x1b``), the text is cut to :data:`CSV_CELL_MAX_CHARS`, and text that a
    spreadsheet would run as a formula gets a leading ``'``."""
    v = value
    if "\r" in v or "\0" in v:
        v = v.replace("\0", "\ufffd").replace("\r\n", "\n").replace("\r", "\n")
    v = cap(printable(v, newlines=True, tabs=True), CSV_CELL_MAX_CHARS)
    return "'" + v if value[0] in _FORMULA_CHARS else v


_FORMULA_CHARS = frozenset(_FORMULA_START)


def write_table_jsonl(rows: Iterable[Sequence[Any]], columns: Sequence[Column], out: TextIO) -> int:
    """Write rows as JSON Lines, one object per row with the column names as keys (booleans as
    JSON booleans, a non-finite number as null, text as is: JSON escapes control characters
    and has no formula risk); returns the row count."""
    names = [c.name for c in columns]
    flags = [i for i, c in enumerate(columns) if c.kind == "bool"]
    numbers = [i for i, c in enumerate(columns) if c.kind == "number"]
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    count = 0
    for row in rows:
        values = list(row)
        for i in flags:
            if values[i] is not None:
                values[i] = bool(values[i])
        for i in numbers:
            v = values[i]
            if isinstance(v, float) and not math.isfinite(v):
                values[i] = None  # JSON has no Infinity or NaN
        out.write(dumps(dict(zip(names, values, strict=True))) + "\n")
        count += 1
    return count


class Progress:
    """A plain-text progress line on a terminal stream: ``12,345 / 1,000,000 rows  1 %``.

    Args:
        stream: where to draw it (stderr); nothing is drawn unless it is a terminal.
        total: expected rows, or None when unknown.
        every_s: minimum seconds between redraws.
    """

    def __init__(self, stream: TextIO, total: int | None, every_s: float = 0.2) -> None:
        self.stream = stream
        self.total = total
        self.every_s = every_s
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0
        self._start = time.monotonic()

    def wrap(self, rows: Iterable[Any]) -> Iterator[Any]:
        """Yield ``rows`` unchanged, redrawing the line as they pass."""
        if not self.enabled:
            yield from rows
            return
        n = 0
        for n, row in enumerate(rows, 1):
            if not n % 1000:
                self._draw(n)
            yield row
        self._draw(n, final=True)

    def wrap_chunks(self, chunks: Iterable[list[Any]]) -> Iterator[list[Any]]:
        """Yield lists of rows unchanged, redrawing the line as they pass."""
        n = 0
        for chunk in chunks:
            n += len(chunk)
            self._draw(n)
            yield chunk
        self._draw(n, final=True)

    def _draw(self, n: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        rate = n / max(now - self._start, 1e-6)
        line = f"{n:,} rows"
        if self.total:
            line += f" / {self.total:,}  {100 * n / self.total:3.0f} %"
        line += f"  {rate:,.0f} rows/s"
        self.stream.write("\r" + line + ("\n" if final else ""))
        self.stream.flush()


def export(
    db: sqlite_utils.Database,
    out: TextIO,
    *,
    table: str = "probes",
    fmt: str = "csv",
    flt: ExportFilter | None = None,
    progress: TextIO | None = None,
) -> int:
    """Stream one table to ``out`` as CSV or JSON Lines.

    Args:
        db: an open database (a reader: nothing is written).
        out: text stream (``newline=""`` for CSV).
        table: a key of :data:`TABLES`.
        fmt: ``csv`` or ``jsonl``.
        flt: row filter.
        progress: stream for a progress line (drawn only if it is a terminal).

    Returns:
        Rows written.

    Raises:
        ValueError: unknown table or format, or a filter that does not apply.
    """
    flt = flt or ExportFilter()
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}: csv or jsonl")
    t = _table(table)
    show = progress is not None and getattr(progress, "isatty", lambda: False)()
    total = count_rows(db, table, flt) if show else None
    if t.convert is None:
        # Fast path: SQLite formats each cell (neutralising, booleans, or the whole JSON
        # object), so Python only moves finished rows from the cursor to the writer.
        where, params = _where(t, flt)
        source = t.sql.split(" FROM ", 1)[1]
        if fmt == "csv":
            line = _csv_line_sql(t.columns)
        else:
            pairs = ", ".join(f"'{c.name}', {_json_expr(c)}" for c in t.columns)
            line = f"json_object({pairs}) || char(10)"
        raw = _utf8_bytes_under(out, db.conn)
        if raw is not None:
            # Bytes straight from SQLite to the file: no decoding into str and encoding back.
            line = f"CAST(({line}) AS BLOB)"
        sql = f"SELECT {line} FROM {source}{where} ORDER BY {t.order}"
        _register(db.conn)
        cursor = db.conn.execute(sql, params)
        cursor.arraysize = _CHUNK_ROWS
        chunks: Iterable[list[tuple[Any, ...]]] = iter(cursor.fetchmany, [])
        if show and progress is not None:
            chunks = Progress(progress, total).wrap_chunks(chunks)
        count = 0
        if fmt == "csv":
            out.write(",".join(c.name for c in t.columns) + "\r\n")
        if raw is None:
            for chunk in chunks:
                out.write("".join([row[0] for row in chunk]))
                count += len(chunk)
            return count
        out.flush()  # the header, before the bytes that follow it
        for chunk in chunks:
            raw.write(b"".join([row[0] for row in chunk]))
            count += len(chunk)
        return count
    rows: Iterable[tuple[Any, ...]] = iter_table(db, table, flt)
    if show and progress is not None:
        rows = Progress(progress, total).wrap(rows)
    write = write_table_csv if fmt == "csv" else write_table_jsonl
    return write(rows, t.columns, out)


def _utf8_bytes_under(out: TextIO, conn: sqlite3.Connection) -> BinaryIO | None:
    """The byte stream under ``out`` when both it and the database are UTF-8 (a file opened
    with ``encoding="utf-8"``, stdout reconfigured so), else None (a ``StringIO``)."""
    buffer = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None)
    if buffer is None or not isinstance(encoding, str):
        return None
    try:
        if codecs.lookup(encoding).name != "utf-8":
            return None
    except LookupError:
        return None
    if str(conn.execute("PRAGMA encoding").fetchone()[0]).upper() != "UTF-8":
        return None
    return cast(BinaryIO, buffer)


_CHUNK_ROWS = 4000
# printf() takes at most 127 arguments (SQLITE_MAX_FUNCTION_ARG before SQLite 3.48), so a line
# with more is built from several printf() calls.
_PRINTF_MAX_ARGS = 120


#: Text columns that inferwatch fills itself from fixed vocabularies (timestamps, states, error
#: kinds, usage and price sources, probe kinds): never empty, and never a comma, quote, line
#: break, control character or formula start, so their CSV cell is the value as it is, unquoted
#: (RFC 4180 quotes what needs it), and NULL an empty cell.
OWN_TEXT = frozenset({"started_at", "status", "error_kind", "usage_source", "cost_source", "kind"})
#: Own text that is a comma-separated list (of field names): quoted, otherwise unchecked.
OWN_LIST_TEXT = frozenset({"out_of_range_fields"})
#: Text columns from config values that are validated printable when the config loads
#: (target names and models: ``probes.config.check_label``; vantages: a name pattern;
#: provider names: the registry's): a formula start is all their CSV cell may need changed.
CONFIG_TEXT = frozenset({"target", "provider", "model", "vantage"})
#: A GLOB class of the characters that make text a formula, for a cell's first character
#: (``-`` first: a literal in a class).
_FORMULA_GLOB = "[-" + "".join(ch for ch in _FORMULA_START if ch != "-") + "]*"


def _csv_line_sql(columns: Sequence[Column]) -> str:
    """SQL giving one finished RFC 4180 line (CRLF included) per row, with the cells of
    :func:`write_table_csv`.

    One ``printf()`` formats the whole line in C, one argument per cell. (The ``a || ',' ||
    b ...`` chain with ``replace()`` and ``coalesce()`` per cell that this replaced ran at ~60k
    rows/s.) Numbers are SQLite's text for the stored value (a REAL keeps 15 significant
    digits, as a spreadsheet does); ``sqlite3 -csv`` prints the same. Each text column is
    checked as much as what can be in it needs (every check is a function call per cell, and
    they were most of the export's time):

    * :data:`OWN_TEXT` (written by inferwatch from fixed vocabularies): ``%s``, unchecked and
      unquoted (nothing in them needs quotes); NULL is an empty cell;
    * :data:`OWN_LIST_TEXT`: ``'"' || T || '"'`` (NULL stays NULL: an empty cell);
    * :data:`CONFIG_TEXT` (validated printable when the config loads): a formula start gets
      a ``'`` (:func:`_formula_sql`), then ``"%w"`` (``%w`` doubles the ``"`` inside);
    * any other text (:data:`PROVIDER_TEXT` and whatever is not known to be clean):
      ``"%s"`` of :func:`_csv_text_sql`, which leaves no ``"`` undoubled.

    A NULL config or other text is ``""``: an empty text, as Python's csv module reads both.
    """
    cells: list[tuple[str, str]] = []
    for c in columns:
        n = c.name
        if c.kind == "text" and n in OWN_TEXT:
            cells.append(("%s", n))
        elif c.kind == "text" and n in OWN_LIST_TEXT:
            cells.append(("%s", f"'\"' || {n} || '\"'"))
        elif c.kind == "text" and n in CONFIG_TEXT:
            cells.append(('"%w"', f"coalesce({_formula_sql(n)}, '')"))
        elif c.kind == "text":
            cells.append(('"%s"', _csv_text_sql(n)))
        elif c.kind == "bool":
            cells.append(("%s", f"CASE WHEN {n} THEN 'true' WHEN NOT {n} THEN 'false' END"))
        else:
            cells.append(("%s", n))
    groups = [cells[i : i + _PRINTF_MAX_ARGS] for i in range(0, len(cells), _PRINTF_MAX_ARGS)]
    calls = []
    for i, group in enumerate(groups):
        fmt = ",".join(spec for spec, _ in group) + ("\r\n" if i == len(groups) - 1 else ",")
        calls.append(f"printf('{fmt}', {', '.join(arg for _, arg in group)})")
    return " || ".join(calls)


def _formula_sql(n: str) -> str:
    """SQL of text column ``n`` with a ``'`` before a formula start: every formula start sorts
    before ``A``, so most text is past the check after one comparison, the rest gets an
    anchored GLOB (a BLOB is compared as its text)."""
    return (
        f"CASE WHEN CAST({n} AS TEXT) < 'A' AND {n} GLOB '{_FORMULA_GLOB}' "
        f"THEN '''' || {n} ELSE {n} END"
    )


def _csv_text_sql(n: str) -> str:
    """SQL giving the cell of text column ``n`` (provider text, or text not known to be
    clean) as :func:`csv_text` makes it, with every ``"`` doubled, to be printed in quotes.

    The usual path returns the text itself after checks that are each one C call, none of
    them a pattern match per character (``GLOB '*[^ -~]*'`` costs ~180 instructions a
    character, these ~25 together):

    * ``json_quote()`` escapes every character below U+0020 (tab, CR and LF among them),
      ``"``, ``\\`` and NUL, so its length (in characters) is the text's bytes plus its two
      quotes only when it escaped nothing, and the text is at most the cap (``min()``: a
      longer text can never match);
    * the length in characters equals the length in bytes only for ASCII without NUL
      (``length()`` stops at a NUL). Both equalities are needed: alone, the first would let a
      ``"`` (one character more in JSON) and a two-byte character (one byte more than
      characters) cancel out;
    * no DEL (a one-character ``GLOB``: a ``strcspn()``), and no formula start (see
      :func:`_formula_sql`).

    Anything else (rare: text stored before probes were cleaned, a message quoting JSON, a
    BLOB, which sorts after every text) goes to :func:`csv_text` itself (``iw_csv_cell``, see
    :func:`_register`): SQLite's ``replace()`` cannot match NUL, and ``printf()`` would end
    the cell at it.
    """
    size = f"length(CAST({n} AS BLOB))"
    return (
        f"CASE WHEN {n} IS NULL THEN NULL "
        f"WHEN {n} < X'' AND length(json_quote({n})) = min({size}, {CSV_CELL_MAX_CHARS}) + 2 "
        f"AND length({n}) = {size} AND NOT {n} GLOB '*' || char(127) || '*' "
        f"AND ({n} >= 'A' OR NOT {n} GLOB '{_FORMULA_GLOB}') THEN {n} "
        f"ELSE iw_csv_cell({n}) END"
    )


def _csv_cell(value: str | bytes) -> str:
    """:func:`csv_text` with every ``"`` doubled, for a cell printed in quotes (a BLOB is read
    as UTF-8, an undecodable byte as U+FFFD)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return csv_text(value).replace('"', '""') if value else value


def _register(conn: sqlite3.Connection) -> None:
    """Make :func:`csv_text` callable from SQL as ``iw_csv_cell`` (quotes doubled)."""
    conn.create_function("iw_csv_cell", 1, _csv_cell, deterministic=True)


def _json_expr(c: Column) -> str:
    if c.kind == "bool":
        return (
            f"CASE WHEN {c.name} IS NULL THEN NULL WHEN {c.name} THEN json('true') "
            "ELSE json('false') END"
        )
    if c.name in _REAL_FIELDS:
        # SQLite's json_object() writes a stored infinity as Inf, which is not JSON.
        return f"CASE WHEN abs({c.name}) <= 1.7976931348623157e308 THEN {c.name} END"
    return c.name


_REAL_FIELDS = frozenset(n for n in FIELD_NAMES if column_type(n) is float)


def export_window(
    db_path: Path | str,
    out_path: Path | str,
    window_s: float,
    targets: Sequence[str] = (),
    *,
    fmt: str | None = None,
    now: datetime | None = None,
) -> int:
    """Export the probes of the last ``window_s`` seconds to a file (the dashboard's ``e``).

    Opens its own connection, so call it from a worker thread. The format follows the file
    suffix (``.jsonl`` gives JSON Lines, anything else CSV) unless ``fmt`` is given.

    Args:
        db_path: the database.
        out_path: file to write (created or replaced; parent directories created).
        window_s: seconds back from ``now``.
        targets: only these targets (empty: all).
        fmt: ``csv`` or ``jsonl``.
        now: the current UTC time (inject for tests).

    Returns:
        Rows written.

    Raises:
        OSError: when the file cannot be written.
        sqlite3.DatabaseError: when the database cannot be read.
    """
    now = now or datetime.now(UTC)
    out_path = Path(out_path)
    fmt = fmt or ("jsonl" if out_path.suffix.lower() in (".jsonl", ".ndjson") else "csv")
    flt = ExportFilter(since=iso(now - timedelta(seconds=window_s)), targets=tuple(targets))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_reader(db_path)
    try:
        tmp = out_path.with_name(out_path.name + ".part")
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            count = export(db, out, table="probes", fmt=fmt, flt=flt)
        tmp.replace(out_path)
    finally:
        db.close()
    return count

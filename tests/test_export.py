"""Export: CSV that Python's csv module and LibreOffice read to the same cells; JSONL; tables."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sqlite_utils

from store.db import open_db
from store.export import (
    CSV_CELL_MAX_CHARS,
    Column,
    ExportFilter,
    Progress,
    _csv_line_sql,
    _register,
    export,
    export_window,
    iter_rows,
    write_csv,
    write_table_csv,
)
from store.history import HistoryWriter, MonitoredTarget
from store.rollups import rollup_all
from tests.history_helpers import T0, record
from tui.cli import main

NASTY = [
    "plain message",
    'comma, and "double quotes" inside',
    "line one\nline two\r\nline three",
    "=SUM(1)",
    "+1",
    "-2",
    "@x",
    '=HYPERLINK("http://example.invalid","click")',
    "\ttab first",
    "ünïcödé ✓ 日本語",
    "trailing spaces   ",
    "nul\x00inside",
    "\r=CR first",
    "lone\rCR",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def history(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "x.db"
    db = open_db(path)
    w = HistoryWriter(db, [MonitoredTarget("t,1", "h1"), MonitoredTarget("t2", "h2")], T0)
    for i, message in enumerate(NASTY * 2):
        when = T0 + timedelta(minutes=i)
        w.store_probe(record("t,1", when, "error", "server_error", message))
        w.store_probe(record("t2", when, ttft=100.0 + i))
    rollup_all(db)
    db.close()
    yield path


def expected_cell(message: str) -> str:
    cell = message.replace("\x00", "\ufffd").replace("\r\n", "\n").replace("\r", "\n")
    return "'" + cell if message.startswith(FORMULA_START) else cell


def test_csv_round_trips_through_python_csv(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    assert main(["export", "--db", str(history), "-o", str(out), "--target", "t,1"]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"started_at,target,")
    assert b"\r\n" in raw
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["error_message"] for r in rows] == [expected_cell(m) for m in NASTY * 2]
    assert {r["target"] for r in rows} == {"t,1"}
    assert all(r["started_at"].endswith("Z") for r in rows)
    assert rows[0]["started_at"] == "2026-11-01T00:00:00.000Z"
    assert rows[0]["buffered"] == "false" and rows[0]["ttft_ms"] == ""


def _ods_cells(path: Path) -> list[list[tuple[str, str]]]:
    """Rows of ``(value_type, value)`` from an ODS file's content.xml (text joined by \\n)."""
    ns = {
        "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
        "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
        "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    }
    q = {k: "{" + v + "}" for k, v in ns.items()}

    def text_of(p: ElementTree.Element) -> str:
        parts = [p.text or ""]
        for child in p:
            if child.tag == q["text"] + "s":
                parts.append(" " * int(child.get(q["text"] + "c", "1")))
            elif child.tag == q["text"] + "tab":
                parts.append("\t")
            elif child.tag == q["text"] + "line-break":
                parts.append("\n")
            else:
                parts.append(text_of(child))
            parts.append(child.tail or "")
        return "".join(parts)

    root = ElementTree.fromstring(zipfile.ZipFile(path).read("content.xml"))
    rows = []
    for row in root.iter(q["table"] + "table-row"):
        cells: list[tuple[str, str]] = []
        for cell in row.findall(q["table"] + "table-cell"):
            repeat = int(cell.get(q["table"] + "number-columns-repeated", "1"))
            kind = cell.get(q["office"] + "value-type", "")
            if kind in ("float", "percentage", "currency"):
                value = cell.get(q["office"] + "value", "")
            elif kind == "boolean":
                value = cell.get(q["office"] + "boolean-value", "")
            else:
                value = "\n".join(text_of(p) for p in cell.findall(q["text"] + "p"))
            cells.extend([(kind, value)] * min(repeat, 100))
        rows.append(cells)
    return rows


def test_csv_opens_with_the_same_cells_in_libreoffice(history: Path, tmp_path: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip(
            "LibreOffice is not installed (apt-get install libreoffice-calc-nogui); "
            "the Python csv half of the round trip is tested separately"
        )
    out = tmp_path / "x.csv"
    assert main(["export", "--db", str(history), "-o", str(out)]) == 0
    with open(out, encoding="utf-8", newline="") as f:
        want = list(csv.reader(f))
    profile = tmp_path / "lo-profile"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--infilter=CSV:44,34,76,1",
            "--convert-to",
            "ods",
            "--outdir",
            str(tmp_path),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    got = _ods_cells(tmp_path / "x.ods")
    assert len(got) >= len(want)
    for r, (want_row, got_row) in enumerate(zip(want, got, strict=False)):
        got_row = got_row[: len(want_row)] + [("", "")] * (len(want_row) - len(got_row))
        for c, (w, (kind, g)) in enumerate(zip(want_row, got_row, strict=True)):
            where = f"row {r} column {want[0][c]}"
            if kind == "float":
                assert float(w) == pytest.approx(float(g), rel=1e-12), where
            elif kind == "boolean":  # LibreOffice reads true/false as booleans: same value
                assert g == w and w in ("true", "false"), where
            else:
                assert g == w, where
    messages = [row[want[0].index("error_message")] for row in want[1:]]
    assert "'=SUM(1)" in messages and "line one\nline two\nline three" in messages


def test_sql_and_python_csv_writers_give_the_same_cells(history: Path) -> None:
    """The probes table is formatted by SQLite (printf), other tables by csv.writer."""
    db = open_db(history, migrate=False)
    try:
        fast = io.StringIO(newline="")
        export(db, fast)
        slow = io.StringIO(newline="")
        write_csv(iter_rows(db, ExportFilter()), slow)
    finally:
        db.close()
    want = list(csv.reader(io.StringIO(slow.getvalue(), newline="")))
    got = list(csv.reader(io.StringIO(fast.getvalue(), newline="")))
    assert len(got) == len(want) == 1 + 4 * len(NASTY)
    for g_row, w_row in zip(got, want, strict=True):
        for g, w in zip(g_row, w_row, strict=True):
            try:
                assert float(g) == pytest.approx(float(w), rel=1e-14)
            except ValueError:
                assert g == w


def test_a_file_gets_the_bytes_a_text_stream_gets(history: Path, tmp_path: Path) -> None:
    """To a UTF-8 file the lines go as bytes from SQLite, to a StringIO as str: same output."""
    db = open_db(history, migrate=False)
    try:
        for fmt in ("csv", "jsonl"):
            path = tmp_path / f"x.{fmt}"
            with open(path, "w", encoding="utf-8", newline="") as out:
                n_file = export(db, out, fmt=fmt)
            text = io.StringIO(newline="")
            n_text = export(db, text, fmt=fmt)
            assert n_file == n_text == 4 * len(NASTY)
            assert path.read_bytes() == text.getvalue().encode("utf-8")
            assert "nul\ufffdinside" in text.getvalue() or fmt == "jsonl"
    finally:
        db.close()


def test_sql_csv_line_past_printf_argument_limit() -> None:
    """A table whose line needs more than one printf() (127 arguments at most, one a cell)."""
    columns = [Column(f"t{i}", "text") for i in range(130)] + [Column("n"), Column("b", "bool")]
    db = sqlite_utils.Database(memory=True)
    db.execute(f"CREATE TABLE w ({', '.join(c.name for c in columns)})")
    rows = [
        [f'v{i} "q", =x' if i % 3 else None for i in range(130)] + [1.5, 1],
        ["=a\r\nb"] * 130 + [None, 0],
    ]
    db.conn.executemany(f"INSERT INTO w VALUES ({', '.join('?' * len(columns))})", rows)
    _register(db.conn)
    sql = _csv_line_sql(columns)
    assert sql.count("printf(") == 2
    fast = "".join(line for (line,) in db.conn.execute(f"SELECT {sql} FROM w ORDER BY rowid"))
    slow = io.StringIO(newline="")
    write_table_csv(rows, columns, slow)
    got = list(csv.reader(io.StringIO(fast, newline="")))
    want = list(csv.reader(io.StringIO(slow.getvalue(), newline="")))[1:]
    assert got == want
    assert got[1][0] == "'=a\nb" and got[0][1] == 'v1 "q", =x' and got[0][-2:] == ["1.5", "true"]
    assert got[1][125] == "'=a\nb" and got[0][125] == 'v125 "q", =x'


def test_sql_csv_checks_each_text_column_as_its_content_needs() -> None:
    """Own vocabularies pass unchecked, config names get the formula guard, any other text
    the full one: every path gives the Python writer's cells (an ASCII text over the cap, a
    NUL after plain text, a tab or a multi-byte character, a formula start, a quote)."""
    columns = [
        Column("status", "text"),
        Column("error_kind", "text"),
        Column("model", "text"),
        Column("target", "text"),
        Column("request_id", "text"),
        Column("finish_reason", "text"),
        Column("cause_message", "text"),
    ]
    db = sqlite_utils.Database(memory=True)
    db.execute(f"CREATE TABLE w ({', '.join(c.name for c in columns)})")
    rows = [
        ["ok", None, "-m", '=t"1', "r" * (CSV_CELL_MAX_CHARS + 5), "stop", "plain"],
        ["error", "server_error", "m", "t2", "x\x00y", "\tstop", "été =x"],
        ["ok", None, "@m", "t3", "+1", None, "-2\r\n3"],
    ]
    db.conn.executemany(f"INSERT INTO w VALUES ({', '.join('?' * len(columns))})", rows)
    _register(db.conn)
    sql = _csv_line_sql(columns)
    fast = "".join(line for (line,) in db.conn.execute(f"SELECT {sql} FROM w ORDER BY rowid"))
    slow = io.StringIO(newline="")
    write_table_csv(rows, columns, slow)
    got = list(csv.reader(io.StringIO(fast, newline="")))
    assert got == list(csv.reader(io.StringIO(slow.getvalue(), newline="")))[1:]
    assert got[0][2:4] == ["'-m", "'=t\"1"] and got[1][4:6] == ["x\ufffdy", "'\tstop"]
    assert len(got[0][4]) == CSV_CELL_MAX_CHARS and got[2][4:] == ["'+1", "", "'-2\n3"]


def test_sql_csv_provider_text_checks_do_not_cancel_out() -> None:
    """Every provider text that needs a change leaves the SQL fast path: a quote beside a
    two-byte character (one more character in JSON, one more byte than characters), DEL,
    ESC, LF, a tab, NUL, text at and over the cap, each formula start, and a BLOB (which no
    inferwatch code stores, read as its UTF-8 text); clean text, empty text and NULL pass."""
    over = "y" * (CSV_CELL_MAX_CHARS + 1)
    texts = [
        '"\u00e9',
        'x"\u00e9y',
        "a\x7fb",
        "\x1b[31mred",
        "line\nbreak",
        "tab\there",
        "nul\x00x",
        "x" * CSV_CELL_MAX_CHARS,
        over,
        "\u00e9" * 3,
        "=1",
        "+1",
        "-1",
        "@x",
        "\t=1",
        "\r=1",
        "A=1",
        "req-42",
        "",
        None,
    ]
    columns = [Column("request_id", "text")]
    db = sqlite_utils.Database(memory=True)
    db.execute("CREATE TABLE w (request_id)")
    db.conn.executemany("INSERT INTO w VALUES (?)", [[t] for t in texts])
    db.conn.executemany("INSERT INTO w VALUES (?)", [[b'=cmd"\xc3\xa9'], [b"plain"]])
    _register(db.conn)
    sql = _csv_line_sql(columns)
    fast = "".join(line for (line,) in db.conn.execute(f"SELECT {sql} FROM w ORDER BY rowid"))
    got = [row[0] for row in csv.reader(io.StringIO(fast, newline=""))]
    slow = io.StringIO(newline="")
    write_table_csv([[t] for t in texts], columns, slow)
    want = [row[0] if row else "" for row in csv.reader(io.StringIO(slow.getvalue(), newline=""))]
    assert got[: len(texts)] == want[1:]
    assert got[:3] == ['"\u00e9', 'x"\u00e9y', "a\\x7fb"]
    assert got[3] == "\\x1b[31mred" and got[6] == "nul\ufffdx"
    assert (
        got[7] == "x" * CSV_CELL_MAX_CHARS and got[8] == over[: CSV_CELL_MAX_CHARS - 1] + "\u2026"
    )
    assert got[10:17] == ["'=1", "'+1", "'-1", "'@x", "'\t=1", "'\n=1", "A=1"]
    assert got[len(texts) :] == ["'=cmd\"\u00e9", "plain"]


def test_jsonl_keeps_text_as_is(history: Path) -> None:
    db = open_db(history, migrate=False)
    buf = io.StringIO()
    n = export(db, buf, fmt="jsonl", flt=ExportFilter(status="error"))
    db.close()
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert n == len(rows) == len(NASTY) * 2
    assert [r["error_message"] for r in rows] == NASTY * 2
    assert rows[0]["buffered"] is False


def test_filters_and_other_tables(history: Path) -> None:
    db = open_db(history, migrate=False)
    try:

        def rows(table: str, **kw: object) -> list[dict[str, str]]:
            buf = io.StringIO(newline="")
            export(db, buf, table=table, flt=ExportFilter(**kw))  # type: ignore[arg-type]
            return list(csv.DictReader(io.StringIO(buf.getvalue(), newline="")))

        since = "2026-11-01T00:10:00.000Z"
        assert len(rows("probes", since=since)) == 2 * (len(NASTY) * 2 - 10)
        assert len(rows("probes", until=since, targets=("t2",))) == 10
        assert rows("probes", providers=("nope",)) == []
        hours = rows("rollups-hour")
        assert sum(int(r["probes"]) for r in hours) == 4 * len(NASTY)
        t2 = next(r for r in hours if r["target"] == "t2")
        assert 95 < float(t2["ttft_ms_p50"]) < 140 and t2["bucket_s"] == "3600"
        minutes = rows("rollups-minute", targets=("t,1",))
        assert json.loads(minutes[0]["errors_by_kind_json"]) == {"server_error": 1}
        incidents = rows("incidents")
        assert {(r["target"], r["to_state"]) for r in incidents} >= {("t2", "up"), ("t,1", "down")}
        assert rows("monitor-gaps") == []
        with pytest.raises(ValueError, match="--status"):
            rows("incidents", status="ok")
    finally:
        db.close()


def test_export_window_for_the_dashboard(history: Path, tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=len(NASTY) * 2)
    out = tmp_path / "sub" / "view.csv"
    n = export_window(history, out, 5 * 60, ["t2"], now=now)
    assert n == 5 and out.exists() and not (tmp_path / "sub" / "view.csv.part").exists()
    n = export_window(history, tmp_path / "view.jsonl", 3600, [], now=now)
    assert n == 4 * len(NASTY)
    assert json.loads((tmp_path / "view.jsonl").read_text().splitlines()[0])["target"]


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(history: Path) -> None:
    db = open_db(history, migrate=False)
    try:
        quiet = io.StringIO()
        export(db, io.StringIO(), progress=quiet)
        assert quiet.getvalue() == ""
        tty = FakeTty()
        export(db, io.StringIO(), progress=tty)
        n = 4 * len(NASTY)
        assert f"{n} rows / {n}" in tty.getvalue() and "100 %" in tty.getvalue()
    finally:
        db.close()
    line = FakeTty()
    list(Progress(line, None, every_s=0).wrap(range(2500)))
    assert "2,500 rows" in line.getvalue()

"""Issue #10, "no target ever stops silently" (probe side): numbers out of range and invalid
text from a provider become a storable, serialisable record, never an exception.

The exact inputs: a header ``x-ratelimit-remaining-requests: inf``, counts of ``1e30`` and
``10**20``, a lone surrogate (``"\\ud800"``) in an error message, a non-finite ``usage.cost``.
Each is served by the replay server on 127.0.0.1, probed, stored in a real SQLite file and
written as strict JSON; a real prober process then keeps probing all of them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from probes.headers import parse_ratelimit, parse_retry_after
from probes.record import FIELD_NAMES, ProbeRecord
from probes.runner import record_to_json
from probes.sanitize import sanitize_record
from store.db import insert_probe, open_db
from tests.probing import probe
from tests.servers import ReplayServer, Script, sse

SSE = {"Content-Type": "text/event-stream"}
TOKEN = sse({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
DONE = b"data: [DONE]\n\n"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def stream(usage: bytes, headers: dict[str, str] | None = None) -> Script:
    reads = [(0.0, TOKEN), (0.01, TOKEN), (0.02, usage), (0.03, DONE)]
    return Script(reads=reads, headers={**SSE, **(headers or {})}, headers_at=0.0)


def usage_event(raw: str) -> bytes:
    return b'data: {"choices":[],"usage":' + raw.encode() + b"}\n\n"


def strict_json(text: str) -> dict[str, Any]:
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)  # type: ignore[no-any-return]


CASES: dict[str, tuple[Script, str | None]] = {
    # name: (script, expected out_of_range_fields)
    "inf-header": (
        stream(
            usage_event('{"prompt_tokens":5,"completion_tokens":2}'),
            {"x-ratelimit-remaining-requests": "inf", "x-ratelimit-remaining-tokens": "1e30"},
        ),
        "ratelimit_remaining_requests,ratelimit_remaining_tokens",
    ),
    "count-10e20": (
        stream(usage_event('{"prompt_tokens":5,"completion_tokens":100000000000000000000}')),
        "output_tokens",
    ),
    "count-1e30-reset": (
        stream(
            usage_event('{"prompt_tokens":1e30,"completion_tokens":2}'),
            {"x-ratelimit-reset-requests": "1e30", "retry-after": "nan"},
        ),
        "ratelimit_reset_requests_s",
    ),
    "cost-inf": (
        stream(usage_event('{"prompt_tokens":5,"completion_tokens":2,"cost":1e400}')),
        "provider_cost_usd",
    ),
    "cost-nan": (
        stream(usage_event('{"prompt_tokens":5,"completion_tokens":2,"cost":NaN}')),
        "provider_cost_usd",
    ),
    "surrogate-500": (
        Script(
            status=500,
            body=b'{"error":{"message":"bad \\ud800 input","type":"server_error"}}',
            headers={"Content-Type": "application/json"},
            headers_at=0.0,
        ),
        None,
    ),
    "surrogate-in-stream": (
        Script(
            reads=[(0.0, TOKEN), (0.01, b'data: {"error":{"message":"lost \\udfff here"}}\n\n')],
            headers=SSE,
            headers_at=0.0,
        ),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_value_gives_a_storable_record(
    replay: ReplayServer, tmp_path: Path, case: str
) -> None:
    script, flagged = CASES[case]
    record = await probe(replay, f"values-{case}", script)
    assert record.out_of_range_fields == flagged
    for name in (flagged or "").split(","):
        if name:
            assert getattr(record, name) is None, name
    # Strict JSON: no NaN/Infinity, every string encodable.
    doc = strict_json(record_to_json(record))
    assert list(doc) == list(FIELD_NAMES)
    for name in FIELD_NAMES:
        value = getattr(record, name)
        if isinstance(value, float):
            assert math.isfinite(value) and value >= 0, name
        if isinstance(value, str):
            value.encode("utf-8")  # no lone surrogate
    # A real SQLite file takes it, and gives it back.
    db = open_db(tmp_path / "v.db")
    try:
        insert_probe(db, record)
        row = next(db.query("SELECT * FROM probes"))
    finally:
        db.close()
    assert row["out_of_range_fields"] == flagged
    assert row["status"] == record.status


async def test_values_are_kept_when_in_range(replay: ReplayServer) -> None:
    headers = {"x-ratelimit-remaining-requests": "998", "x-ratelimit-remaining-tokens": "1e6"}
    record = await probe(
        replay,
        "values-in-range",
        stream(usage_event('{"prompt_tokens":5,"completion_tokens":2,"cost":0.00012}'), headers),
    )
    assert record.status == "ok", record.error_message
    assert record.out_of_range_fields is None
    assert record.ratelimit_remaining_requests == 998
    assert record.ratelimit_remaining_tokens == 1_000_000
    assert record.provider_cost_usd == pytest.approx(0.00012)
    assert record.output_tokens == 2


async def test_surrogates_become_replacement_characters(replay: ReplayServer) -> None:
    script, _ = CASES["surrogate-500"]
    record = await probe(replay, "values-surrogate-text", script)
    assert record.error_kind == "server_error"
    assert record.error_message == "HTTP 500 [type=server_error]: bad \ufffd input"


@pytest.mark.parametrize(
    "headers, expected, flagged",
    [
        (
            {"x-ratelimit-remaining-requests": "inf"},
            (None, None, None, None),
            ("remaining_requests",),
        ),
        (
            {"x-ratelimit-remaining-requests": "-inf"},
            (None, None, None, None),
            ("remaining_requests",),
        ),
        ({"x-ratelimit-remaining-tokens": "1e30"}, (None, None, None, None), ("remaining_tokens",)),
        ({"x-ratelimit-remaining-tokens": "nan"}, (None, None, None, None), ("remaining_tokens",)),
        (
            {"x-ratelimit-reset-tokens": "9" * 400 + "s"},
            (None, None, None, None),
            ("reset_tokens_s",),
        ),
        ({"x-ratelimit-remaining-requests": "-5"}, (0, None, None, None), ()),
        ({"x-ratelimit-remaining-requests": "banana"}, (None, None, None, None), ()),
        ({"x-ratelimit-reset-requests": "6m0s"}, (None, None, 360.0, None), ()),
    ],
)
def test_parse_ratelimit_never_raises(
    headers: dict[str, str], expected: tuple[Any, ...], flagged: tuple[str, ...]
) -> None:
    limits = parse_ratelimit(headers, NOW)
    got = (
        limits.remaining_requests,
        limits.remaining_tokens,
        limits.reset_requests_s,
        limits.reset_tokens_s,
    )
    assert got == expected
    assert limits.out_of_range == flagged


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after": "inf"}, 3600.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 99999 07:28:00 GMT"}, None),
        ({"retry-after": "1e400"}, 3600.0),
    ],
)
def test_parse_retry_after_never_raises(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, NOW) == expected


def test_sanitize_record_nulls_every_number_out_of_range() -> None:
    record = ProbeRecord(
        started_at="2026-11-01T12:00:00.000Z",
        target="t",
        provider="p",
        model="m\x1b[2J",
        status="ok",
        ttft_ms=float("nan"),
        total_ms=-1.0,
        output_tokens=10**20,
        cost_usd=float("inf"),
        server_total_ms=1e16,
        token_events=5,
        request_id="req\ud800\x1b]0;x\x07",
        finish_reason="stop" * 100,
    )
    sanitize_record(record, flagged=("ratelimit_remaining_requests",))
    assert record.out_of_range_fields == (
        "ttft_ms,total_ms,output_tokens,cost_usd,ratelimit_remaining_requests,server_total_ms"
    )
    assert record.ttft_ms is None and record.total_ms is None and record.cost_usd is None
    assert record.output_tokens is None and record.server_total_ms is None
    assert record.token_events == 5
    assert record.model == "m\\x1b[2J"
    assert record.request_id == "req\ufffd\\x1b]0;x\\x07"
    assert record.finish_reason is not None and len(record.finish_reason) == 64


def test_a_real_prober_keeps_probing_every_hostile_target(
    replay: ReplayServer, tmp_path: Path
) -> None:
    """The prober process (``inferwatch run --headless``) stores probe after probe of each
    target; before the fix the ``inf`` header or the 10**20 count killed the target's task
    (or the insert) and the target was never probed again."""
    names = ["inf-header", "count-10e20", "cost-inf", "surrogate-500"]
    lines = ["[prober]", "jitter_s = 0.0", ""]
    for name in names:
        url = replay.add(f"prober-{name}", CASES[name][0])
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            'provider = "openai-compatible"',
            f'base_url = "{url}"',
            'model = "m"',
            "interval_s = 0.2",
            "",
        ]
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines))
    db_path = tmp_path / "prober.db"
    log = tmp_path / "prober.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open(log, "wb") as out:
        argv = ["run", "--headless", "--config", str(config), "--db", str(db_path)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    counts: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            if not db_path.exists():
                continue
            db = open_db(db_path, migrate=False)
            try:
                if "probes" in db.table_names():
                    counts = dict(
                        db.execute("SELECT target, count(*) FROM probes GROUP BY target").fetchall()
                    )
            finally:
                db.close()
            if len(counts) == len(names) and min(counts.values()) >= 3:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text
    assert {n: counts.get(n, 0) >= 3 for n in names} == dict.fromkeys(names, True), (counts, text)
    db = open_db(db_path, migrate=False)
    try:
        rows = {
            r["target"]: r
            for r in db.query("SELECT target, out_of_range_fields, error_message FROM probes")
        }
    finally:
        db.close()
    assert rows["inf-header"]["out_of_range_fields"] == CASES["inf-header"][1]
    assert rows["count-10e20"]["out_of_range_fields"] == "output_tokens"
    assert (
        rows["surrogate-500"]["error_message"] == "HTTP 500 [type=server_error]: bad \ufffd input"
    )


@pytest.mark.parametrize("table", ["probes", "rollups-minute"])
def test_jsonl_export_is_strict_json_even_for_rows_stored_with_infinity(
    tmp_path: Path, table: str
) -> None:
    """Rows written before records were sanitised may hold a REAL infinity; SQLite's
    json_object() would print it as ``Inf`` and Python's json as ``Infinity``."""
    from store.rollups import rollup_all
    from tui.cli import main

    db_path = tmp_path / "inf.db"
    db = open_db(db_path)
    record = ProbeRecord(
        started_at="2026-11-01T12:00:00.000Z",
        target="t",
        provider="p",
        model="m",
        status="ok",
        ttft_ms=100.0,
        total_ms=200.0,
        cost_usd=0.001,
    )
    insert_probe(db, record)
    db.execute("UPDATE probes SET cost_usd = 1e999, decode_tps = -1e999")
    db.conn.commit()
    rollup_all(db)
    db.close()
    out = tmp_path / "x.jsonl"
    assert main(["export", "--jsonl", "--table", table, "--db", str(db_path), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines
    docs = [strict_json(line) for line in lines]
    assert all(d["cost_usd"] is None for d in docs), docs

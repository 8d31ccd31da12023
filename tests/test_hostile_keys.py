"""Issue #10, "keys stay secret": a server echoing the key, in any spelling and at any place,
never gets it into a record, the database, a screen or a message.

The replay server on 127.0.0.1 echoes the Authorization token it received (``echo_auth``):
in ``x-request-id``, in a body at the 200-character cut, in upper case, JSON-escaped and
URL-encoded. Records go into a real SQLite file whose bytes are searched for the key.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from probes.config import parse_config
from probes.errors import redact
from probes.record import ProbeRecord
from probes.runner import make_client, run_probe
from store.db import insert_probe, open_db
from tests.conftest import make_target
from tests.servers import ReplayServer, Script, sse
from tui.cli import main

#: A key with the characters that JSON and URLs escape ("/", "+", "=").
KEY = "sk-live/Abc+Def=0123456789abcdefXYZ"
KEY_ENV = "IW_HOSTILE_KEY"
SSE = {"Content-Type": "text/event-stream"}
TEXT = {"Content-Type": "text/plain"}


def fragments(key: str, size: int = 5) -> set[str]:
    """Every ``size``-character piece of ``key`` and of its escaped spellings, lower case."""
    forms = {key, json.dumps(key)[1:-1].replace("/", "\\/"), urllib.parse.quote(key, safe="")}
    return {f[i : i + size].lower() for f in forms for i in range(len(f) - size + 1)}


def assert_no_key(text: str | None) -> None:
    low = (text or "").lower()
    found = sorted(f for f in fragments(KEY) if f in low)
    assert not found, (found, text)


async def probe_echo(
    replay: ReplayServer, case: str, script: Script, monkeypatch: pytest.MonkeyPatch, key: str = KEY
) -> ProbeRecord:
    """Probe ``script`` (echoing the key) with ``key`` in the target's key variable."""
    monkeypatch.setenv(KEY_ENV, key)
    script.echo_auth = True
    target = make_target(replay.add(case, script), api_key_env=KEY_ENV)
    async with make_client() as client:
        return await run_probe(target, client)


def db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


CASES = {
    "request-id-header": Script(
        status=401,
        body=b'{"error":{"message":"invalid api key"}}',
        headers={"Content-Type": "application/json", "x-request-id": "req-{AUTH}"},
        headers_at=0.0,
    ),
    "upper-case": Script(
        status=401, body=b"invalid key {AUTH_UPPER} (check it)", headers=TEXT, headers_at=0.0
    ),
    "json-escaped": Script(
        status=400,
        body=b'{"detail": "key \\"{AUTH_JSON}\\" has no access"}',
        headers={"Content-Type": "application/json"},
        headers_at=0.0,
    ),
    "json-in-message": Script(
        status=500,
        body=b'{"error":{"message":"upstream said {\\"key\\":\\"{AUTH_JSON}\\"}"}}',
        headers={"Content-Type": "application/json"},
        headers_at=0.0,
    ),
    "url-encoded": Script(
        status=403, body=b"forbidden for token {AUTH_URL}", headers=TEXT, headers_at=0.0
    ),
    "in-stream-error": Script(
        reads=[
            (0.0, sse({"choices": [{"index": 0, "delta": {"content": "hi"}}]})),
            (0.01, b'data: {"error":{"message":"revoked: {AUTH}"}}\n\n'),
        ],
        headers=SSE,
        headers_at=0.0,
    ),
    "chunk-id": Script(
        reads=[
            (0.0, b'data: {"id":"{AUTH}","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'),
            (0.01, b'data: {"id":"{AUTH}","choices":[],"usage":{"prompt_tokens":1,'),
            (0.011, b'"completion_tokens":1}}\n\ndata: [DONE]\n\n'),
        ],
        headers=SSE,
        headers_at=0.0,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_echoed_key_never_reaches_the_record_or_the_database(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    record = await probe_echo(replay, f"keys-{case}", CASES[case], monkeypatch)
    text = json.dumps(record.to_dict())
    assert_no_key(text)
    db_path = tmp_path / "k.db"
    db = open_db(db_path)
    try:
        insert_probe(db, record)
    finally:
        db.close()
    data = db_bytes(db_path)
    assert KEY.encode() not in data and KEY.upper().encode() not in data
    assert urllib.parse.quote(KEY, safe="").encode() not in data


async def test_request_id_header_keeps_its_harmless_part(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = await probe_echo(replay, "keys-rid-kept", CASES["request-id-header"], monkeypatch)
    assert record.request_id == "req-***"


@pytest.mark.parametrize("offset", [150, 190, 195, 197, 199, 200, 201, 285, 297, 299])
async def test_key_straddling_the_cut_never_survives(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    body = b"E" * offset + b"{AUTH} and more text after the key " + b"F" * 300
    script = Script(status=500, body=body, headers=TEXT, headers_at=0.0)
    record = await probe_echo(replay, f"keys-cut-{offset}", script, monkeypatch)
    message = record.error_message
    assert message is not None and len(message) <= 300
    assert_no_key(message)


def test_redact_finds_pieces_and_spellings_of_a_key() -> None:
    # A head or tail cut off by someone else (an 80-character quote) is removed too.
    assert redact(f"not JSON: '{KEY[:12]}'", (KEY,)) == "not JSON: '***'"
    assert redact(f"...{KEY[-9:]} rest", (KEY,)) == "...*** rest"
    assert redact(repr(KEY + "\r"), (KEY + "\r",)) == "'***'"
    assert redact(f"x {KEY.swapcase()} y", (KEY,)) == "x *** y"
    assert redact("see https://bob:hunter2pass@example.com/v1 now") == (
        "see https://***@example.com/v1 now"
    )
    # Ordinary text that merely shares a few letters with the key stays.
    assert redact("sk-li is not a key", (KEY,)) == "sk-li is not a key"


@pytest.mark.parametrize(
    "value, says",
    [
        (KEY + "\r", "line break"),
        (KEY + "\n", "line break"),
        (KEY[:10] + "\r\n" + KEY[10:], "line break"),
        (KEY + "\x1b", "control character"),
        (KEY + " ", "space"),
        (KEY[:5] + "é" + KEY[5:], "non-ASCII"),
    ],
)
async def test_unusable_key_is_a_probe_config_error_that_never_quotes_it(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    case = f"keys-bad-{abs(hash(value))}"
    script = Script(status=200, body=b"{}", headers=SSE, headers_at=0.0)
    record = await probe_echo(replay, case, script, monkeypatch, key=value)
    assert record.error_kind == "probe_config"
    message = record.error_message or ""
    assert says in message and f"${KEY_ENV}" in message
    assert_no_key(message)
    assert case not in replay.requests  # nothing was sent


def config_file(tmp_path: Path, base_url: str, key_env: str | None = KEY_ENV, **extra: str) -> Path:
    lines = [
        "[[targets]]",
        'name = "t"',
        'provider = "openai-compatible"',
        f'base_url = "{base_url}"',
        'model = "m"',
    ]
    if key_env:
        lines.append(f'api_key_env = "{key_env}"')
    lines += [f"{k} = {v}" for k, v in extra.items()]
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_config_names_an_unusable_key_without_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY + "\r")
    assert main(["check-config", str(config_file(tmp_path, "http://127.0.0.1:9/v1"))]) == 0
    out = capsys.readouterr().out
    assert f"UNUSABLE KEY: ${KEY_ENV} holds a line break" in out
    assert_no_key(out)


@pytest.mark.parametrize(
    "base_url, warned",
    [
        ("http://api.example.com/v1", True),
        ("http://10.0.0.7:8000/v1", True),
        ("https://api.example.com/v1", False),
        ("http://127.0.0.1:8080/v1", False),
        ("http://localhost:8080/v1", False),
        ("http://[::1]:8080/v1", False),
    ],
)
def test_check_config_warns_when_a_key_would_travel_over_plain_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base_url: str, warned: bool
) -> None:
    assert main(["check-config", str(config_file(tmp_path, base_url))]) == 0
    out = capsys.readouterr().out
    assert ("would travel unencrypted over http://" in out) is warned, out


def test_no_warning_without_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "http://api.example.com/v1", key_env=None)
    assert main(["check-config", str(path)]) == 0
    assert "warning:" not in capsys.readouterr().out


def test_credentials_in_base_url_are_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "https://bob:hunter2pass@api.example.com/v1")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "https://***@api.example.com/v1" in out
    assert "hunter2pass" not in out and "bob:" not in out
    # An invalid URL is reported without quoting it either.
    bad = config_file(tmp_path, "https://bob:hunter2pass@api.example.com:99999/v1")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "base_url: has an invalid port" in err and "hunter2pass" not in err


async def test_url_credentials_echoed_by_a_server_are_redacted(replay: ReplayServer) -> None:
    # httpx turns user:password@ into "Authorization: Basic ..."; the server echoes both.
    url = replay.add(
        "keys-basic",
        Script(
            status=401,
            body=b"bad credentials: {AUTH} (password hunter2pass)",
            headers=TEXT,
            headers_at=0.0,
            echo_auth=True,
        ),
    )
    url = url.replace("http://", "http://bob:hunter2pass@")
    target = parse_config(
        f'[[targets]]\nname = "b"\nprovider = "openai-compatible"\nbase_url = "{url}"\n'
        'model = "m"\n'
    ).resolved()[0]
    async with make_client() as client:
        record = await run_probe(target, client)
    assert replay.requests["keys-basic"][-1]["headers"]["Authorization"].startswith("Basic ")
    assert record.error_kind == "auth"
    assert record.error_message == "HTTP 401: bad credentials: Basic *** (password ***)"

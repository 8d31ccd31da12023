"""Channel wire formats: the command hook runs a real program (no shell, a clean
environment), Slack text, Alertmanager v2 alerts with endsAt, HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probes.config import AlertsConfig, ChannelConfig
from tui.notify import Channel, am_alerts, sign, slack_text

NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
PAYLOAD = {
    "id": 7,
    "version": 1,
    "event": "firing",
    "alert": "group:chat",
    "kind": "down",
    "status": "firing",
    "severity": "critical",
    "previous_severity": "warning",
    "target": None,
    "group": "chat",
    "state": "all down",
    "summary": "group chat: primary a down, fallback b down",
    "cause_kind": "server_error",
    "started_at": "2026-11-02T02:50:00.000Z",
    "ended_at": None,
    "at": "2026-11-02T03:00:00.000Z",
    "members": [],
    "vantage": "lab",
}


def test_command_hook_gets_the_event_and_no_api_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-reach-the-hook")
    out = tmp_path / "env.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "json.dump(dict(os.environ), open(sys.argv[1], 'w'))\n"
        "sys.exit(int(os.environ['INFERWATCH_ID']) - 7)\n"
    )
    conf = ChannelConfig(
        name="hook", type="command", command=(sys.executable, str(script), str(out)), timeout_s=30
    )
    result = Channel(conf).send(PAYLOAD)
    assert (result.ok, result.detail) == (True, "exit 0")
    env = json.loads(out.read_text())
    assert env["INFERWATCH_EVENT"] == "firing" and env["INFERWATCH_GROUP"] == "chat"
    assert env["INFERWATCH_SEVERITY"] == "critical" and env["INFERWATCH_TARGET"] == ""
    assert json.loads(env["INFERWATCH_JSON"])["summary"] == PAYLOAD["summary"]
    assert "OPENAI_API_KEY" not in env
    failing = Channel(conf).send({**PAYLOAD, "id": 9})
    assert (failing.ok, failing.detail) == (False, "exit 2")
    missing = ChannelConfig(name="x", type="command", command=("/no/such/program",))
    assert Channel(missing).send(PAYLOAD).detail.startswith("cannot run /no/such/program")


def test_slack_text() -> None:
    assert slack_text(PAYLOAD) == (
        ":red_circle: CRITICAL group chat: primary a down, fallback b down "
        "[lab since 2026-11-02T02:50:00.000Z]"
    )
    resolved = slack_text({**PAYLOAD, "event": "resolved"})
    assert resolved.startswith(":white_check_mark: RESOLVED")


def test_alertmanager_alerts_end_ahead_while_firing_and_resolve_the_old_severity() -> None:
    alerts = am_alerts(PAYLOAD, NOW, 60)
    assert alerts[0]["labels"] == {
        "alertname": "InferwatchGroup",
        "severity": "critical",
        "group": "chat",
        "vantage": "lab",
    }
    assert alerts[0]["startsAt"] == "2026-11-02T02:50:00.000Z"
    assert alerts[0]["endsAt"] == "2026-11-02T03:04:00.000Z"  # 4 re-send periods ahead
    # The severity changed: the warning alert ends now.
    assert alerts[1]["labels"]["severity"] == "warning"
    assert alerts[1]["endsAt"] == "2026-11-02T03:00:00.000Z"
    ended = am_alerts(
        {**PAYLOAD, "event": "resolved", "ended_at": "2026-11-02T02:58:00.000Z"},
        NOW + timedelta(minutes=5),
        60,
    )
    assert ended[0]["endsAt"] == "2026-11-02T02:58:00.000Z"


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign(b"key", body) == expected


def test_unset_secret_variables_fail_without_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IW_UNSET_URL", raising=False)
    slack = ChannelConfig(name="s", type="slack", url_env="IW_UNSET_URL")
    assert Channel(slack, AlertsConfig()).send(PAYLOAD).detail == "$IW_UNSET_URL is unset"
    monkeypatch.delenv("IW_UNSET_KEY", raising=False)
    hook = ChannelConfig(
        name="h", type="webhook", url="http://127.0.0.1:9/x", hmac_key_env="IW_UNSET_KEY"
    )
    assert "not sent unsigned" in Channel(hook).send(PAYLOAD).detail
    refused = ChannelConfig(name="r", type="webhook", url="http://127.0.0.1:9/x?token=abc")
    result = Channel(refused).send(PAYLOAD)
    assert (result.ok, result.detail) == (False, "connection failed")

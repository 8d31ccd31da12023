"""Alerts over a compressed-time run: one notification per state change, a real webhook
receiver on 127.0.0.1, restarts, a maintenance window, reminders, groups; DST windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from probes.config import MaintenanceConfig, parse_config
from store.maintenance_windows import next_start, occurrence
from tests.alert_helpers import Core, Receiver, events

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
KEY = "not-a-real-key-but-secret"


def _config(url: str, window_start: datetime, extra: str = "") -> str:
    return f"""
[defaults]
interval_s = 30
down_after_failures = 3
up_after_successes = 2
error_rate_window_probes = 1000
degraded_error_rate = 1.0
[alerts]
reminder_interval_s = 600
{extra}
[[targets]]
name = "solo"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "m"
[[targets]]
name = "primary"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/a/v1"
model = "m"
group = "chat"
[[targets]]
name = "fallback"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/b/v1"
model = "m"
group = "chat"
[[channels]]
name = "hook"
type = "webhook"
url = "{url}"
hmac_key_env = "IW_TEST_HMAC"
[[maintenance]]
name = "deploy"
targets = ["solo"]
start = {window_start.strftime("%Y-%m-%dT%H:%M:%SZ")}
duration_s = 1800
"""


def test_one_notification_per_state_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IW_TEST_HMAC", KEY)
    receiver = Receiver(key=KEY.encode())
    url = receiver.start()
    window = T0 + timedelta(hours=6)
    config = parse_config(_config(url, window))
    path = tmp_path / "a.db"
    core = Core(config, path, T0)
    try:
        for t in ("solo", "primary", "fallback"):
            core.run(t, "oo")
        # A storm that never reaches 3 failures in a row: not one notice.
        core.run("solo", "fofoffoffo" * 3)
        # Five real outages: 5 firing + 5 resolved.
        core.run("solo", "fffoo" * 5)
        # One long outage with a reminder after 10 minutes (fake time), then recovery.
        core.run("solo", "fff")
        core.run("solo", "f" * 25)  # 12.5 more minutes
        core.run("solo", "oo")
        # The group: warning, critical, warning, resolved.
        core.run("primary", "fff")
        core.run("fallback", "fff")
        core.run("primary", "oo")
        core.run("fallback", "oo")
        # Down, then the prober restarts: no second "firing".
        core.run("solo", "fff")
        core.close()
        core = Core(config, path, core.now)
        core.run("solo", "ff")
        core.close()
        # It recovered while the prober was stopped: the resolve comes with the first probes.
        core = Core(config, path, core.now + timedelta(minutes=20))
        core.run("solo", "oo")
        # Down just before a maintenance window; failures inside it change nothing, no
        # reminder fires in 30 minutes of window; after it the target is up: resolved.
        core.now = window - timedelta(minutes=3)
        core.run("solo", "fff")
        core.run("solo", "f" * 62)  # through the window (31 min)
        core.run("solo", "oo")
        core.close()
    finally:
        receiver.stop()
    expected = [
        *[("target:solo", "firing"), ("target:solo", "resolved")] * 5,
        ("target:solo", "firing"),
        ("target:solo", "reminder"),
        ("target:solo", "resolved"),
        ("group:chat", "firing"),
        ("group:chat", "firing"),
        ("group:chat", "firing"),
        ("group:chat", "resolved"),
        ("target:solo", "firing"),
        ("target:solo", "resolved"),
        ("target:solo", "firing"),
        ("maintenance:deploy", "firing"),
        ("maintenance:deploy", "resolved"),
        ("target:solo", "resolved"),
    ]
    assert list(events(receiver)) == expected
    assert receiver.bad_signatures == 0
    group = [b for b in receiver.bodies if b["alert"] == "group:chat"]
    assert [b["severity"] for b in group] == ["warning", "critical", "warning", "warning"]
    assert group[0]["state"] == "primary down"
    assert group[1]["previous_severity"] == "warning"
    assert "primary primary down, fallback fallback down" in group[1]["summary"]
    assert group[2]["state"] == "fallback down"
    # The recorded log: every one sent once, nothing secret in it.
    from store.db import open_db

    db = open_db(path)
    rows = list(db.query("SELECT * FROM notifications ORDER BY id"))
    db.close()
    assert len(rows) == len(expected)
    assert {r["status"] for r in rows} == {"sent"} and {r["attempts"] for r in rows} == {1}
    assert all(r["result"] == "HTTP 200" for r in rows)
    assert KEY not in json.dumps(rows)
    # Ids increase and match the rows (receivers de-duplicate on them).
    assert [b["id"] for b in receiver.bodies] == [r["id"] for r in rows]


def test_failed_deliveries_retry_with_backoff_then_give_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IW_TEST_HMAC", KEY)
    receiver = Receiver(status=500)
    url = receiver.start()
    extra = "retry_max_attempts = 3\nretry_backoff_s = 10"
    config = parse_config(_config(url, T0 + timedelta(days=9), extra))
    core = Core(config, tmp_path / "r.db", T0)
    try:
        core.run("solo", "oofff")
        import time as real_time

        for _ in range(200):  # the first attempt, then retries at +10 s and +20 s (fake time)
            row = core.db.conn.execute("SELECT status, attempts FROM notifications").fetchone()
            if row[0] == "failed":
                break
            if row[0] == "retrying":
                core.now += timedelta(seconds=10 * 2 ** (row[1] - 1))
                core.oncall.deliverer.wake()
            real_time.sleep(0.05)
        status, attempts, result = core.db.conn.execute(
            "SELECT status, attempts, result FROM notifications"
        ).fetchone()
        assert (status, attempts, result) == ("failed", 3, "HTTP 500")
        assert len(receiver.bodies) == 3
    finally:
        core.oncall.close()
        core.db.close()
        receiver.stop()


def _daily(
    start: time, tz: str, duration_s: float = 3600, days: tuple[str, ...] = ()
) -> MaintenanceConfig:
    return MaintenanceConfig(
        name="w",
        start=start,
        duration_s=duration_s,
        timezone=tz,
        days=days,  # type: ignore[arg-type]
    )


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_daily_window_follows_dst_in_europe() -> None:
    w = _daily(time(23, 0), "Europe/Berlin")
    # Berlin moves from CET (+1) to CEST (+2) on 2026-03-29 at 01:00Z.
    assert occurrence(w, _z("2026-03-28T22:30:00Z")) == (
        _z("2026-03-28T22:00:00Z"),
        _z("2026-03-28T23:00:00Z"),
    )
    assert occurrence(w, _z("2026-03-29T21:30:00Z")) == (
        _z("2026-03-29T21:00:00Z"),
        _z("2026-03-29T22:00:00Z"),
    )
    # The old UTC hour is no longer maintenance (the bug of louislam/uptime-kuma#6233).
    assert occurrence(w, _z("2026-03-29T22:30:00Z")) is None
    assert next_start(w, _z("2026-03-29T12:00:00Z")) == _z("2026-03-29T21:00:00Z")
    # And back in autumn (2026-10-25 01:00Z).
    assert occurrence(w, _z("2026-10-25T22:30:00Z")) is not None
    assert occurrence(w, _z("2026-10-25T21:30:00Z")) is None


def test_skipped_and_repeated_local_times_in_new_york() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: the window starts at 03:30 EDT.
    w = _daily(time(2, 30), "America/New_York", 1800)
    assert occurrence(w, _z("2026-03-08T07:45:00Z")) == (
        _z("2026-03-08T07:30:00Z"),
        _z("2026-03-08T08:00:00Z"),
    )
    assert occurrence(w, _z("2026-03-07T07:45:00Z")) == (
        _z("2026-03-07T07:30:00Z"),
        _z("2026-03-07T08:00:00Z"),
    )
    # 01:30 happens twice on 2026-11-01: the first one (EDT, 05:30Z) starts it, once.
    w = _daily(time(1, 30), "America/New_York", 1800)
    assert occurrence(w, _z("2026-11-01T05:40:00Z")) is not None
    assert occurrence(w, _z("2026-11-01T06:40:00Z")) is None
    # A weekly window crossing midnight is still in force after midnight.
    w = _daily(time(23, 0), "UTC", 7200, ("sat",))
    assert occurrence(w, _z("2026-11-08T00:30:00Z")) is not None  # Sunday 00:30
    assert occurrence(w, _z("2026-11-09T00:30:00Z")) is None  # Monday 00:30


def test_blind_and_degraded_opt_in_decisions() -> None:
    from store.alerting import AlertEngine, AlertRules, TargetView
    from store.health import State
    from store.outage import BlindEnded, BlindStarted, Transition

    rules = AlertRules(degraded=True, vantage="lab")
    engine = AlertEngine(rules, {"a": TargetView(State.UP)})
    now = T0

    def tr(frm: State, to: State, cause: str) -> Transition:
        return Transition("a", frm, to, "2026-11-02T00:00:00.000Z", cause, "x")

    out = engine.on_events([BlindStarted("2026-11-02T00:00:00.000Z", "no network", {})], now)
    assert [(n.key, n.event, n.severity.value) for n in out] == [
        ("monitor:blind", "firing", "warning")
    ]
    out = engine.on_events([BlindEnded("2026-11-02T00:01:00.000Z")], now)
    assert [(n.key, n.event) for n in out] == [("monitor:blind", "resolved")]
    # Degraded by rate limiting fires a warning (opt-in); down escalates; up resolves.
    out = engine.on_events([tr(State.UP, State.DEGRADED, "rate_limited")], now)
    assert [(n.event, n.severity.value) for n in out] == [("firing", "warning")]
    out = engine.on_events([tr(State.DEGRADED, State.DOWN, "server_error")], now)
    assert [(n.event, n.severity.value, n.previous_severity) for n in out] == [
        ("firing", "critical", engine.alerts["target:a"].severity.WARNING)
    ]
    out = engine.on_events([tr(State.DOWN, State.UP, "recovered")], now)
    assert [n.event for n in out] == ["resolved"]
    # Without the option, the first failures of a fresh target and a 429 say nothing.
    quiet = AlertEngine(AlertRules(), {"a": TargetView(State.NO_DATA)})
    assert quiet.on_events([tr(State.NO_DATA, State.DEGRADED, "server_error")], now) == []
    assert quiet.on_events([tr(State.DEGRADED, State.DEGRADED, "rate_limited")], now) == []

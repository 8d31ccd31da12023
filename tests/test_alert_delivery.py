"""Delivery off the probing path, with a real prober process: a receiver that hangs never
delays a probe; notify --test; check-config explains routes without printing secrets."""

from __future__ import annotations

import itertools
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from probes.simulator import SimProfile, SimulatorProcess
from tests.alert_helpers import Receiver
from tests.fleet_helpers import ROOT, free_port, prober, wait_for

SECRET_URL_PART = "T0000/B0000/not-a-real-slack-token"


def _config(path: Path, sim_port: int, hook_url: str, metrics_port: int | None = None) -> Path:
    path.write_text(
        f"""
[defaults]
interval_s = 0.3
down_after_failures = 1
timeout_s = 5
[prober]
jitter_s = 0
vantage = "test-lab"
[[targets]]
name = "fast"
provider = "openai-compatible"
base_url = "http://127.0.0.1:{sim_port}/fastlane/v1"
model = "demo"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
[[targets]]
name = "gone"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "demo"
[[channels]]
name = "slow-hook"
type = "webhook"
url = "{hook_url}"
timeout_s = 60
"""
    )
    return path


def test_a_hanging_receiver_does_not_delay_probes(tmp_path: Path) -> None:
    receiver = Receiver(hang_s=60)
    url = receiver.start()
    sim = SimulatorProcess((SimProfile("fastlane", ttft_ms=20, tps=500, ttft_sigma=0),)).start()
    db = tmp_path / "h.db"
    proc = prober(_config(tmp_path / "c.toml", sim.port, url), db, tmp_path / "p.log")
    try:

        def hanging_since() -> str | None:
            con = sqlite3.connect(db)
            try:
                row = con.execute(
                    "SELECT created_at FROM notifications WHERE alert_key = 'target:gone'"
                ).fetchone()
            finally:
                con.close()
            return row[0] if row else None

        since = wait_for(hanging_since, 30)
        wait_for(lambda: receiver.thread is not None and _in_flight(db), 10)
        # Three more seconds of probing while the receiver holds the request.
        import time

        time.sleep(3)
        con = sqlite3.connect(db)
        stamps = [
            r[0]
            for r in con.execute(
                "SELECT started_at FROM probes WHERE target = 'fast' AND started_at > ? "
                "ORDER BY started_at",
                [since],
            )
        ]
        status = con.execute(
            "SELECT status, attempts FROM notifications WHERE alert_key = 'target:gone'"
        ).fetchone()
        con.close()
    finally:
        proc.stop()
        sim.stop()
        receiver.stop()
    from probes.timestamps import parse_iso

    times = [parse_iso(s).timestamp() for s in stamps]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Blocking on a 60 s receiver would stop the probes (and their writes) for 60 s.
    assert len(times) >= 6, proc.output()
    assert max(gaps) < 2.0, gaps
    assert status == ("pending", 0)  # the attempt is still in flight, not failed


def _in_flight(db: Path) -> bool:
    con = sqlite3.connect(db)
    try:
        return bool(
            con.execute("SELECT count(*) FROM probes WHERE target = 'fast'").fetchone()[0] > 3
        )
    finally:
        con.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_notify_test_and_check_config_never_show_secrets(tmp_path: Path) -> None:
    receiver = Receiver(key=b"k3y-value-never-printed")
    url = receiver.start()
    secret_url = url + "/" + SECRET_URL_PART
    config = tmp_path / "c.toml"
    config.write_text(
        """
[alerts]
reminder_interval_s = 900
[[targets]]
name = "a"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "m"
group = "chat"
[[targets]]
name = "b"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "m"
group = "chat"
[[targets]]
name = "solo"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
model = "m"
[[channels]]
name = "ops"
type = "webhook"
url_env = "IW_HOOK_URL"
hmac_key_env = "IW_HOOK_KEY"
[[channels]]
name = "team"
type = "slack"
url_env = "IW_SLACK_URL"
[[routes]]
groups = ["chat"]
channels = ["ops", "team"]
[[routes]]
events = ["blind"]
channels = ["ops"]
[[maintenance]]
name = "nightly"
groups = ["chat"]
start = 02:00:00
duration_s = 3600
timezone = "Europe/Berlin"
"""
    )
    env = {
        "IW_HOOK_URL": secret_url,
        "IW_HOOK_KEY": "k3y-value-never-printed",
        "IW_SLACK_URL": secret_url,
    }
    try:
        db = tmp_path / "n.db"
        from store.db import open_db

        open_db(db).close()
        out = _cli("notify", "--test", "ops", "--config", str(config), "--db", str(db), env=env)
        assert out.returncode == 0, out.stderr
        assert "sent: HTTP 200" in out.stdout and "$IW_HOOK_URL" in out.stdout
        wrong = _cli("notify", "--test", "opz", "--config", str(config), env=env)
        assert wrong.returncode == 2 and "did you mean 'ops'" in wrong.stderr
        explained = _cli("check-config", str(config), env=env)
        assert explained.returncode == 0, explained.stderr
        text = explained.stdout
        assert "group chat (primary a, fallbacks b): one alert" in text and "-> ops, team" in text
        assert "solo: alert when down -> nowhere" in text
        assert "monitor blind: -> ops" in text
        assert "reminders every 15m" in text
        assert "maintenance nightly: every day at 02:00 Europe/Berlin for 1h" in text
        assert "2 target(s): a, b" in text
        assert "signed with HMAC-SHA256 from $IW_HOOK_KEY (set)" in text
    finally:
        receiver.stop()
    assert len(receiver.bodies) == 1 and receiver.bodies[0]["event"] == "test"
    assert receiver.bad_signatures == 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT * FROM notifications").fetchall()
    con.close()
    everything = out.stdout + out.stderr + explained.stdout + explained.stderr + repr(rows)
    for secret in (SECRET_URL_PART, "k3y-value-never-printed"):
        assert secret not in everything
    assert len(rows) == 1


def test_metrics_flag_serves_otel_names(tmp_path: Path) -> None:
    sim = SimulatorProcess((SimProfile("fastlane", ttft_ms=20, tps=500, ttft_sigma=0),)).start()
    port = free_port()
    config = _config(tmp_path / "c.toml", sim.port, "http://127.0.0.1:9/x")
    proc = prober(config, tmp_path / "m.db", tmp_path / "p.log", f"127.0.0.1:{port}")
    try:

        def scraped() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            ok = re.search(
                r'inferwatch_probes_total\{[^}]*outcome="ok"[^}]*target="fast"[^}]*\} [1-9]', text
            )
            failed = 'error_type="connect_refused"' in text
            return text if ok and failed else None

        text = wait_for(scraped, 30)
    finally:
        proc.stop()
        sim.stop()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    names = {name for name, _ in samples}
    assert not any(n.endswith("_created") for n in names)
    fast = {
        "target": "fast",
        "gen_ai_provider_name": "openai_compatible",
        "gen_ai_request_model": "demo",
        "vantage": "test-lab",
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({**fast, **labels}.items())))]

    ttft = "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"
    assert value(ttft, gen_ai_operation_name="chat", le="81.92") >= 1
    assert value(ttft, gen_ai_operation_name="chat", le="0.01") == 0
    usage = "gen_ai_client_token_usage_bucket"
    assert value(usage, gen_ai_operation_name="chat", gen_ai_token_type="output", le="+Inf") >= 1
    gone = {**fast, "target": "gone"}
    key = (
        "inferwatch_probes_total",
        tuple(
            sorted(
                {
                    **gone,
                    "outcome": "error",
                    "error_type": "connect_refused",
                    "kind": "canary",
                }.items()
            )
        ),
    )
    assert samples[key] >= 1
    assert value("inferwatch_target_state", state="up") == 1
    assert value("inferwatch_target_state", state="down") == 0
    assert samples[("inferwatch_monitor_blind", (("vantage", "test-lab"),))] == 0
    assert 0 < value("inferwatch_cost_usd_total") < 0.01
    assert value("inferwatch_ratelimit_remaining_requests") > 0

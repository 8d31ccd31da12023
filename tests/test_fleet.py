"""Many vantages through a real Prometheus: two prober processes with different vantages (one
cannot reach one target) scraped by Prometheus on 127.0.0.1; PromQL percentiles from summed
buckets; the ``view --prometheus`` dashboard driven by Pilot shows the split in words. And a
real Alertmanager receives the prober's alert, shows it active, and resolved after recovery."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from probes.simulator import SimProfile, SimulatorProcess
from store.stats import percentile
from tests.alert_helpers import Receiver
from tests.fleet_helpers import Proc, binary, free_port, prober, wait_for
from tui.metrics import DURATION_BUCKETS_S


def _target(name: str, url: str) -> str:
    return f'[[targets]]\nname = "{name}"\nprovider = "openai-compatible"\nbase_url = "{url}"\nmodel = "demo-{name}"\n'


def _config(path: Path, vantage: str, alpha: str, beta: str, extra: str = "") -> Path:
    path.write_text(
        "[defaults]\ninterval_s = 0.25\ndown_after_failures = 2\nup_after_successes = 2\n"
        f'timeout_s = 5\n[prober]\njitter_s = 0\nvantage = "{vantage}"\n'
        + _target("alpha", alpha)
        + _target("beta", beta)
        + extra
    )
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    prom_bin = binary("prometheus")
    tmp = tmp_path_factory.mktemp("fleet")
    sim = SimulatorProcess(
        (
            SimProfile("steady", ttft_ms=200, tps=400, ttft_sigma=0.1, output_tokens=8, seed=1),
            SimProfile("fastlane", ttft_ms=40, tps=800, ttft_sigma=0.1, output_tokens=8, seed=2),
        )
    ).start()
    ports = [free_port(), free_port()]
    up = f"http://127.0.0.1:{sim.port}"
    probers = [
        prober(
            _config(tmp / "eu.toml", "eu-office", f"{up}/steady/v1", f"{up}/fastlane/v1"),
            tmp / "eu.db",
            tmp / "eu.log",
            f"127.0.0.1:{ports[0]}",
        ),
        prober(
            # us-east cannot reach beta: nothing listens on port 9.
            _config(tmp / "us.toml", "us-east", f"{up}/steady/v1", "http://127.0.0.1:9/v1"),
            tmp / "us.db",
            tmp / "us.log",
            f"127.0.0.1:{ports[1]}",
        ),
    ]
    prom_port = free_port()
    (tmp / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: inferwatch\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{ports[0]}', '127.0.0.1:{ports[1]}']\n"
    )
    prom = Proc(
        [
            prom_bin,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp / "prometheus.log",
    )
    url = f"http://127.0.0.1:{prom_port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 30)

        def split_seen() -> bool:
            r = httpx.get(
                f"{url}/api/v1/query",
                params={"query": 'inferwatch_target_state{target="beta",state="down"} == 1'},
                timeout=5,
            ).json()
            ttft = httpx.get(
                f"{url}/api/v1/query",
                params={
                    "query": "sum(gen_ai_client_operation_time_to_first_chunk_seconds_count"
                    '{target="alpha"}) > 30'
                },
                timeout=5,
            ).json()
            return bool(r["data"]["result"]) and bool(ttft["data"]["result"])

        wait_for(split_seen, 60, 0.5)
        yield {"url": url, "dbs": [tmp / "eu.db", tmp / "us.db"], "probers": probers}
    finally:
        prom.stop()
        for p in probers:
            p.stop()
        sim.stop()


def _query(url: str, promql: str) -> list[dict[str, object]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def _bucket(value: float) -> tuple[float, float]:
    lower = 0.0
    for upper in DURATION_BUCKETS_S:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


def test_promql_p50_of_summed_buckets_is_within_one_bucket(fleet: dict[str, object]) -> None:
    url = str(fleet["url"])
    result = _query(
        url,
        "histogram_quantile(0.5, sum by (le, target) (increase("
        'gen_ai_client_operation_time_to_first_chunk_seconds_bucket{target="alpha"}[10m])))',
    )
    p50_s = float(result[0]["value"][1])  # type: ignore[index]
    values = []
    for db in fleet["dbs"]:  # type: ignore[attr-defined]
        con = sqlite3.connect(db)
        values += [
            r[0] / 1000
            for r in con.execute(
                "SELECT ttft_ms FROM probes WHERE target = 'alpha' AND status = 'ok'"
            )
        ]
        vantages = {r[0] for r in con.execute("SELECT DISTINCT vantage FROM probes")}
        con.close()
        assert len(vantages) == 1  # every row carries its prober's vantage
    true_p50 = percentile(sorted(values), 50.0)
    assert true_p50 is not None
    low, high = _bucket(true_p50)
    # Same OTel bucket as the exact median of both vantages' raw rows (in seconds, not ms).
    assert low < p50_s <= high, (p50_s, true_p50)
    # Per vantage too: each prober's own buckets.
    per = _query(
        url,
        "histogram_quantile(0.5, sum by (le, vantage) (increase("
        'gen_ai_client_operation_time_to_first_chunk_seconds_bucket{target="alpha"}[10m])))',
    )
    assert {s["metric"]["vantage"] for s in per} == {"eu-office", "us-east"}  # type: ignore[index]


async def test_view_dashboard_shows_the_split(fleet: dict[str, object]) -> None:
    from tui.app import InferwatchApp
    from tui.prometheus_source import PrometheusSource
    from tui.table import TargetTable

    source = PrometheusSource(str(fleet["url"]))
    app = InferwatchApp(Path("/nonexistent.db"), window_s=900, reader=source)
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(100):
            await pilot.pause(0.1)
            if app.snap is not None and app.snap.targets:
                break
        table = app.screen.query_one(TargetTable)
        rows = table.row_texts()
        text = "\n".join(rows)
        assert "beta · down from us-east only; up from 1 other vantage" in text
        assert "alpha · up from all 2 vantages" in text
        beta_rows = rows[rows.index(next(r for r in rows if "beta ·" in r)) :]
        assert any("✖ down" in r and "us-east" in r for r in beta_rows)
        assert any("✔ up" in r and "eu-office" in r for r in beta_rows)
        # The all-vantages row of a split target is degraded, not up, not down.
        assert any("▲ degraded" in r and "├ all vantages" in r for r in rows), text


def test_alertmanager_receives_fires_and_resolves(tmp_path: Path) -> None:
    am_bin = binary("prometheus-alertmanager", "alertmanager", "prometheus-alertmanager")
    hook = Receiver()
    hook_url = hook.start()
    am_port, cluster = free_port(), free_port()
    (tmp_path / "am.yml").write_text(
        "route:\n  receiver: hook\n  group_by: ['alertname', 'target']\n  group_wait: 0s\n"
        "  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook_url}'\n"
        "        send_resolved: true\n"
    )
    am = Proc(
        [
            am_bin,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        tmp_path / "am.log",
    )
    am_url = f"http://127.0.0.1:{am_port}"
    # A target that goes down for a few seconds: the simulator's outage profile.
    sim = SimulatorProcess(
        (
            SimProfile(
                "flip",
                ttft_ms=20,
                tps=800,
                ttft_sigma=0,
                output_tokens=4,
                outage_every_s=3600,
                outage_for_s=6,
                outage_offset_s=3,
            ),
            SimProfile("calm", ttft_ms=20, tps=800, ttft_sigma=0, output_tokens=4),
        )
    ).start()
    up = f"http://127.0.0.1:{sim.port}"
    extra = (
        '[alerts]\nalertmanager_resend_s = 1\n[[channels]]\nname = "am"\n'
        f'type = "alertmanager"\nurl = "{am_url}"\n'
    )
    config = _config(tmp_path / "c.toml", "lab", f"{up}/flip/v1", f"{up}/calm/v1", extra)
    proc = prober(config, tmp_path / "p.db", tmp_path / "p.log")
    try:
        wait_for(lambda: httpx.get(f"{am_url}/-/ready", timeout=2).status_code == 200, 30)

        def active() -> list[dict[str, object]]:
            alerts = httpx.get(f"{am_url}/api/v2/alerts", timeout=5).json()
            return [a for a in alerts if a["labels"].get("target") == "alpha"]

        fired = wait_for(active, 40, 0.3)
        labels = fired[0]["labels"]  # type: ignore[index]
        assert labels == {
            "alertname": "InferwatchTarget",
            "severity": "critical",
            "target": "alpha",
            "vantage": "lab",
        }
        assert fired[0]["status"]["state"] == "active"  # type: ignore[index]
        assert "alpha is down" in fired[0]["annotations"]["summary"]  # type: ignore[index]
        # Recovery: gone from the active alerts, and Alertmanager itself says "resolved".
        wait_for(lambda: not active(), 40, 0.3)
        wait_for(lambda: any(b["status"] == "resolved" for b in hook.bodies), 20, 0.3)
    finally:
        proc.stop()
        sim.stop()
        am.stop()
        hook.stop()
    statuses = [b["status"] for b in hook.bodies]
    assert statuses[0] == "firing" and statuses[-1] == "resolved"
    con = sqlite3.connect(tmp_path / "p.db")
    rows = con.execute(
        "SELECT event, status, result FROM notifications WHERE event != 'refresh' ORDER BY id"
    ).fetchall()
    refresh = con.execute("SELECT attempts FROM notifications WHERE event = 'refresh'").fetchone()
    con.close()
    assert rows == [("firing", "sent", "HTTP 200"), ("resolved", "sent", "HTTP 200")]
    assert refresh is not None and refresh[0] >= 1  # re-sent while firing


def test_shipped_rules_pass_promtool() -> None:
    promtool = binary("promtool", "prometheus")
    root = Path(__file__).resolve().parents[1] / "docs" / "prometheus"
    for args in (
        ["check", "rules", str(root / "inferwatch-rules.yml")],
        ["test", "rules", str(root / "inferwatch-rules.test.yml")],
        ["check", "config", str(root / "prometheus.yml")],
        ["check", "config", str(root / "agent.yml")],
    ):
        out = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    amtool = binary("amtool", "prometheus-alertmanager")
    out = subprocess.run(
        [amtool, "check-config", str(root.parent / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr

"""Issue 11, true states: blame the right side, in flight is not stale.

Real parts only: local servers on 127.0.0.1 (aiohttp, own thread), the real runner and client
with an injected resolver standing in for a machine without network (every name NXDOMAIN, as
``getaddrinfo`` answers here with no network), the real outage writer on a SQLite file, and a
real ``inferwatch run --headless`` prober for probes in flight.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from probes.config import parse_config
from probes.runner import run_probe
from probes.timestamps import utc_now
from probes.transport import NameNotFound, make_client
from store import control
from store.db import open_db
from store.health import State
from store.history import HistoryWriter, blind_status, incidents
from store.reader import snapshot
from store.summary import summarize
from tests.prober_process import ProberProcess, query
from tests.servers import answering_and_hanging_server
from tui.prober import monitored, published


@pytest.fixture
def local_server() -> Iterator[int]:
    with answering_and_hanging_server() as port:
        yield port


async def no_network(host: str, port: int) -> Sequence[str]:
    """What the system resolver says on a machine without network: no such name."""
    raise NameNotFound(f"{host}: Name or service not known")


def config_text(port: int) -> str:
    targets = [
        ("openai", "https://api.openai.com/v1"),
        ("groq", "https://api.groq.com/openai/v1"),
        ("llama", f"http://127.0.0.1:{port}/v1"),
    ]
    lines = ["[defaults]", "interval_s = 30"]
    for name, url in targets:
        lines += ["[[targets]]", f'name = "{name}"', 'provider = "openai-compatible"']
        lines += [f'base_url = "{url}"', 'model = "m"']
    return "\n".join(lines) + "\n"


async def test_no_internet_and_a_local_server_answering_blames_no_cloud_provider(
    local_server: int, tmp_path: Path
) -> None:
    config = parse_config(config_text(local_server))
    db = open_db(tmp_path / "blind.db")
    control.publish_targets(db, published(config))
    writer = HistoryWriter(db, monitored(config), utc_now())
    async with make_client(resolver=no_network) as client:
        for _ in range(5):  # five rounds: more than down_after_failures
            for target in config.resolved():
                writer.store_probe(await run_probe(target, client))
    kinds = {r["target"]: r["error_kind"] for r in db.query("SELECT * FROM probes")}
    assert kinds == {"openai": "dns", "groq": "dns", "llama": None}
    downs = [r for r in incidents(db) if r["to_state"] == "down"]
    assert downs == [], "no cloud provider is blamed for the monitor's missing network"
    blind = blind_status(db, utc_now())
    assert blind is not None and blind.cause == "network"
    gap = list(db.query("SELECT cause, ended_at FROM monitor_gaps"))
    assert gap == [{"cause": "network", "ended_at": None}]
    shown = {s.name: s.verdict for s in summarize(db, 900)}
    assert shown["llama"] is not None and shown["llama"].state is State.UP  # its path works
    for name in ("openai", "groq"):
        verdict = shown[name]
        assert verdict is not None and verdict.state is State.STALE
        assert "no network" in verdict.reason
    db.close()


async def test_a_name_that_does_not_exist_is_a_config_error_not_downtime(
    local_server: int, tmp_path: Path
) -> None:
    # The network works (groq's name resolves, to our local server); openai's host is a typo.
    async def resolver(host: str, port: int) -> Sequence[str]:
        if host == "api.groq.com":
            return ["127.0.0.1"]
        raise NameNotFound(f"{host}: Name or service not known")

    text = config_text(local_server).replace(
        "https://api.groq.com/openai/v1", f"http://api.groq.com:{local_server}/v1"
    )
    config = parse_config(text)
    db = open_db(tmp_path / "typo.db")
    control.publish_targets(db, published(config))
    writer = HistoryWriter(db, monitored(config), utc_now())
    async with make_client(resolver=resolver) as client:
        for _ in range(5):
            for target in config.resolved():
                writer.store_probe(await run_probe(target, client))
    assert blind_status(db, utc_now()) is None
    assert [r for r in incidents(db) if r["to_state"] == "down"] == []
    shown = {s.name: s.verdict for s in summarize(db, 900)}
    assert shown["groq"] is not None and shown["groq"].state is State.UP
    openai = shown["openai"]
    assert openai is not None and openai.state is State.CONFIG_ERROR
    assert "host name not found" in openai.reason
    db.close()


def _wait(check: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_provider_that_never_answers_is_in_flight_then_deadlines_go_down(
    local_server: int, tmp_path: Path
) -> None:
    hang = f"http://127.0.0.1:{local_server}/hang/v1"
    config = "\n".join(
        [
            "[defaults]",
            "interval_s = 1",
            "[[targets]]",
            'name = "never"',  # one probe runs for the whole test: in flight
            'provider = "openai-compatible"',
            f'base_url = "{hang}"',
            'model = "m"',
            "timeout_s = 120",
            "[[targets]]",
            'name = "deadline"',  # each probe ends at its 0.5 s deadline: down
            'provider = "openai-compatible"',
            f'base_url = "{hang}"',
            'model = "m"',
            "timeout_s = 0.5",
        ]
    )
    db = tmp_path / "inflight.db"
    with ProberProcess(tmp_path, config + "\n", db) as prober:

        def published_in_flight() -> bool:
            rows = query(db, "SELECT in_flight_since FROM targets WHERE name = 'never'")
            return bool(rows and rows[0][0])

        _wait(published_in_flight)

        def down() -> bool:
            rows = query(db, "SELECT state FROM target_state WHERE target = 'deadline'")
            return bool(rows) and rows[0][0] == "down"

        _wait(down)
        # Later than 3 intervals after the start: "never" would be stale by age if its
        # probe in flight were not published (it has no stored probe at all).
        snap = snapshot(db, 900, utc_now() + timedelta(seconds=6))
        assert prober.alive(), prober.log_text()
    by_name = {s.name: s for s in snap.targets}
    never = by_name["never"].verdict
    assert never is not None and never.state is State.IN_FLIGHT, never
    assert never.reason.startswith("probing ") and "first probe in flight" in never.reason
    seconds = int(never.reason.split()[1].rstrip("s:"))
    assert seconds >= 6
    deadline = by_name["deadline"].verdict
    assert deadline is not None and deadline.state is State.DOWN
    assert deadline.cause_kind in {"deadline", "first_token_timeout"}

"""Official status pages: each format served on 127.0.0.1, each way a page can fail to be read.

The fixtures in tests/fixtures/status/ are composed in the documented shapes (Atlassian
Statuspage v2 ``summary.json``; an incident.io page serving the same API; Better Stack's
``index.json`` JSON:API document; Google Cloud's ``incidents.json``); docs/questions.md says
where each shape comes from. Expected states are read off the fixtures by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from probes.config import parse_config
from probes.official_status import (
    KNOWN_STATUS_PAGES,
    OfficialStatus,
    PolledSource,
    StatusPoller,
    StatusSource,
    config_sources,
    fetch_status,
    infer_format,
    resolve_source,
    status_client,
)
from probes.question_config import StatusConfig, StatusPageConfig
from probes.timestamps import iso
from store.db import open_db
from store.health import STATE_LABELS, State
from store.official_status import (
    StoredOfficial,
    official_by_target,
    save_statuses,
    status_line,
)
from tests.realserver.server import free_port
from tests.servers import ServerThread

FIXTURES = Path(__file__).parent / "fixtures" / "status"


@dataclass
class Page:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    delay_s: float = 0.0


class StatusServer:
    """Serves :class:`Page` objects at ``/<name>/...``."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get("/{name}/{tail:.*}", self._get)

    def add(self, name: str, page: Page, path: str) -> str:
        self.pages[name] = page
        return f"http://127.0.0.1:{self.port}/{name}/{path}"

    async def _get(self, request: web.Request) -> web.Response:
        page = self.pages[request.match_info["name"]]
        if page.delay_s:
            await asyncio.sleep(page.delay_s)
        headers = {"Content-Type": page.content_type} | (page.headers or {})
        return web.Response(status=page.status, body=page.body, headers=headers)


@pytest.fixture(scope="module")
def server() -> Iterator[StatusServer]:
    srv = StatusServer()
    thread = ServerThread(srv.app)
    srv.port = thread.start()
    yield srv
    thread.stop()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def read(url: str, fmt: str, component: str | None = None, **kw: float) -> OfficialStatus:
    async with status_client() as client:
        return await fetch_status(client, StatusSource(url, fmt, component), **kw)  # type: ignore[arg-type]


async def test_statuspage_component_decides_and_only_its_incidents_count(
    server: StatusServer,
) -> None:
    url = server.add("claude", Page(body=fixture("statuspage_claude.json")), "api/v2/summary.json")
    status = await read(url, "statuspage", "Claude API")
    assert status.state == "partial_outage"
    assert status.description == "Claude API: partial outage"
    assert status.indicator == "major" and status.component_status == "partial_outage"
    (incident,) = status.incidents
    assert incident.title == "Elevated errors on Claude Sonnet 4.5"
    assert incident.url == "https://stspg.io/9yxpmb1gq5kc"
    assert (incident.status, incident.impact) == ("identified", "major")
    assert incident.started_at == "2026-10-21T11:41:23.556Z"
    assert status.fetch_ms is not None and status.fetch_ms >= 0
    assert status.checked_at.endswith("Z")


async def test_statuspage_page_wide_without_a_component(server: StatusServer) -> None:
    url = server.add("claude2", Page(body=fixture("statuspage_claude.json")), "api/v2/summary.json")
    status = await read(url, "statuspage")
    # indicator "major" is Statuspage's "Partial System Outage"; the postmortem is not open.
    assert status.state == "partial_outage"
    assert status.description == "Partial System Outage"
    assert [i.title for i in status.incidents] == [
        "Elevated errors on Claude Sonnet 4.5",
        "Slow page loads on claude.ai",
    ]
    missing = await read(url, "statuspage", "Claude Desktop")
    assert missing.state == "partial_outage"
    assert "'Claude Desktop' not on the page" in missing.description


async def test_incident_io_page_serves_the_same_api(server: StatusServer) -> None:
    url = server.add("openai", Page(body=fixture("incidentio_openai.json")), "api/v2/summary.json")
    page = await read(url, "statuspage")
    assert (page.state, page.description, page.incidents) == (
        "operational",
        "All Systems Operational",
        (),
    )
    responses = await read(url, "statuspage", "responses")  # names match case-insensitively
    assert responses.state == "degraded"
    assert responses.description == "Responses: degraded performance"


async def test_better_stack_index(server: StatusServer) -> None:
    url = server.add("together", Page(body=fixture("betterstack_together.json")), "index.json")
    page = await read(url, "betterstack")
    assert (page.state, page.indicator) == ("degraded", "degraded")
    (report,) = page.incidents  # the resolved maintenance report is not open
    assert report.title == "Elevated latency on Llama 3.3 70B"
    assert report.url == f"http://127.0.0.1:{server.port}/"
    llama = await read(url, "betterstack", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert llama.state == "degraded" and llama.component_status == "degraded"
    deepseek = await read(url, "betterstack", "deepseek-ai/DeepSeek-V3")
    assert deepseek.state == "operational"


async def test_google_cloud_incidents_for_one_product(server: StatusServer) -> None:
    url = server.add("gcloud", Page(body=fixture("gcloud_incidents.json")), "incidents.json")
    gemini = await read(url, "gcloud", "Vertex Gemini API")
    assert gemini.state == "degraded"  # SERVICE_DISRUPTION; the closed outage does not count
    assert gemini.description == "Vertex Gemini API: degraded (1 open incident)"
    (incident,) = gemini.incidents
    assert incident.url == f"http://127.0.0.1:{server.port}/incidents/mFrTRq1gYk9L2vTH6wXj"
    assert incident.impact == "SERVICE_DISRUPTION"
    bigquery = await read(url, "gcloud", "BigQuery")
    assert bigquery.state == "major_outage"
    storage = await read(url, "gcloud", "Cloud Storage")
    assert (storage.state, storage.incidents) == ("operational", ())
    whole_feed = await read(url, "gcloud")
    assert whole_feed.state == "unknown" and "needs a product" in whole_feed.description


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (Page(status=404, body=b"Not Found", content_type="text/plain"), "HTTP 404"),
        (Page(status=503, body=b"{}"), "HTTP 503"),
        (
            Page(
                status=301,
                body=b"",
                headers={"Location": "https://status.example.com/api/v2/summary.json"},
            ),
            "moved (HTTP 301 to https://status.example.com/api/v2/summary.json)",
        ),
        (
            Page(body=b"<!DOCTYPE html><html><body>Status</body></html>", content_type="text/html"),
            "an HTML page",
        ),
        (Page(body=b'{"status": {"indicator": "none"'), "not JSON"),
        (Page(body=b'{"page": {}}'), "unexpected JSON: no status object"),
        (Page(body=b'{"status": {"description": "?"}}'), "unexpected JSON: no status.indicator"),
        (Page(body=fixture("statuspage_claude.json"), delay_s=2.0), "timed out after 0.3 s"),
    ],
    ids=["404", "503", "301", "html", "malformed", "wrong-shape", "no-indicator", "timeout"],
)
async def test_a_page_that_cannot_be_read_is_unknown_never_degraded(
    server: StatusServer, page: Page, why: str
) -> None:
    url = server.add(f"bad{id(page)}", page, "api/v2/summary.json")
    status = await read(url, "statuspage", "Claude API", timeout_s=0.3)
    assert status.state == "unknown"
    assert why in status.description
    assert status.incidents == ()


async def test_refused_connection_is_unknown() -> None:
    status = await read(f"http://127.0.0.1:{free_port()}/api/v2/summary.json", "statuspage")
    assert status.state == "unknown" and "cannot connect" in status.description


def test_sources_default_per_provider_and_overrides() -> None:
    status = StatusConfig()
    anthropic = resolve_source("anthropic", None, None, status)
    assert anthropic == KNOWN_STATUS_PAGES["anthropic"]
    assert anthropic is not None and anthropic.component == "Claude API"
    gemini = resolve_source("gemini", None, None, status)
    assert gemini is not None and (gemini.format, gemini.component) == (
        "gcloud",
        "Vertex Gemini API",
    )
    assert resolve_source("openai-compatible", None, None, status) is None
    assert resolve_source("anthropic", "off", None, status) is None
    own = resolve_source("llama.cpp", "https://status.example.com/index.json", "GPU 1", status)
    assert own == StatusSource("https://status.example.com/index.json", "betterstack", "GPU 1")
    # A provider-level page (e.g. another component) replaces the built-in one.
    pages = StatusConfig(pages={"anthropic": StatusPageConfig(component="Claude Code")})
    assert resolve_source("anthropic", None, None, pages) == StatusSource(
        KNOWN_STATUS_PAGES["anthropic"].url, "statuspage", "Claude Code"
    )
    assert infer_format("https://x.example/feed.rss") is None
    assert resolve_source("x", "https://x.example/feed.rss", None, status) is None


def test_config_groups_targets_by_source_and_rejects_unknown_providers() -> None:
    config = parse_config(
        "[status.pages.groq]\nurl = 'https://groq.example/api/v2/summary.json'\n"
        "[[targets]]\nname='a'\nprovider='anthropic'\nmodel='claude-haiku-4-5'\n"
        "[[targets]]\nname='b'\nprovider='anthropic'\nmodel='claude-sonnet-4-5'\n"
        "[[targets]]\nname='c'\nprovider='groq'\nmodel='llama'\n"
        "[[targets]]\nname='d'\nprovider='openai'\nmodel='gpt-4o'\nstatus_url='off'\n"
    )
    sources = config_sources(config)
    assert [(s.source.url, s.targets) for s in sources] == [
        ("https://status.claude.com/api/v2/summary.json", ("a", "b")),
        ("https://groq.example/api/v2/summary.json", ("c",)),
    ]
    with pytest.raises(Exception, match="unknown provider 'grok'; did you mean 'groq'"):
        parse_config("[status.pages.grok]\nurl = 'https://x.example/index.json'\n")


def _status(
    state: str, when: datetime, url: str = "https://s.example/api/v2/summary.json"
) -> OfficialStatus:
    return OfficialStatus(
        StatusSource(url, "statuspage", "API"),
        state,  # type: ignore[arg-type]
        f"API: {state}",
        checked_at=iso(when),
    )


def test_store_keeps_changed_at_while_the_state_holds(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s.db")
    t0 = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)
    save_statuses(db, [(_status("operational", t0), ("a", "b"))])
    save_statuses(db, [(_status("operational", t0 + timedelta(minutes=5)), ("a", "b"))])
    got = official_by_target(db)
    assert set(got) == {"a", "b"}
    assert got["a"].checked_at == "2026-10-21T12:05:00.000Z"
    assert got["a"].changed_at == "2026-10-21T12:00:00.000Z"
    save_statuses(db, [(_status("major_outage", t0 + timedelta(minutes=10)), ("a", "b"))])
    assert official_by_target(db)["a"].changed_at == "2026-10-21T12:10:00.000Z"
    # Not read for more than 3 intervals: unknown, not the old state.
    late = official_by_target(db, now=t0 + timedelta(minutes=26), interval_s=300)
    assert late["a"].state == "unknown" and late["a"].description == "last read 16 min ago"
    fresh = official_by_target(db, now=t0 + timedelta(minutes=20), interval_s=300)
    assert fresh["a"].state == "major_outage"


def test_status_line_texts() -> None:

    def stored(state: str) -> StoredOfficial:
        return StoredOfficial("k", "u", None, None, state, "", (), "t", None)

    assert status_line(State.DOWN, stored("operational")) == (
        "measured ✖ down · official ✔ operational"
    )
    assert status_line(State.UP, stored("major_outage")) == (
        "measured ✔ up · official ✖ major outage"
    )
    assert status_line(State.DEGRADED, stored("unknown")) == (
        "measured ▲ degraded · official ? unknown"
    )
    assert status_line(State.UP, None) == "measured ✔ up · official –"


async def test_poller_round_goes_to_the_database(server: StatusServer, tmp_path: Path) -> None:
    good = server.add(
        "pollgood", Page(body=fixture("incidentio_openai.json")), "api/v2/summary.json"
    )
    bad = server.add("pollbad", Page(status=404, body=b""), "api/v2/summary.json")
    db = open_db(tmp_path / "p.db")

    async def sink(readings: object) -> None:
        save_statuses(db, readings)  # type: ignore[arg-type]

    poller = StatusPoller(
        [
            PolledSource(StatusSource(good, "statuspage"), ("openai-mini",)),
            PolledSource(StatusSource(bad, "statuspage"), ("groq-llama",)),
        ],
        sink,
        interval_s=30,
        timeout_s=2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    for _ in range(100):
        if poller.rounds:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    got = official_by_target(db)
    assert got["openai-mini"].state == "operational"
    assert got["groq-llama"].state == "unknown" and got["groq-llama"].description == "HTTP 404"
    assert json.loads(
        next(db.query("SELECT targets FROM official_status WHERE url = ?", [good]))["targets"]
    ) == ["openai-mini"]


def test_status_line_words_every_measured_state_as_the_dashboard_does() -> None:
    """The measured side uses the dashboard's one wording, including the display-only states
    (a copy of the labels had missed in flight, config error and maintenance)."""
    assert status_line(State.IN_FLIGHT, None) == "measured ⧗ probing · official –"
    assert status_line(State.CONFIG_ERROR, None) == "measured ⚙ config error · official –"
    assert status_line(State.MAINTENANCE, None) == "measured ◇ maintenance · official –"
    assert set(STATE_LABELS) == set(State)

"""Official status pages: read what a provider says about itself, beside what we measure.

Three machine-readable formats (docs/questions.md, "Official status"):

* **Atlassian Statuspage v2** ``/api/v2/summary.json`` (incident.io pages serve the same API):
  ``status.indicator`` (``none`` / ``minor`` / ``major`` / ``critical``, and ``maintenance``),
  ``components[].{name,status}`` (``operational`` / ``degraded_performance`` /
  ``partial_outage`` / ``major_outage`` / ``under_maintenance``) and the unresolved
  ``incidents[].{name,status,impact,shortlink,started_at}``. Source: Atlassian Statuspage
  "Status API" documentation (``summary.json``).
* **Better Stack** ``/index.json`` (JSON:API): ``data.attributes.aggregate_state``
  (``operational`` / ``degraded`` / ``downtime`` / ``maintenance``), ``included[]`` items of
  type ``status_page_resource`` (``public_name``, ``status``) and ``status_report``
  (``title``, ``starts_at``, ``aggregate_state``; ``resolved`` when over). Better Stack
  documents the page, not this JSON: the shape is taken from public pages' responses.
* **Google Cloud** ``status.cloud.google.com/incidents.json``: a list of incidents with
  ``external_desc``, ``begin``, ``end`` (absent while open), ``severity``, ``status_impact``
  (``SERVICE_OUTAGE`` / ``SERVICE_DISRUPTION`` / ``SERVICE_INFORMATION``), ``uri`` and
  ``affected_products[].{title,id}``; the product (e.g. "Vertex Gemini API") is required.

A page that cannot be read (timeout, refused, 4xx/5xx, a redirect, HTML, malformed JSON, an
unexpected shape) is ``unknown``: it says nothing about the provider, never "degraded".
Reading is off the probing path: its own client, its own slow schedule
(:class:`StatusPoller`), never a probe's connection pool or semaphore.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from probes.config import Config
from probes.question_config import StatusConfig, StatusFormat
from probes.timestamps import iso, utc_now

OfficialState = Literal[
    "operational", "degraded", "partial_outage", "major_outage", "maintenance", "unknown"
]
"""What the provider says, normalised to Statuspage's component vocabulary plus unknown."""

#: Bodies above this are not status documents (Google Cloud's full history is a few MB).
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StatusSource:
    """Where one official status is read.

    Attributes:
        url: the machine-readable URL.
        format: how to read it.
        component: the component / resource / product that counts, or None (page-wide).
    """

    url: str
    format: StatusFormat
    component: str | None = None

    @property
    def key(self) -> str:
        """Identity of the source (URL and component), the stored row's key."""
        return f"{self.url}#{self.component}" if self.component else self.url

    @property
    def page_url(self) -> str:
        """The human page the API belongs to (for links): the URL without its API path."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/"


#: Built-in pages per provider name (docs/questions.md lists their sources and what is
#: unverified). Providers without a machine-readable page have no entry.
KNOWN_STATUS_PAGES: dict[str, StatusSource] = {
    "openai": StatusSource("https://status.openai.com/api/v2/summary.json", "statuspage"),
    "openai-responses": StatusSource("https://status.openai.com/api/v2/summary.json", "statuspage"),
    "anthropic": StatusSource(
        "https://status.claude.com/api/v2/summary.json", "statuspage", "Claude API"
    ),
    "gemini": StatusSource(
        "https://status.cloud.google.com/incidents.json", "gcloud", "Vertex Gemini API"
    ),
    "groq": StatusSource("https://groqstatus.com/api/v2/summary.json", "statuspage"),
    "replicate": StatusSource("https://replicatestatus.com/api/v2/summary.json", "statuspage"),
    "cerebras": StatusSource("https://status.cerebras.ai/api/v2/summary.json", "statuspage"),
    "together": StatusSource("https://status.together.ai/index.json", "betterstack"),
    "fireworks": StatusSource("https://status.fireworks.ai/index.json", "betterstack"),
}


def infer_format(url: str) -> StatusFormat | None:
    """The format a status URL's path implies, or None when it implies none."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(("/api/v2/summary.json", "/api/v2/status.json")):
        return "statuspage"
    if path.endswith("/index.json"):
        return "betterstack"
    if path.endswith("incidents.json"):
        return "gcloud"
    return None


@dataclass(frozen=True, slots=True)
class OfficialIncident:
    """An open incident as the provider words it.

    Attributes:
        title: its title.
        url: a link to it (or to the page), when one is known.
        status: the provider's incident status (``investigating``, ``identified``, ...).
        impact: the provider's impact (``minor``, ``SERVICE_OUTAGE``, ...).
        started_at: when it began, as the provider wrote it (ISO 8601).
    """

    title: str
    url: str | None = None
    status: str | None = None
    impact: str | None = None
    started_at: str | None = None


@dataclass(frozen=True, slots=True)
class OfficialStatus:
    """What a status page said when it was last read.

    Attributes:
        source: the page that was read.
        state: the normalised state (``unknown`` when the page could not be read).
        description: the provider's words for it, or why it is unknown.
        indicator: the page-wide indicator as sent (Statuspage ``status.indicator``, Better
            Stack ``aggregate_state``), or None.
        component_status: the configured component's status as sent, or None.
        incidents: the open incidents (for the component when one is configured and the
            incident names components).
        checked_at: when it was read, UTC ISO 8601.
        fetch_ms: how long the read took, ms (monotonic), or None when nothing came back.
    """

    source: StatusSource
    state: OfficialState
    description: str
    indicator: str | None = None
    component_status: str | None = None
    incidents: tuple[OfficialIncident, ...] = ()
    checked_at: str = ""
    fetch_ms: float | None = None


class StatusFormatError(ValueError):
    """The document is JSON but not the shape its format promises."""


_INDICATOR_STATES: dict[str, OfficialState] = {
    "none": "operational",
    "minor": "degraded",
    "major": "partial_outage",
    "critical": "major_outage",
    "maintenance": "maintenance",
}
_COMPONENT_STATES: dict[str, OfficialState] = {
    "operational": "operational",
    "degraded_performance": "degraded",
    "partial_outage": "partial_outage",
    "major_outage": "major_outage",
    "under_maintenance": "maintenance",
}
_BETTERSTACK_STATES: dict[str, OfficialState] = {
    "operational": "operational",
    "degraded": "degraded",
    "downtime": "major_outage",
    "maintenance": "maintenance",
}
_CLOSED_INCIDENT = frozenset({"resolved", "postmortem", "completed"})


@dataclass(frozen=True, slots=True)
class _Reading:
    state: OfficialState
    description: str
    indicator: str | None = None
    component_status: str | None = None
    incidents: tuple[OfficialIncident, ...] = ()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def parse_statuspage(doc: Any, component: str | None) -> _Reading:
    """Read a Statuspage v2 ``summary.json`` (pure).

    The configured component's status decides when it is on the page; otherwise the page-wide
    indicator does (and the description says the component was not found).

    Raises:
        StatusFormatError: when ``status.indicator`` is missing.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), dict):
        raise StatusFormatError("no status object (not a Statuspage v2 summary)")
    indicator = _text(doc["status"].get("indicator"))
    if indicator is None:
        raise StatusFormatError("no status.indicator")
    page_state = _INDICATOR_STATES.get(indicator, "unknown")
    page_words = _text(doc["status"].get("description")) or indicator
    comp = None
    comp_id = None
    comp_name = component
    found = doc.get("components")
    components: list[Any] = found if isinstance(found, list) else []
    if component is not None:
        for item in components:
            if isinstance(item, dict) and _same(_text(item.get("name")), component):
                comp, comp_id = _text(item.get("status")), item.get("id")
                comp_name = _text(item.get("name"))
                break
    incidents = []
    for item in doc.get("incidents") or []:
        if not isinstance(item, dict) or item.get("status") in _CLOSED_INCIDENT:
            continue
        named = item.get("components")
        if comp_id is not None and isinstance(named, list) and named:
            ids = {c.get("id") for c in named if isinstance(c, dict)}
            if comp_id not in ids:
                continue
        incidents.append(
            OfficialIncident(
                title=_text(item.get("name")) or "(untitled incident)",
                url=_text(item.get("shortlink")),
                status=_text(item.get("status")),
                impact=_text(item.get("impact")),
                started_at=_text(item.get("started_at")) or _text(item.get("created_at")),
            )
        )
    if comp is not None:
        state = _COMPONENT_STATES.get(comp, "unknown")
        words = f"{comp_name}: {comp.replace('_', ' ')}"
    else:
        state = page_state
        words = page_words
        if component is not None:
            words = f"{page_words} (component {component!r} not on the page)"
    return _Reading(state, words, indicator, comp, tuple(incidents))


def parse_betterstack(doc: Any, component: str | None, page_url: str) -> _Reading:
    """Read a Better Stack ``index.json`` (pure).

    Raises:
        StatusFormatError: when ``data.attributes.aggregate_state`` is missing.
    """
    data = doc.get("data") if isinstance(doc, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    aggregate = _text(attributes.get("aggregate_state")) if isinstance(attributes, dict) else None
    if aggregate is None:
        raise StatusFormatError("no data.attributes.aggregate_state (not a Better Stack index)")
    included = doc.get("included") if isinstance(doc.get("included"), list) else []
    comp = None
    comp_name = component
    incidents = []
    for item in included:
        if not isinstance(item, dict) or not isinstance(item.get("attributes"), dict):
            continue
        attrs = item["attributes"]
        if item.get("type") == "status_page_resource" and component is not None:
            if comp is None and _same(_text(attrs.get("public_name")), component):
                comp, comp_name = _text(attrs.get("status")), _text(attrs.get("public_name"))
        elif item.get("type") == "status_report":
            report_state = _text(attrs.get("aggregate_state"))
            if report_state == "resolved" or _text(attrs.get("ends_at")):
                continue
            incidents.append(
                OfficialIncident(
                    title=_text(attrs.get("title")) or "(untitled report)",
                    url=page_url,
                    status=report_state,
                    impact=_text(attrs.get("report_type")),
                    started_at=_text(attrs.get("starts_at")),
                )
            )
    if comp is not None:
        state = _BETTERSTACK_STATES.get(comp, "unknown")
        words = f"{comp_name}: {comp}"
    else:
        state = _BETTERSTACK_STATES.get(aggregate, "unknown")
        words = aggregate
        if component is not None:
            words = f"{aggregate} (resource {component!r} not on the page)"
    return _Reading(state, words, aggregate, comp, tuple(incidents))


_GCLOUD_IMPACT: dict[str, OfficialState] = {
    "SERVICE_OUTAGE": "major_outage",
    "SERVICE_DISRUPTION": "degraded",
    "SERVICE_INFORMATION": "operational",
}
_GCLOUD_SEVERITY: dict[str, OfficialState] = {
    "high": "major_outage",
    "medium": "partial_outage",
    "low": "degraded",
}
_SEVERITY_ORDER: tuple[OfficialState, ...] = (
    "operational",
    "maintenance",
    "degraded",
    "partial_outage",
    "major_outage",
)


def parse_gcloud(doc: Any, product: str | None, page_url: str) -> _Reading:
    """Read Google Cloud's ``incidents.json`` for one product (pure).

    The product's state is the worst open incident's: ``status_impact`` first
    (``SERVICE_OUTAGE`` → major outage, ``SERVICE_DISRUPTION`` → degraded,
    ``SERVICE_INFORMATION`` → operational), else ``severity`` (high / medium / low); no open
    incident naming the product means operational.

    Raises:
        StatusFormatError: when the document is not a list, or no product is configured (the
            feed covers every Google Cloud product).
    """
    if not isinstance(doc, list):
        raise StatusFormatError("not a list of incidents (not Google Cloud incidents.json)")
    if product is None:
        raise StatusFormatError("a Google Cloud status needs a product (status_component)")
    worst: OfficialState = "operational"
    incidents = []
    for item in doc:
        if not isinstance(item, dict) or _text(item.get("end")):
            continue
        products = item.get("affected_products")
        names = [
            (p.get("title"), p.get("id"))
            for p in (products if isinstance(products, list) else [])
            if isinstance(p, dict)
        ]
        if not any(_same(t, product) or _same(i, product) for t, i in names):
            continue
        impact = _text(item.get("status_impact"))
        severity = _text(item.get("severity"))
        state = _GCLOUD_IMPACT.get(impact or "") or _GCLOUD_SEVERITY.get(severity or "", "degraded")
        if _SEVERITY_ORDER.index(state) > _SEVERITY_ORDER.index(worst):
            worst = state
        uri = _text(item.get("uri"))
        incidents.append(
            OfficialIncident(
                title=_text(item.get("external_desc")) or "(untitled incident)",
                url=f"{page_url}{uri}" if uri else page_url,
                status="open",
                impact=impact or severity,
                started_at=_text(item.get("begin")),
            )
        )
    words = f"{product}: {worst.replace('_', ' ')}"
    if incidents:
        words += f" ({len(incidents)} open incident{'s' if len(incidents) > 1 else ''})"
    return _Reading(worst, words, None, None, tuple(incidents))


def read_document(source: StatusSource, doc: Any) -> _Reading:
    """Read a decoded document in ``source``'s format (pure).

    Raises:
        StatusFormatError: when it is not that format's shape.
    """
    if source.format == "statuspage":
        return parse_statuspage(doc, source.component)
    if source.format == "betterstack":
        return parse_betterstack(doc, source.component, source.page_url)
    return parse_gcloud(doc, source.component, source.page_url)


def status_client() -> httpx.AsyncClient:
    """The status poller's own client: no redirects (a moved page must be updated in the
    config, not silently followed), no proxy from the environment, small pool."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0),
        headers={"Accept": "application/json", "User-Agent": "inferwatch/0.1 (status)"},
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        follow_redirects=False,
        trust_env=False,
    )


async def _read_body(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise StatusFormatError(f"body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch_status(
    client: httpx.AsyncClient,
    source: StatusSource,
    *,
    timeout_s: float = 10.0,
    clock: Callable[[], float] = time.perf_counter,
    wall_clock: Callable[[], datetime] = utc_now,
) -> OfficialStatus:
    """Read one status page; never raises for what the page or the network does.

    Args:
        client: a client from :func:`status_client` (never a probe's client).
        source: the page to read.
        timeout_s: deadline of the whole read, seconds.
        clock: monotonic clock for ``fetch_ms``.
        wall_clock: UTC wall clock for ``checked_at``.

    Returns:
        The page's status, or ``state="unknown"`` with the reason in ``description``.
    """
    checked_at = iso(wall_clock())
    t0 = clock()

    def unknown(why: str, elapsed: float | None = None) -> OfficialStatus:
        return OfficialStatus(source, "unknown", why, checked_at=checked_at, fetch_ms=elapsed)

    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("GET", source.url) as response:
                status = response.status_code
                if 300 <= status < 400:
                    where = response.headers.get("location", "?")
                    return unknown(f"moved (HTTP {status} to {where}): update the status URL")
                if status != 200:
                    return unknown(f"HTTP {status}")
                body = await _read_body(response)
                elapsed = (clock() - t0) * 1000.0
                content_type = response.headers.get("content-type", "").lower()
    except TimeoutError:
        return unknown(f"timed out after {timeout_s:g} s")
    except StatusFormatError as exc:
        return unknown(str(exc))
    except (httpx.HTTPError, OSError) as exc:
        return unknown(f"cannot connect: {type(exc).__name__}")
    head = body.lstrip()[:64].lower()
    if "html" in content_type or head.startswith((b"<!doctype", b"<html")):
        return unknown("an HTML page, not the status API", elapsed)
    try:
        doc = json.loads(body)
    except ValueError:
        return unknown("not JSON", elapsed)
    try:
        reading = read_document(source, doc)
    except StatusFormatError as exc:
        return unknown(f"unexpected JSON: {exc}", elapsed)
    return OfficialStatus(
        source=source,
        state=reading.state,
        description=reading.description,
        indicator=reading.indicator,
        component_status=reading.component_status,
        incidents=reading.incidents,
        checked_at=checked_at,
        fetch_ms=elapsed,
    )


@dataclass(frozen=True, slots=True)
class PolledSource:
    """A status source and the targets it stands for."""

    source: StatusSource
    targets: tuple[str, ...]


def resolve_source(
    provider: str,
    status_url: str | None,
    status_component: str | None,
    config: StatusConfig,
) -> StatusSource | None:
    """The status page of one target: its own ``status_url`` / ``status_component``, else
    ``[status.pages.<provider>]``, else the built-in page of its provider; None for none.

    ``status_url = "off"`` disables it; a URL whose format cannot be inferred and is not
    configured is skipped (None).
    """
    if status_url == "off":
        return None
    page = config.pages.get(provider)
    known = KNOWN_STATUS_PAGES.get(provider)
    url = status_url or (page.url if page else None) or (known.url if known else None)
    if url is None:
        return None
    fmt = (page.format if page and not status_url else None) or infer_format(url)
    if fmt is None:
        return None
    component = status_component
    if component is None and page is not None and page.component and not status_url:
        component = page.component
    if component is None and known is not None and url == known.url:
        component = known.component
    return StatusSource(url, fmt, component)


def polled_sources(
    targets: Sequence[tuple[str, str, str | None, str | None]], config: StatusConfig
) -> list[PolledSource]:
    """One entry per distinct status source, with the targets it stands for.

    Args:
        targets: ``(name, provider, status_url, status_component)`` of each enabled target.
        config: the ``[status]`` table.
    """
    if not config.enabled:
        return []
    by_key: dict[str, tuple[StatusSource, list[str]]] = {}
    for name, provider, url, component in targets:
        source = resolve_source(provider, url, component, config)
        if source is not None:
            by_key.setdefault(source.key, (source, []))[1].append(name)
    return [PolledSource(s, tuple(names)) for s, names in by_key.values()]


StatusSink = Callable[[Sequence[tuple[OfficialStatus, tuple[str, ...]]]], Awaitable[None]]


@dataclass
class StatusPoller:
    """Reads every source on its own slow schedule and hands the results to ``sink``.

    Runs beside the scheduler as its own task with its own client, so a slow or hanging
    status page never delays a probe.

    Attributes:
        sources: what to poll.
        sink: awaited with ``(status, targets)`` pairs after each round.
        interval_s: seconds between rounds.
        timeout_s: deadline of one page read.
        fetch: the read function (:func:`fetch_status`); injectable for tests.
    """

    sources: Sequence[PolledSource]
    sink: StatusSink
    interval_s: float = 300.0
    timeout_s: float = 10.0
    fetch: Callable[..., Awaitable[OfficialStatus]] = fetch_status
    rounds: int = field(default=0, init=False)

    async def poll_once(self, client: httpx.AsyncClient) -> list[OfficialStatus]:
        """Read every source once (concurrently) and hand the results to the sink."""
        results = await asyncio.gather(
            *(self.fetch(client, p.source, timeout_s=self.timeout_s) for p in self.sources)
        )
        await self.sink([(r, p.targets) for r, p in zip(results, self.sources, strict=True)])
        self.rounds += 1
        return list(results)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (a round in progress finishes first)."""
        if not self.sources:
            return
        async with status_client() as client:
            while not stop.is_set():
                await self.poll_once(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)


def config_sources(config: Config) -> list[PolledSource]:
    """The distinct status sources of a config's enabled targets (see :func:`polled_sources`)."""
    return polled_sources(
        [
            (t.name, t.config.provider, t.config.status_url, t.config.status_component)
            for t in config.resolved()
        ],
        config.status,
    )

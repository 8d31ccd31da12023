"""Prometheus ``/metrics`` of the prober, in OpenTelemetry GenAI names (docs/prometheus-metrics.md).

Served by prometheus-client's own HTTP server on a thread of its own (``--metrics HOST:PORT``
or ``[metrics] listen``), never on the probing loop. Names follow the OTel GenAI semantic
conventions translated to Prometheus (dots to underscores, base unit as suffix):
``gen_ai_client_operation_duration_seconds`` and
``gen_ai_client_operation_time_to_first_chunk_seconds`` (histograms with OTel's bucket
boundaries), ``gen_ai_client_token_usage`` by ``gen_ai_token_type``; inferwatch's own
``inferwatch_*`` series beside them. Every series carries ``target``, ``gen_ai_provider_name``,
``gen_ai_request_model`` and ``vantage``; nothing per request (no ids, no messages).

Counters and histograms start from zero in each prober process and are never rebuilt from the
database: Prometheus' ``rate``/``increase`` handle the reset, and nothing is counted twice.
Gauges (state, blind, headroom) show the current value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from probes.config import Config
from probes.providers import otel_provider_name
from probes.record import ProbeRecord
from probes.timestamps import parse_iso
from store.alerting import TargetView
from store.health import State
from store.outage import BlindEnded, BlindStarted, Event, Transition

#: ``gen_ai.client.operation.duration`` / ``time_to_first_chunk`` boundaries, seconds (OTel).
DURATION_BUCKETS_S = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
#: ``gen_ai.client.token.usage`` boundaries, tokens (OTel).
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
#: Label values of ``inferwatch_target_state{state=...}`` (a state set: 1 for the current).
STATE_VALUES: dict[State, str] = {
    State.UP: "up",
    State.DEGRADED: "degraded",
    State.DOWN: "down",
    State.NO_DATA: "no_data",
    State.PAUSED: "paused",
    State.NOT_CONFIGURED: "not_configured",
    State.MAINTENANCE: "maintenance",
}
# The ``*_created`` series double the exposition and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_BASE = ("target", "gen_ai_provider_name", "gen_ai_request_model", "vantage")
_GEN_AI = (*_BASE, "gen_ai_operation_name")
_LISTEN = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]*)):(?P<port>\d{1,5})$"
)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``127.0.0.1:9464``, ``:9464``, ``[::1]:9464``) as ``(host, port)``;
    an empty host means every interface.

    Raises:
        ValueError: for anything else.
    """
    match = _LISTEN.match(text.strip())
    port = int(match.group("port")) if match else -1
    if match is None or not 0 <= port <= 65535:
        raise ValueError(f"cannot read {text!r} as HOST:PORT (e.g. 127.0.0.1:9464)")
    host = match.group("v6") or match.group("host") or "0.0.0.0"
    return host, port


class ProberMetrics:
    """The prober's metrics, in their own registry (one per prober process).

    Args:
        config: the config (targets, their providers and models, the vantage).
        registry: where to register (a fresh one by default).
    """

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.vantage = config.prober.vantage_name()
        r = self.registry
        # Successful probes only, without OTel's error.type: a label per failure kind would
        # multiply the 17 series of this histogram by the kinds seen (the scrape cost of a
        # fleet); failures are counted by kind in inferwatch_probes_total.
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Request sent to terminal marker of successful probes (OTel gen_ai.client."
            "operation.duration; failures by kind: inferwatch_probes_total).",
            _GEN_AI,
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to first token of successful probes (OTel gen_ai.client.operation."
            "time_to_first_chunk; any generated chunk, reasoning included).",
            _GEN_AI,
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per probe from the provider's usage (OTel gen_ai.client.token.usage); "
            "input includes cached tokens.",
            (*_GEN_AI, "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.probes = Counter(
            "inferwatch_probes",
            "Probes finished, by outcome (ok, error), error_type (empty when ok) and kind "
            "(canary, cache_check, workload, cold_start).",
            (*_BASE, "outcome", "error_type", "kind"),
            registry=r,
        )
        self.cost = Counter(
            "inferwatch_cost_usd",
            "What the probes cost, USD (priced probes only).",
            _BASE,
            registry=r,
        )
        self.state = Gauge(
            "inferwatch_target_state",
            "Outage state of each target (a state set: 1 for the current state, 0 otherwise).",
            (*_BASE, "state"),
            registry=r,
        )
        self.info = Gauge(
            "inferwatch_target_info",
            "Always 1: each target's group (empty when none).",
            (*_BASE, "group"),
            registry=r,
        )
        self.remaining_requests = Gauge(
            "inferwatch_ratelimit_remaining_requests",
            "Requests left in the provider's rate-limit window, from the newest probe.",
            _BASE,
            registry=r,
        )
        self.remaining_tokens = Gauge(
            "inferwatch_ratelimit_remaining_tokens",
            "Tokens left in the provider's rate-limit window, from the newest probe.",
            _BASE,
            registry=r,
        )
        self.last_probe = Gauge(
            "inferwatch_last_probe_timestamp_seconds",
            "Unix time the newest probe of the target started.",
            _BASE,
            registry=r,
        )
        self.blind = Gauge(
            "inferwatch_monitor_blind",
            "1 while the monitor has no network on its side (no provider is blamed), else 0.",
            ("vantage",),
            registry=r,
        )
        self.blind.labels(self.vantage).set(0)
        self._labels: dict[str, tuple[str, str, str, str]] = {}
        for t in config.resolved():
            base = self._base(t.name, t.config.provider, t.config.model)
            self.info.labels(*base, t.config.group or "").set(1)
            # Series exist from the start at 0, so the first probe is a visible increase.
            self.probes.labels(*base, "ok", "", "canary")
            self.cost.labels(*base)
            self.ttft.labels(*base, "chat")
            self.duration.labels(*base, "chat")

    def _base(self, target: str, provider: str, model: str) -> tuple[str, str, str, str]:
        labels = self._labels.get(target)
        if labels is None:
            labels = (target, otel_provider_name(provider), model, self.vantage)
            self._labels[target] = labels
        return labels

    def on_record(self, record: ProbeRecord) -> None:
        """Count one finished probe (any thread; a few locked increments).

        The latency and token histograms take canary probes only: a long-prompt workload or
        a cache check has another TTFT by design (docs/questions.md) and would skew them.
        """
        base = self._base(record.target, record.provider, record.model)
        kind = record.error_kind or "" if record.status != "ok" else ""
        self.probes.labels(*base, record.status, kind, record.kind).inc()
        if record.cost_usd:
            self.cost.labels(*base).inc(record.cost_usd)
        if record.kind == "canary":
            if record.status == "ok" and record.total_ms is not None:
                self.duration.labels(*base, "chat").observe(record.total_ms / 1000)
            if record.status == "ok" and record.ttft_ms is not None:
                self.ttft.labels(*base, "chat").observe(record.ttft_ms / 1000)
            if record.input_tokens is not None:
                self.tokens.labels(*base, "chat", "input").observe(record.input_tokens)
            if record.output_tokens is not None:
                self.tokens.labels(*base, "chat", "output").observe(record.output_tokens)
        if record.ratelimit_remaining_requests is not None:
            self.remaining_requests.labels(*base).set(record.ratelimit_remaining_requests)
        if record.ratelimit_remaining_tokens is not None:
            self.remaining_tokens.labels(*base).set(record.ratelimit_remaining_tokens)
        self.last_probe.labels(*base).set(parse_iso(record.started_at).timestamp())

    def set_state(self, target: str, state: State) -> None:
        """Publish a target's outage state (1 for ``state``, 0 for the others)."""
        base = self._labels.get(target)
        if base is None:
            return
        for st, value in STATE_VALUES.items():
            self.state.labels(*base, value).set(1 if st is state else 0)

    def init_states(self, states: Mapping[str, TargetView], blind: bool) -> None:
        """The states at start (gauges may come from the database; counters never do)."""
        for name, view in states.items():
            self.set_state(name, view.state)
        self.blind.labels(self.vantage).set(int(blind))

    def on_events(self, events: Iterable[Event]) -> None:
        """Follow state changes and blindness (a :class:`store.history.HistoryWriter` observer)."""
        for e in events:
            if isinstance(e, Transition):
                self.set_state(e.target, e.to_state)
            elif isinstance(e, BlindStarted):
                self.blind.labels(self.vantage).set(1)
            elif isinstance(e, BlindEnded):
                self.blind.labels(self.vantage).set(0)

    def serve(self, listen: str) -> Any:
        """Serve ``/metrics`` on ``HOST:PORT`` from a daemon thread; returns the server
        (``shutdown()`` stops it).

        Raises:
            ValueError: a malformed address.
            OSError: the port cannot be bound.
        """
        host, port = parse_listen(listen)
        server, _thread = start_http_server(port, host, registry=self.registry)
        return server

"""The dashboard on Prometheus instead of a database (``inferwatch view --prometheus URL``).

A snapshot source for the dashboard's reader: it asks Prometheus' HTTP API
(``/api/v1/query``, JSON; docs/prometheus-metrics.md lists the series) for every vantage it
scrapes and builds the same :class:`store.reader.Snapshot` the database reader builds, so the
screens render it unchanged. Each target becomes a group whose first row is the target seen from all
vantages together and whose other rows are the vantages, with the split said in words
("down from eu-office only; up from 2 other vantages"): is it us or them.

Percentiles come from histogram buckets summed across series before
``histogram_quantile`` (``sum by (le, target)``): exact across vantages to one bucket, never
an average of percentiles.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from probes.timestamps import iso
from store.control import ProberStatus
from store.health import State, Verdict
from store.reader import Snapshot
from store.summary import TargetSummary

_STATES = {
    "up": State.UP,
    "degraded": State.DEGRADED,
    "down": State.DOWN,
    "no_data": State.NO_DATA,
    "paused": State.PAUSED,
    "not_configured": State.NOT_CONFIGURED,
    "maintenance": State.MAINTENANCE,
}
ALL = "*"
"""The ``vantage`` of a target's all-vantages row."""


def split_words(states: dict[str, State]) -> str:
    """The split of a target's state across vantages in words.

    ``{"eu-office": DOWN, "us-east": UP, "ap-south": UP}`` ->
    ``"down from eu-office only; up from 2 other vantages"``.
    """
    if not states:
        return "no vantage reports it"
    by_state: dict[State, list[str]] = defaultdict(list)
    for vantage, state in sorted(states.items()):
        by_state[state].append(vantage)
    if len(by_state) == 1:
        state, names = next(iter(by_state.items()))
        return (
            f"{state.value} from all {len(names)} vantages"
            if len(names) > 1
            else (f"{state.value} from {names[0]} (the only vantage)")
        )
    order = sorted(by_state, key=lambda s: (s is State.UP, -len(by_state[s])))
    first, rest = order[0], order[1:]
    names = by_state[first]
    parts = [f"{first.value} from {', '.join(names)}{' only' if len(names) == 1 else ''}"]
    for state in rest:
        n = len(by_state[state])
        parts.append(f"{state.value} from {n} other vantage{'s' if n > 1 else ''}")
    return "; ".join(parts)


def _aggregate(states: dict[str, State]) -> State:
    known = [s for s in states.values() if s in (State.UP, State.DEGRADED, State.DOWN)]
    if not known:
        return next(iter(states.values()), State.NO_DATA)
    if all(s is State.DOWN for s in known):
        return State.DOWN
    if all(s is State.UP for s in known):
        return State.UP
    return State.DEGRADED


@dataclass
class _Row:
    target: str
    vantage: str
    provider: str = ""
    model: str = ""
    group: str | None = None
    state: State | None = None
    ok: float = 0.0
    errors: float = 0.0
    kinds: dict[str, float] | None = None
    cost: float = 0.0
    last_s: float | None = None
    blind: bool = False
    remaining_requests: float | None = None
    remaining_tokens: float | None = None
    p: dict[str, float | None] | None = None


class PrometheusSource:
    """Reads dashboard snapshots from Prometheus (one reader thread, one call at a time).

    Args:
        url: Prometheus' base URL (``http://127.0.0.1:9090``).
        timeout_s: per-request timeout.
    """

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.label = self.url
        self._client = httpx.Client(timeout=timeout_s)
        self._version = 0
        self.waiting = "view only: reading Prometheus, no prober to command"
        """Why commands are unavailable (the dashboard's reader shows it)."""

    def connection(self) -> None:
        """No database behind this source: commands and cost reports are unavailable."""
        return None

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def check(self) -> None:
        """One cheap query, so a wrong URL is a message before the dashboard opens.

        Raises:
            ConnectionError: Prometheus cannot be reached or does not answer its API.
        """
        try:
            self.query("vector(1)")
        except (httpx.HTTPError, ValueError) as exc:
            raise ConnectionError(
                f"cannot query Prometheus at {self.url}: {type(exc).__name__}"
            ) from None

    def query(self, promql: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """An instant query's ``data.result`` (vector); raises ``ValueError`` on an API error."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        response = self._client.get(f"{self.url}/api/v1/query", params=params)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus: {body.get('error', 'query failed')}")
        result = body["data"]["result"]
        return result if isinstance(result, list) else []

    @staticmethod
    def _value(sample: dict[str, Any]) -> float | None:
        value = float(sample["value"][1])
        return None if math.isnan(value) or math.isinf(value) else value

    def read(
        self, window_s: float, now: datetime | None = None, detail: str | None = None
    ) -> Snapshot:
        """A snapshot over ``[now - window_s, now]`` of every target and vantage Prometheus has."""
        now = now or datetime.now(UTC)
        w = f"{max(int(window_s), 60)}s"
        rows: dict[tuple[str, str], _Row] = {}

        def row(m: dict[str, str], vantage: str | None = None) -> _Row:
            key = (m.get("target", ""), vantage if vantage is not None else m.get("vantage", ""))
            r = rows.get(key)
            if r is None:
                r = rows[key] = _Row(*key, p={}, kinds={})
            r.provider = m.get("gen_ai_provider_name", r.provider)
            r.model = m.get("gen_ai_request_model", r.model)
            return r

        # Every (target, vantage) seen in the window, with its group.
        for s in self.query(f"max_over_time(inferwatch_target_info[{w}])", now):
            row(s["metric"]).group = s["metric"].get("group") or None
        for s in self.query("inferwatch_target_state == 1", now):
            row(s["metric"]).state = _STATES.get(s["metric"].get("state", ""), State.NO_DATA)
        blind = {
            s["metric"].get("vantage", ""): bool(self._value(s))
            for s in self.query("inferwatch_monitor_blind", now)
        }
        for s in self.query(
            f"sum by (target, vantage, outcome, error_type) "
            f"(increase(inferwatch_probes_total[{w}]))",
            now,
        ):
            r, v = row(s["metric"]), self._value(s) or 0.0
            if s["metric"].get("outcome") == "ok":
                r.ok += v
            else:
                r.errors += v
                assert r.kinds is not None
                kind = s["metric"].get("error_type", "")
                r.kinds[kind] = r.kinds.get(kind, 0.0) + v
        for s in self.query(
            f"sum by (target, vantage) (increase(inferwatch_cost_usd_total[{w}]))", now
        ):
            row(s["metric"]).cost = self._value(s) or 0.0
        for s in self.query("inferwatch_last_probe_timestamp_seconds", now):
            row(s["metric"]).last_s = self._value(s)
        for s in self.query("inferwatch_ratelimit_remaining_requests", now):
            row(s["metric"]).remaining_requests = self._value(s)
        for s in self.query("inferwatch_ratelimit_remaining_tokens", now):
            row(s["metric"]).remaining_tokens = self._value(s)
        for metric, prefix in (
            ("gen_ai_client_operation_time_to_first_chunk_seconds", "ttft"),
            ("gen_ai_client_operation_duration_seconds", "total"),
        ):
            for by, vantage in (("le, target, vantage", None), ("le, target", ALL)):
                for q in (50, 95, 99):
                    promql = (
                        f"histogram_quantile({q / 100}, sum by ({by}) "
                        f"(increase({metric}_bucket[{w}])))"
                    )
                    for s in self.query(promql, now):
                        r = row(s["metric"], vantage)
                        assert r.p is not None
                        value = self._value(s)
                        r.p[f"{prefix}_p{q}_ms"] = None if value is None else value * 1000
        return self._snapshot(rows, blind, window_s, now)

    def _snapshot(
        self,
        rows: dict[tuple[str, str], _Row],
        blind: dict[str, bool],
        window_s: float,
        now: datetime,
    ) -> Snapshot:
        by_target: dict[str, dict[str, _Row]] = defaultdict(dict)
        for (target, vantage), r in rows.items():
            if target:
                by_target[target][vantage] = r
        summaries: list[TargetSummary] = []
        now_s = now.timestamp()
        newest = max((r.last_s for r in rows.values() if r.last_s), default=None)
        for target in sorted(by_target):
            vantages = by_target[target]
            states: dict[str, State] = {}
            for v, r in vantages.items():
                if v == ALL:
                    continue
                state = r.state or State.NO_DATA
                if r.state is None or blind.get(v, False):
                    state = State.STALE
                states[v] = state
            words = split_words(states)
            first = next(iter(vantages.values()))
            group = next((r.group for r in vantages.values() if r.group), None)
            agg = vantages.get(ALL) or _Row(target, ALL, p={}, kinds={})
            members = [v for v in sorted(vantages) if v != ALL]
            agg.ok = sum(vantages[v].ok for v in members)
            agg.errors = sum(vantages[v].errors for v in members)
            agg.cost = sum(vantages[v].cost for v in members)
            agg.kinds = {}
            for v in members:
                for k, n in (vantages[v].kinds or {}).items():
                    agg.kinds[k] = agg.kinds.get(k, 0.0) + n
            lasts = [t for v in members if (t := vantages[v].last_s)]
            agg.last_s = max(lasts) if lasts else None
            agg_state = _aggregate(states)
            summaries.append(
                self._summary(
                    target, ALL, agg, first, group, Verdict(agg_state, words), now_s, window_s,
                    "all vantages",
                )
            )  # fmt: skip
            for v in members:
                r = vantages[v]
                state = states[v]
                reason = f"{state.value} from {v}; {words}"
                if state is State.STALE:
                    reason = f"{v}: not scraped or monitor blind; {words}"
                summaries.append(
                    self._summary(
                        target, v, r, first, group, Verdict(state, reason), now_s, window_s, v
                    )
                )
        self._version += 1
        prober = None
        if newest is not None:
            stamp = iso(datetime.fromtimestamp(newest, UTC))
            prober = ProberStatus(0, stamp, stamp, False)
        return Snapshot(
            taken_at=now,
            window_s=window_s,
            targets=tuple(summaries),
            prober=prober,
            prober_age_s=0.0 if prober else None,
            version=self._version,
        )

    @staticmethod
    def _summary(
        target: str,
        vantage: str,
        r: _Row,
        first: _Row,
        group: str | None,
        verdict: Verdict,
        now_s: float,
        window_s: float,
        shown: str,
    ) -> TargetSummary:
        count = round(r.ok + r.errors)
        kinds = {k: round(n) for k, n in (r.kinds or {}).items() if n >= 0.5}
        p = r.p or {}
        return TargetSummary(
            name=f"{target}@{vantage}",
            provider=r.provider or first.provider,
            model=r.model or first.model,
            group_name=target,
            interval_s=30.0,
            configured=True,
            paused=False,
            count=count,
            errors=round(r.errors),
            error_rate=(r.errors / (r.ok + r.errors)) if r.ok + r.errors > 0 else None,
            top_error_kind=max(kinds, key=lambda k: kinds[k]) if kinds else None,
            ttft_p50_ms=p.get("ttft_p50_ms"),
            ttft_p95_ms=p.get("ttft_p95_ms"),
            ttft_p99_ms=p.get("ttft_p99_ms"),
            total_p50_ms=p.get("total_p50_ms"),
            total_p95_ms=p.get("total_p95_ms"),
            total_p99_ms=p.get("total_p99_ms"),
            cost_per_request_usd=(r.cost / r.ok) if r.ok >= 0.5 and r.cost else None,
            last_age_s=(now_s - r.last_s) if r.last_s else None,
            ratelimit_remaining_requests=(
                int(r.remaining_requests) if r.remaining_requests is not None else None
            ),
            ratelimit_remaining_tokens=(
                int(r.remaining_tokens) if r.remaining_tokens is not None else None
            ),
            verdict=verdict,
            errors_by_kind=kinds,
            uptime={},
            vantage=shown,
            computed_at=datetime.fromtimestamp(now_s, UTC),
        )

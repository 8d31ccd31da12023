"""The prober's on-call faces, behind one small interface: alerts and ``/metrics``.

The prober process calls four things (tui/prober.py):

* :meth:`OnCall.attach` once on the writer thread, after its ``HistoryWriter`` exists;
* :meth:`OnCall.on_record` for every finished probe, before it is stored (stamps the
  vantage, counts the metrics);
* :meth:`OnCall.tick` about once a second on the writer thread (maintenance windows,
  reminders);
* :meth:`OnCall.close` at the end.

State changes reach the alert keeper and the metrics as ``HistoryWriter`` observers, after
each commit. Deciding happens on the writer thread (no I/O); delivering on the deliverer's
threads; ``/metrics`` on prometheus-client's server thread. Nothing here runs on the probing
loop or waits on the network there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probes.config import Config
from probes.record import ProbeRecord
from store.alerting import AlertRules
from store.history import HistoryWriter
from store.maintenance_windows import active_windows, in_maintenance
from store.notifications import AlertKeeper, views_of
from store.outage import Event
from tui.metrics import ProberMetrics
from tui.notify import Deliverer

_log = logging.getLogger(__name__)

#: Seconds between two maintenance-window and reminder checks.
TICK_S = 1.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def under_maintenance(config: Config, now: datetime) -> set[str]:
    """Names of the enabled targets a maintenance window covers at ``now``."""
    targets = config.resolved()
    groups = {t.name: t.config.group for t in targets}
    return in_maintenance(
        active_windows(config.maintenance, now, [t.name for t in targets], groups)
    )


class OnCall:
    """Alerts and metrics of one prober process.

    Args:
        config: the validated config.
        db_path: the prober's database (the deliverer opens its own connection to it).
        metrics_listen: ``HOST:PORT`` for ``/metrics`` (overrides ``[metrics] listen``);
            None and no config value: no metrics server.
        clock: the current UTC time (tests inject a compressed one).

    Raises:
        OSError: the metrics port cannot be bound.
        ValueError: a malformed metrics address.
    """

    def __init__(
        self,
        config: Config,
        db_path: Path,
        *,
        metrics_listen: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.config = config
        self.clock = clock
        self.vantage = config.prober.vantage_name()
        self.metrics = ProberMetrics(config)
        listen = metrics_listen or config.metrics.listen
        self.server: Any = self.metrics.serve(listen) if listen else None
        self.deliverer = Deliverer(
            db_path, config.channels, config.alerts, clock, vantage=self.vantage
        )
        self.keeper: AlertKeeper | None = None
        self.history: HistoryWriter | None = None
        self._groups = {t.name: t.config.group for t in config.resolved()}
        self._ticked: datetime | None = None

    # ---- the prober's calls -------------------------------------------------------------

    def attach(self, history: HistoryWriter) -> None:
        """Start following ``history`` (call on its writer thread): alert state is loaded and
        reconciled with the outage states (an alert missed or a recovery made while the
        prober was stopped is notified now), metrics get the current states."""
        self.history = history
        machines = history.coordinator.machines
        states = views_of(machines, history.targets)
        blind = history.coordinator.blind_since
        self.metrics.init_states(states, blind is not None)
        self.keeper = AlertKeeper(
            history.db,
            AlertRules.from_config(self.config),
            states,
            self.clock,
            self.deliverer.wake,
            blind,
            {c.name: c.type for c in self.config.channels},
            self.config.history.rollup_retention_days,
        )
        history.observers.append(self.on_events)
        self.tick(force=True)
        self.keeper.reconcile()
        if self.config.channels:
            self.deliverer.start()

    def on_record(self, record: ProbeRecord) -> None:
        """A probe finished (call before storing it): stamp the vantage, count the metrics."""
        if record.vantage is None:
            record.vantage = self.vantage
        self.metrics.on_record(record)

    def on_events(self, events: Sequence[Event]) -> None:
        """Committed outage events (a ``HistoryWriter`` observer, writer thread)."""
        self.metrics.on_events(events)
        if self.keeper is not None:
            self.keeper.on_events(events)

    def tick(self, force: bool = False) -> None:
        """Maintenance windows and reminders (writer thread; cheap when nothing changed)."""
        now = self.clock()
        if not force and self._ticked is not None and (now - self._ticked).total_seconds() < TICK_S:
            return
        self._ticked = now
        history, keeper = self.history, self.keeper
        if history is None or keeper is None:
            return
        active = active_windows(self.config.maintenance, now, list(history.targets), self._groups)
        history.set_maintenance(in_maintenance(active), now)
        keeper.set_windows(active)
        keeper.tick()

    def close(self) -> None:
        """Stop delivering and serving (queued notifications stay queued for the next start)."""
        self.deliverer.close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def explain(config: Config, now: datetime | None = None) -> list[str]:
    """``check-config``'s account of alerting and metrics: each channel (where, never a
    secret), each route, where every alert goes, each maintenance window, the metrics."""
    from store.maintenance_windows import covered, next_start, occurrence
    from tui.notify import where

    now = now or _utc_now()
    a = config.alerts
    rules = AlertRules.from_config(config)
    out = [
        f"  alerts: resolve notices {'on' if a.send_resolved else 'off'}, reminders "
        + (f"every {_span(a.reminder_interval_s)}" if a.reminder_interval_s else "off")
        + f", degraded {'on' if a.degraded else 'off (down only)'}, monitor blind "
        f"{'on' if a.monitor_blind else 'off'}, maintenance notices "
        f"{'on' if a.maintenance_notices else 'off'}; {a.retry_max_attempts} attempts per "
        f"notification, backoff from {a.retry_backoff_s:g}s"
    ]
    if not config.channels:
        out.append("  no [[channels]]: alerts are decided and recorded, nothing is sent")
    for c in config.channels:
        extra = ""
        if c.hmac_key_env:
            state = "set" if os.environ.get(c.hmac_key_env) else "UNSET: deliveries will fail"
            extra = f", signed with HMAC-SHA256 from ${c.hmac_key_env} ({state})"
        resolved = (
            ""
            if c.send_resolved is None
            else f", resolve notices {'on' if c.send_resolved else 'off'}"
        )
        out.append(f"  channel {c.name} ({c.type}): {where(c)}{extra}{resolved}")
    for i, r in enumerate(config.routes, 1):
        scope = []
        if r.targets:
            scope.append("targets " + ", ".join(r.targets))
        if r.groups:
            scope.append("groups " + ", ".join(r.groups))
        events = ", ".join(r.events) if r.events else "all alerts"
        out.append(
            f"  route {i}: {' and '.join(scope) or 'everything'} ({events}) -> "
            + ", ".join(r.channels)
        )
    if config.channels and not config.routes:
        out.append("  no [[routes]]: every alert goes to every channel")
    seen: set[str] = set()
    for t in config.resolved():
        group = t.config.group
        if group:
            if group in seen:
                continue
            seen.add(group)
            members = rules.groups[group]
            to = rules.router.route("down", None, group, members)
            who = f"group {group} (primary {members[0]}"
            who += f", fallbacks {', '.join(members[1:])})" if len(members) > 1 else ")"
            out.append(
                f"  {who}: one alert, warning when some are down, critical when all are -> "
                + (", ".join(to) or "nowhere (no route matches)")
            )
        else:
            to = rules.router.route("down", t.name, None)
            out.append(f"  {t.name}: alert when down -> " + (", ".join(to) or "nowhere"))
    if a.monitor_blind:
        to = rules.router.route("blind", None, None)
        out.append("  monitor blind: -> " + (", ".join(to) or "nowhere"))
    names = [t.name for t in config.resolved()]
    groups = {t.name: t.config.group for t in config.resolved()}
    for w in config.maintenance:
        when = (
            f"once at {w.start.isoformat()}"
            if isinstance(w.start, datetime)
            else f"every {'/'.join(w.days) if w.days else 'day'} at {w.start.strftime('%H:%M')}"
        )
        span = occurrence(w, now)
        nxt = next_start(w, now)
        state = (
            f"IN FORCE until {span[1].strftime('%Y-%m-%d %H:%MZ')}"
            if span
            else f"next {nxt.strftime('%Y-%m-%d %H:%MZ')}"
            if nxt
            else "over"
        )
        targets = covered(w, names, groups)
        out.append(
            f"  maintenance {w.name}: {when} {w.timezone} for {_span(w.duration_s)} ({state}); "
            f"{len(targets)} target(s): {', '.join(targets) or 'none'}"
        )
    listen = config.metrics.listen
    served = f"/metrics on {listen}" if listen else "off (--metrics HOST:PORT or [metrics] listen)"
    out.append(f"  metrics: {served}; vantage {config.prober.vantage_name()}")
    return out

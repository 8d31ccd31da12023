"""Delivering notifications: the channels and the deliverer thread of the prober process.

The prober's writer thread only queues rows in ``notifications`` (:mod:`store.notifications`).
:class:`Deliverer` sends them from threads of its own: one dispatcher with its own database
connection, and one worker per channel, so a receiver that hangs holds up only its own
channel, never a probe, a database write or another channel (Gatus blocked an endpoint's
checks on a slow e-mail send: TwiN/gatus#786). Failed attempts are retried with doubling
backoff up to ``[alerts] retry_max_attempts``; every attempt's result is written back.

Secrets (a webhook URL with a token, an HMAC key) are read from the environment at send time
and never written anywhere: results say ``HTTP 500`` or ``timeout after 10s``, never an
exception text that could carry the URL. Wire formats: docs/alerts.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from probes.config import AlertsConfig, ChannelConfig
from probes.timestamps import iso
from store.db import open_db, write_transaction
from store.notifications import LOCAL_TYPES, load_alerts

_log = logging.getLogger(__name__)

#: The longest wait between two attempts, seconds.
MAX_BACKOFF_S = 900.0
#: Variables a command hook inherits from the prober (plus INFERWATCH_*); nothing else, so
#: the providers' API keys never reach a notification program.
HOOK_ENV_KEEP = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "USER",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
)
USER_AGENT = "inferwatch-alerts/1"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Result:
    """One delivery attempt's outcome.

    Attributes:
        ok: delivered.
        detail: short text for the ``result`` column, free of secrets.
    """

    ok: bool
    detail: str


def where(conf: ChannelConfig) -> str:
    """Where a channel delivers, safe to print: scheme and host of a plain URL, the name of
    the variable of a secret one, the program of a command."""
    if conf.type == "bell":
        return "the dashboard's terminal bell"
    if conf.type == "command":
        return f"runs {conf.command[0]} (no shell)"
    if conf.url_env:
        state = "set" if os.environ.get(conf.url_env) else "UNSET"
        return f"URL from ${conf.url_env} ({state})"
    parts = urlsplit(conf.url or "")
    return f"{parts.scheme}://{parts.netloc}"


def _http_error(exc: httpx.HTTPError, timeout_s: float) -> str:
    # Never str(exc): httpx puts the URL (and so a token in it) into its messages.
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {timeout_s:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    return f"network error ({type(exc).__name__})"


class Channel:
    """A configured channel that can send one notification payload (thread-safe enough for
    one worker thread).

    Args:
        conf: its configuration.
        alerts: the ``[alerts]`` settings (Alertmanager's re-send period).
    """

    def __init__(self, conf: ChannelConfig, alerts: AlertsConfig | None = None) -> None:
        self.conf = conf
        self.alerts = alerts or AlertsConfig()
        self._client: httpx.Client | None = None

    @property
    def name(self) -> str:
        """The channel's name."""
        return self.conf.name

    def _url(self) -> str | None:
        conf = self.conf
        return conf.url if conf.url else os.environ.get(conf.url_env or "") or None

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Result:
        if self._client is None:
            self._client = httpx.Client(timeout=self.conf.timeout_s, follow_redirects=False)
        try:
            response = self._client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            )
        except httpx.HTTPError as exc:
            return Result(False, _http_error(exc, self.conf.timeout_s))
        return Result(200 <= response.status_code < 300, f"HTTP {response.status_code}")

    def send(self, payload: dict[str, Any]) -> Result:
        """Deliver one notification (the webhook payload of docs/alerts.md, with ``id``)."""
        kind = self.conf.type
        if kind == "bell":
            return Result(True, "for the dashboard's bell")
        if kind == "command":
            return self._run(payload)
        url = self._url()
        if url is None:
            return Result(False, f"${self.conf.url_env} is unset")
        if kind == "webhook":
            return self._webhook(url, payload)
        if kind == "slack":
            body = json.dumps({"text": slack_text(payload)}).encode()
            return self._post(url, body, {})
        return self._alertmanager(url, payload)

    def _webhook(self, url: str, payload: dict[str, Any]) -> Result:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"X-Inferwatch-Event": str(payload.get("event", ""))}
        if self.conf.hmac_key_env:
            key = os.environ.get(self.conf.hmac_key_env)
            if not key:
                return Result(False, f"${self.conf.hmac_key_env} is unset: not sent unsigned")
            headers["X-Inferwatch-Signature-256"] = "sha256=" + sign(key.encode(), body)
        return self._post(url, body, headers)

    def _alertmanager(self, url: str, payload: dict[str, Any]) -> Result:
        if payload.get("kind") == "maintenance":
            return Result(True, "not sent: Alertmanager has its own silences")
        now = _utc_now()
        alerts = am_alerts(payload, now, self.alerts.alertmanager_resend_s)
        return self.post_alerts(url, alerts)

    def post_alerts(self, url: str | None, alerts: list[dict[str, Any]]) -> Result:
        """POST Alertmanager v2 alerts (``/api/v2/alerts``) to ``url`` (the channel's if None)."""
        url = url or self._url()
        if url is None:
            return Result(False, f"${self.conf.url_env} is unset")
        body = json.dumps(alerts, separators=(",", ":")).encode()
        return self._post(url.rstrip("/") + "/api/v2/alerts", body, {})

    def _run(self, payload: dict[str, Any]) -> Result:
        env = {k: v for k in HOOK_ENV_KEEP if (v := os.environ.get(k)) is not None}
        env.update(hook_env(payload))
        try:
            done = subprocess.run(
                list(self.conf.command),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=self.conf.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(False, f"timeout after {self.conf.timeout_s:g}s (killed)")
        except OSError as exc:
            return Result(False, f"cannot run {self.conf.command[0]}: {exc.strerror or 'error'}")
        return Result(done.returncode == 0, f"exit {done.returncode}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None


def sign(key: bytes, body: bytes) -> str:
    """HMAC-SHA256 of the exact body bytes, hex (``X-Inferwatch-Signature-256: sha256=…``)."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def hook_env(payload: dict[str, Any]) -> dict[str, str]:
    """The ``INFERWATCH_*`` variables a command hook receives (docs/alerts.md)."""
    fields = (
        "id",
        "event",
        "alert",
        "kind",
        "status",
        "severity",
        "target",
        "group",
        "state",
        "summary",
        "cause_kind",
        "started_at",
        "ended_at",
        "at",
        "vantage",
    )
    env = {
        f"INFERWATCH_{f.upper()}": "" if payload.get(f) is None else str(payload[f]) for f in fields
    }
    env["INFERWATCH_JSON"] = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return env


_SLACK_MARK = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


def slack_text(payload: dict[str, Any]) -> str:
    """The ``text`` of a Slack-compatible incoming-webhook message."""
    event = payload.get("event")
    if event == "resolved":
        head = ":white_check_mark: RESOLVED"
    elif event == "test":
        head = ":information_source: TEST"
    else:
        severity = str(payload.get("severity", "warning"))
        head = f"{_SLACK_MARK.get(severity, ':warning:')} {severity.upper()}"
        if event == "reminder":
            head += " (still firing)"
    since = f" since {payload['started_at']}" if payload.get("started_at") else ""
    return f"{head} {payload.get('summary', '')} [{payload.get('vantage', '')}{since}]"


_ALERTNAMES = {
    "target": "InferwatchTarget",
    "group": "InferwatchGroup",
    "monitor": "InferwatchMonitorBlind",
    "test": "InferwatchTest",
}


def am_labels(key: str, severity: str, vantage: str) -> dict[str, str]:
    """An alert's identity in Alertmanager: alertname, the target or group, severity, vantage."""
    kind, _, name = key.partition(":")
    labels = {"alertname": _ALERTNAMES.get(kind, "Inferwatch"), "severity": severity}
    if kind in ("target", "group"):
        labels[kind] = name
    if vantage:
        labels["vantage"] = vantage
    return labels


def am_alerts(payload: dict[str, Any], now: datetime, resend_s: float) -> list[dict[str, Any]]:
    """Alertmanager v2 alerts for one notice: ``endsAt`` 4 re-send periods ahead while firing
    (so a stopped prober's alerts resolve on their own), the resolve time once resolved; a
    severity change also resolves the alert under its old severity label."""
    key = str(payload["alert"])
    vantage = str(payload.get("vantage") or "")
    annotations = {
        "summary": str(payload.get("summary", "")),
        "state": str(payload.get("state", "")),
        "kind": str(payload.get("kind", "")),
    }
    starts = payload.get("started_at") or iso(now)
    if payload.get("event") == "resolved":
        ends = payload.get("ended_at") or iso(now)
        ends = min(ends, iso(now))
    elif payload.get("event") == "test":
        ends = iso(now + timedelta(minutes=5))
    else:
        ends = iso(now + timedelta(seconds=4 * resend_s))
    out = [
        {
            "labels": am_labels(key, str(payload.get("severity", "warning")), vantage),
            "annotations": annotations,
            "startsAt": starts,
            "endsAt": ends,
        }
    ]
    previous = payload.get("previous_severity")
    if previous and previous != payload.get("severity"):
        out.append(
            {
                "labels": am_labels(key, str(previous), vantage),
                "annotations": annotations,
                "startsAt": starts,
                "endsAt": iso(now),
            }
        )
    return out


# ---- the deliverer -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    row_id: int
    channel: str
    payload: dict[str, Any]
    attempts: int


class _Worker:
    """One daemon thread per channel, sending jobs in order (a hung receiver blocks only it)."""

    def __init__(self, channel: Channel, done: Callable[[_Job, Result], None]) -> None:
        self.channel = channel
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self._done = done
        self.thread = threading.Thread(
            target=self._run, name=f"inferwatch-notify-{channel.name}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                self.channel.close()
                return
            try:
                result = self.channel.send(job.payload)
            except Exception as exc:  # a bug in a channel must not kill delivery
                _log.exception("channel %s failed", self.channel.name)
                result = Result(False, f"internal error ({type(exc).__name__})")
            self._done(job, result)


class Deliverer:
    """Sends queued notifications and records each attempt (threads of its own).

    Args:
        db_path: the prober's database (already migrated).
        channels: the configured channels.
        alerts: the ``[alerts]`` settings (retries, Alertmanager re-send period).
        clock: the current UTC time (tests inject one).
        vantage: the prober's vantage (a label of every Alertmanager alert).
    """

    def __init__(
        self,
        db_path: Path,
        channels: Sequence[ChannelConfig],
        alerts: AlertsConfig,
        clock: Callable[[], datetime] = _utc_now,
        vantage: str = "",
    ) -> None:
        self.db_path = db_path
        self.alerts = alerts
        self.clock = clock
        self.channels = {c.name: Channel(c, alerts) for c in channels}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._results: queue.Queue[tuple[_Job, Result, datetime]] = queue.Queue()
        self._in_flight: set[int] = set()
        self._workers: dict[str, _Worker] = {}
        self._am_sent: dict[str, datetime] = {}
        self._am_busy: set[str] = set()
        self.vantage = vantage
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the dispatcher thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="inferwatch-deliverer", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """New rows were queued: look now (any thread)."""
        self._wake.set()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop dispatching; a send in progress is abandoned (its row is retried next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        for w in self._workers.values():
            w.jobs.put(None)

    def _done(self, job: _Job, result: Result) -> None:
        self._results.put((job, result, self.clock()))
        self._wake.set()

    def _run(self) -> None:
        db = open_db(self.db_path, migrate=False)
        try:
            while not self._stop.is_set():
                try:
                    self._record_results(db)
                    self._dispatch(db)
                    self._refresh_alertmanager(db)
                except Exception:  # e.g. the database locked for longer than its timeout
                    _log.exception("deliverer pass failed; retrying")
                self._wake.wait(0.5)
                self._wake.clear()
            self._record_results(db)
        finally:
            db.close()

    def _worker(self, name: str) -> _Worker:
        if name not in self._workers:
            self._workers[name] = _Worker(self.channels[name], self._done)
        return self._workers[name]

    def _dispatch(self, db: Any) -> None:
        now = iso(self.clock())
        rows = db.conn.execute(
            "SELECT id, channel, channel_type, payload, attempts FROM notifications "
            "WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ? ORDER BY id",
            [now],
        ).fetchall()
        for row_id, channel, channel_type, payload, attempts in rows:
            if row_id in self._in_flight:
                continue
            if channel not in self.channels:
                self._finish(
                    db, row_id, attempts, Result(False, "channel no longer configured"), final=True
                )
                continue
            body = json.loads(payload or "{}")
            body["id"] = row_id
            job = _Job(row_id, channel, body, int(attempts or 0))
            if channel_type in LOCAL_TYPES:
                self._finish(db, row_id, job.attempts, Result(True, "for the dashboard's bell"))
                continue
            self._in_flight.add(row_id)
            self._worker(channel).jobs.put(job)

    def _record_results(self, db: Any) -> None:
        while True:
            try:
                job, result, at = self._results.get_nowait()
            except queue.Empty:
                return
            self._in_flight.discard(job.row_id)
            if job.row_id < 0:
                self._am_busy.discard(job.channel)
                self._record_refresh(db, job.channel, result, at)
                continue
            self._finish(db, job.row_id, job.attempts, result, at=at)

    def _finish(
        self,
        db: Any,
        row_id: int,
        attempts: int,
        result: Result,
        *,
        final: bool = False,
        at: datetime | None = None,
    ) -> None:
        at = at or self.clock()
        attempts += 1
        with write_transaction(db):
            if result.ok:
                db.execute(
                    "UPDATE notifications SET status = 'sent', attempts = ?, last_attempt_at = ?, "
                    "sent_at = ?, result = ?, next_attempt_at = NULL WHERE id = ?",
                    [attempts, iso(at), iso(at), result.detail, row_id],
                )
                # Older notices about the same alert that still wait are out of date now.
                db.execute(
                    "UPDATE notifications SET status = 'superseded', next_attempt_at = NULL "
                    "WHERE id < ? AND status IN ('pending', 'retrying') AND channel = "
                    "(SELECT channel FROM notifications WHERE id = ?) AND alert_key = "
                    "(SELECT alert_key FROM notifications WHERE id = ?)",
                    [row_id, row_id, row_id],
                )
                return
            give_up = final or attempts >= self.alerts.retry_max_attempts
            delay = min(self.alerts.retry_backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
            db.execute(
                "UPDATE notifications SET status = ?, attempts = ?, last_attempt_at = ?, "
                "result = ?, next_attempt_at = ? WHERE id = ?",
                [
                    "failed" if give_up else "retrying",
                    attempts,
                    iso(at),
                    result.detail + ("" if give_up else f"; retry in {delay:g}s"),
                    None if give_up else iso(at + timedelta(seconds=delay)),
                    row_id,
                ],
            )

    # Alertmanager expects clients to re-send firing alerts (Prometheus does every minute).
    def _refresh_alertmanager(self, db: Any) -> None:
        if not any(c.conf.type == "alertmanager" for c in self.channels.values()):
            return
        now = self.clock()
        period = timedelta(seconds=self.alerts.alertmanager_resend_s)
        firing = [a for a in load_alerts(db).values() if a.firing and a.kind != "maintenance"]
        for name, channel in self.channels.items():
            if channel.conf.type != "alertmanager":
                continue
            last = self._am_sent.get(name)
            if last is not None and now - last < period:
                continue
            mine = [a for a in firing if name in a.channels]
            if not mine:
                continue
            self._am_sent[name] = now
            alerts = []
            vantage = self.vantage
            for a in mine:
                payload = {
                    "alert": a.key,
                    "event": "reminder",
                    "kind": a.kind,
                    "severity": a.severity.value,
                    "summary": a.summary,
                    "state": a.state,
                    "started_at": a.started_at,
                    "vantage": vantage,
                }
                alerts += am_alerts(payload, now, self.alerts.alertmanager_resend_s)
            self._am_refresh(name, alerts)

    def _am_refresh(self, name: str, alerts: list[dict[str, Any]]) -> None:
        if name in self._am_busy:
            return  # the previous re-send still waits on a slow Alertmanager
        self._am_busy.add(name)
        conf = self.channels[name].conf

        def run() -> None:
            channel = Channel(conf, self.alerts)
            try:
                result = channel.post_alerts(None, alerts)
            finally:
                channel.close()
            # A negative row id marks a re-send: recorded on the channel's refresh row.
            self._done(_Job(-1, name, {}, 0), result)

        threading.Thread(target=run, name=f"inferwatch-am-{name}", daemon=True).start()

    def _record_refresh(self, db: Any, channel: str, result: Result, at: datetime) -> None:
        with write_transaction(db):
            row = db.conn.execute(
                "SELECT id FROM notifications WHERE channel = ? AND event = 'refresh'", [channel]
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO notifications (created_at, alert_key, event, kind, severity, "
                    "summary, channel, channel_type, status, attempts) VALUES (?, 'refresh', "
                    "'refresh', 'refresh', 'info', 'firing alerts re-sent to Alertmanager', ?, "
                    "'alertmanager', 'sent', 0)",
                    [iso(at), channel],
                )
                row = db.conn.execute(
                    "SELECT id FROM notifications WHERE channel = ? AND event = 'refresh'",
                    [channel],
                ).fetchone()
            db.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_attempt_at = ?, "
                "result = ?, status = ?, sent_at = CASE WHEN ? THEN ? ELSE sent_at END "
                "WHERE id = ?",
                [
                    iso(at),
                    result.detail,
                    "sent" if result.ok else "failed",
                    result.ok,
                    iso(at),
                    row[0],
                ],
            )


def send_test(conf: ChannelConfig, alerts: AlertsConfig, payload: dict[str, Any]) -> Result:
    """Send one notification now, on this thread (``inferwatch notify --test``)."""
    channel = Channel(conf, alerts)
    try:
        return channel.send(payload)
    finally:
        channel.close()

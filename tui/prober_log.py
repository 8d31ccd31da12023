"""The prober's log: one line per event on stderr, for journald, a log file or a tmux pane.

Two formats (``inferwatch run --log-format``):

* ``text`` (default): ``2026-12-07T17:40:00Z inferwatch: <message>``.
* ``json``: one JSON object per line, ``{"ts": ..., "event": ..., "message": ..., ...}``
  with the event's fields (``target``, ``from``, ``to``, ``cause``, ``since``, ``until``...).

Events: ``state`` (a target's state changed; each change opens an incident and closes the
previous one, so this is also the incident log), ``gap`` (the monitor could not see: the
prober was not running or stalled, or the network was gone), ``gap_end``, ``lifecycle``
(started, stopping, database replaced) and ``log`` (everything else: a worker restarted,
storage failing). Target names and provider messages pass through ``probes.text.printable``:
a hostile name cannot write terminal controls into a tmux pane.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from probes.text import printable
from store.outage import BlindEnded, BlindStarted, Event, Transition

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

_format: LogFormat = "text"


def set_format(fmt: LogFormat) -> None:
    """Choose the log format for this process."""
    global _format
    _format = fmt


def log(message: str, event: str = "log", **fields: Any) -> None:
    """One line on stderr (the prober's log), UTC-stamped; ``fields`` go into JSON lines only."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if _format == "json":
        doc = {"ts": stamp, "event": event, "message": printable(message), **fields}
        line = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        line = f"{stamp} inferwatch: {printable(message)}"
    # A closed stderr (its terminal gone) must not stop the prober.
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def log_events(events: Sequence[Event]) -> None:
    """One line for each state change and each start or end of a network gap."""
    for e in events:
        if isinstance(e, Transition):
            name = printable(e.target)
            cause = f" ({e.cause_kind}: {printable(e.cause_message)})" if e.cause_kind else ""
            log(
                f"{name}: {e.from_state.value} -> {e.to_state.value} at {e.at}{cause}",
                "state",
                target=name,
                **{"from": e.from_state.value, "to": e.to_state.value},
                at=e.at,
                cause=e.cause_kind,
                cause_message=printable(e.cause_message),
            )
        elif isinstance(e, BlindStarted):
            log(
                f"monitor blind since {e.since}: {printable(e.message)}",
                "gap",
                cause="network",
                since=e.since,
            )
        elif isinstance(e, BlindEnded):
            log(f"monitor sees again at {e.at}", "gap_end", cause="network", until=e.at)


def log_gap(since: str, until: str, message: str) -> None:
    """A recorded ``prober_not_running`` gap (the prober was not running, or stalled)."""
    log(
        f"monitor gap {since} .. {until}: {message}",
        "gap",
        cause="prober_not_running",
        since=since,
        until=until,
    )

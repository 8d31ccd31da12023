"""What is wrong with the prober, said on the dashboard's status line (through the
heartbeat row) and kept for :data:`NOTICE_S` when it happened once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

#: A problem that happened once (a worker restart, a loop error) stays shown this long.
NOTICE_S = 600.0
#: A probing loop this late means the prober, not the provider, may be in a latency: below
#: it (a young collection, a busy moment) timings stay within their documented error.
OVERLOADED_LAG_MS = 50.0
#: An overload stays shown this long after the last late report (it is a state, not an event).
OVERLOAD_NOTICE_S = 120.0


class Problems:
    """What is wrong with the prober, one short text for the status line.

    Each problem has a key (``storage``, ``worker``, ``loop``); a lasting one stays until
    cleared, a past one (a restart, an exception a loop carried on from) for
    :data:`NOTICE_S`. Storage comes first, then workers, then an overloaded prober, then loop
    errors.
    """

    _ORDER = ("storage", "worker", "overload", "loop")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str, float | None]] = {}

    def set(self, key: str, text: str, ttl_s: float | None = None) -> None:
        """Show ``text`` under ``key`` (for ``ttl_s`` seconds, or until cleared)."""
        self._items[key] = (text, None if ttl_s is None else self._clock() + ttl_s)

    def clear(self, key: str) -> None:
        """Stop showing ``key``."""
        self._items.pop(key, None)

    def text(self) -> str:
        """All current problems, most important first; "" when none."""
        now = self._clock()
        for key in [
            k for k, (_, until) in self._items.items() if until is not None and until < now
        ]:
            del self._items[key]
        keys = sorted(self._items, key=lambda k: (self._ORDER.index(k.split(":")[0]), k))
        return "; ".join(self._items[k][0] for k in keys)


def overload_text(lag_ms: float) -> str:
    """What the status line says when a probing loop ran ``lag_ms`` late (docs/fields.md,
    "Reading loop_lag_ms")."""
    return (
        f"prober overloaded: a probing loop ran {lag_ms:.0f} ms late at {clock_text()} "
        "(timings then include our own wait; see loop_lag_ms)"
    )


def clock_text() -> str:
    """The current UTC time of day, ``HH:MM:SSZ``, for messages."""
    return datetime.now(UTC).strftime("%H:%M:%SZ")

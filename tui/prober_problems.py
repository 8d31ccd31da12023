"""What is wrong with the prober, said on the dashboard's status line (through the
heartbeat row) and kept for :data:`NOTICE_S` when it happened once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

#: A problem that happened once (a worker restart, a loop error) stays shown this long.
NOTICE_S = 600.0


class Problems:
    """What is wrong with the prober, one short text for the status line.

    Each problem has a key (``storage``, ``worker``, ``loop``); a lasting one stays until
    cleared, a past one (a restart, an exception a loop carried on from) for
    :data:`NOTICE_S`. Storage comes first, then workers, then loop errors.
    """

    _ORDER = ("storage", "worker", "loop")

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


def clock_text() -> str:
    """The current UTC time of day, ``HH:MM:SSZ``, for messages."""
    return datetime.now(UTC).strftime("%H:%M:%SZ")

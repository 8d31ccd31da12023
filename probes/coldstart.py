"""Cold starts: how long an endpoint sat idle before each probe, and whether it was cold.

Scale-to-zero hosting (Modal's ``scaledown_window``, serverless GPUs, self-hosting that stops
idle servers) answers the first request after an idle period from a cold container: TTFT then
includes the boot. A target that says it scales to zero (``scaledown_window_s``) gets each
probe marked (docs/questions.md, "Cold starts"):

* ``idle_s``: seconds from the end of the previous probe of the same endpoint (the same
  ``base_url``, model and deployment, whichever target or schedule sent it) to the start of
  this one, on the prober's monotonic clock; 0 while another probe of the endpoint is in
  flight; null for the endpoint's first probe after the prober started (what happened before
  cannot be known from here, and the wall clock is never subtracted).
* ``cold``: ``idle_s > scaledown_window_s``; null when the target sets no window or
  ``idle_s`` is null.

Traffic that is not ours (real users) also keeps an endpoint warm and is invisible here, so a
probe marked cold may have found a warm container; a probe marked warm was warm.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from probes.config import ResolvedTarget
from probes.record import ProbeRecord

ProbeFn = Callable[..., Awaitable[ProbeRecord]]


def endpoint_key(target: ResolvedTarget) -> str:
    """What identifies one deployed endpoint across targets and schedules."""
    return f"{target.base_url}|{target.config.model}|{target.config.deployment or ''}"


def is_cold(idle_s: float | None, scaledown_window_s: float | None) -> bool | None:
    """``idle_s > scaledown_window_s``; None when either is unknown (pure)."""
    if idle_s is None or scaledown_window_s is None:
        return None
    return idle_s > scaledown_window_s


@dataclass
class IdleTracker:
    """Remembers, per endpoint, when its last probe ended and how many are in flight.

    One tracker per prober process, shared by every schedule (canary, cache check, workloads,
    the cold schedule), since every request keeps the endpoint warm.
    """

    clock: Callable[[], float] = time.perf_counter
    _last_end: dict[str, float] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)

    def start(self, target: ResolvedTarget) -> float | None:
        """Mark a probe of ``target`` as started; return its ``idle_s`` (see the module)."""
        key = endpoint_key(target)
        now = self.clock()
        busy = self._in_flight.get(key, 0) > 0
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if busy:
            return 0.0
        last = self._last_end.get(key)
        return None if last is None else max(0.0, now - last)

    def end(self, target: ResolvedTarget) -> None:
        """Mark a probe of ``target`` as ended (whatever its outcome)."""
        key = endpoint_key(target)
        self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
        self._last_end[key] = self.clock()

    def wrap(self, probe: ProbeFn) -> ProbeFn:
        """A probe function that fills ``idle_s`` and ``cold`` in every record of ``probe``.

        The result has ``probe``'s signature ``(target, client, **kwargs) -> ProbeRecord``,
        so a scheduler takes it in place of ``run_probe``.
        """

        async def tracked(
            target: ResolvedTarget, client: httpx.AsyncClient, **kwargs: object
        ) -> ProbeRecord:
            idle = self.start(target)
            try:
                record = await probe(target, client, **kwargs)
            finally:
                self.end(target)
            record.idle_s = idle
            record.cold = is_cold(idle, target.config.scaledown_window_s)
            return record

        return tracked

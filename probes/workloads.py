"""Long-prompt workloads: probes with a longer input on their own schedule (issue #13).

A canary measures a ~20-token prompt; a feature with a 5,000-token context pays prefill on top,
and TTFT grows with the prompt. Each ``[[workloads]]`` entry sends a prompt of its
``input_tokens`` (as the provider reports it: :class:`probes.prompts.PromptSizer` corrects the
length from each reported size) and is stored as an ordinary probe of kind ``workload`` with
its name in ``workload``. Feature projections then take TTFT at the nearest measured size
(``store.prefill``).

Every run's text starts with a random tag, so a provider's prefix cache (which matches from the
first token on) never turns a workload into a cache-hit measurement. The prose after the tag is
the same for each (target, workload): its tokenization does not vary from run to run, so the
size learned from one report holds for the next (random prose per run varied by ~6 % in
tokens at equal length on a byte-level tokenizer, more than the sizer's tolerance).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx

from probes.config import ResolvedTarget
from probes.prompts import PromptSizer, stable_text
from probes.question_config import WorkloadConfig
from probes.record import ProbeRecord
from probes.runner import run_probe
from probes.timestamps import utc_now

KIND = "workload"
ProbeFn = Callable[..., Awaitable[ProbeRecord]]


class WorkloadRunner:
    """Runs workloads, keeping one :class:`PromptSizer` per (target, workload) so the prompt
    length learned from earlier runs carries over (keep one runner per prober)."""

    def __init__(self) -> None:
        self._sizers: dict[tuple[str, str], PromptSizer] = {}

    def sizer(self, target: str, workload: WorkloadConfig) -> PromptSizer:
        """The sizer of ``workload`` on ``target`` (created on first use)."""
        key = (target, workload.name)
        if key not in self._sizers or self._sizers[key].target_tokens != workload.input_tokens:
            self._sizers[key] = PromptSizer(workload.input_tokens)
        return self._sizers[key]

    async def run(
        self,
        target: ResolvedTarget,
        client: httpx.AsyncClient,
        workload: WorkloadConfig,
        *,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], datetime] = utc_now,
        probe: ProbeFn = run_probe,
    ) -> list[ProbeRecord]:
        """Probe ``target`` once with ``workload``'s prompt size; return its record (kind
        ``workload``). The reported ``input_tokens`` of the answer resizes the next prompt.

        Args:
            target: the target (its other settings, timeouts included, apply).
            client: the probe client.
            workload: the workload (size, output budget).
            clock: monotonic clock for the probe.
            wall_clock: UTC wall clock for the probe.
            probe: the probe function (``run_probe``).
        """
        sizer = self.sizer(target.name, workload)
        tag = f"[{secrets.token_hex(4)}] "
        body = stable_text(max(1, sizer.chars() - len(tag)), f"{target.name}:{workload.name}")
        text = tag + body
        settings = target.settings.model_copy(
            update={"prompt": text, "max_tokens": workload.max_tokens}
        )
        record = await probe(
            dataclasses.replace(target, settings=settings),
            client,
            clock=clock,
            wall_clock=wall_clock,
        )
        record.kind = KIND
        record.workload = workload.name
        sizer.observe(len(text), record.input_tokens)
        return [record]

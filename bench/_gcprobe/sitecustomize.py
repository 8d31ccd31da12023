"""Benchmark-only: time every garbage collection of a process (``gc.callbacks``).

Put this directory on ``PYTHONPATH`` and set ``IW_BENCH_GC_DIR``: each Python process started
that way (the prober and its workers) writes ``<pid>.json`` there when it exits, with every
collection's wall-clock end time, generation and pause in ms. Nothing happens without the
variable, so the product itself never carries this hook.
"""

from __future__ import annotations

import os

if os.environ.get("IW_BENCH_GC_DIR"):
    import atexit
    import gc
    import json
    import sys
    import time

    _pauses: list[tuple[float, int, float]] = []
    _start = [0.0]

    def _cb(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _start[0] = time.perf_counter()
        else:
            _pauses.append(
                (time.time(), info["generation"], (time.perf_counter() - _start[0]) * 1e3)
            )

    gc.callbacks.append(_cb)

    def _dump() -> None:
        path = os.path.join(os.environ["IW_BENCH_GC_DIR"], f"{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"argv": sys.argv, "pauses": _pauses}, f)

    atexit.register(_dump)

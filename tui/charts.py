"""Small text charts, as pure functions of data and size (testable without a terminal).

The widgets only hold data and call these; see tui-style.md §4.17.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

_BARS = "▁▂▃▄▅▆▇█"

#: TTFT histogram bucket upper edges in ms (log-spaced; the last bucket is open-ended).
TTFT_EDGES_MS: tuple[float, ...] = (50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000)


def sparkline(values: Sequence[float | None], width: int) -> str:
    """A one-line trend of the last ``width`` values; ``None`` (a failed probe) is drawn ``×``.

    The scale runs from 0 to the maximum, so small wobbles do not look dramatic.
    """
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    present = [v for v in tail if v is not None]
    top = max(present) if present else 0.0
    out = []
    for v in tail:
        if v is None:
            out.append("×")
        elif top <= 0:
            out.append(_BARS[0])
        else:
            out.append(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))])
    return "".join(out).rjust(width)


def bucket_counts(values: Sequence[float], edges: Sequence[float] = TTFT_EDGES_MS) -> list[int]:
    """Counts of ``values`` per bucket: ``< edges[0]``, ..., ``>= edges[-1]``."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        i = 0
        while i < len(edges) and v >= edges[i]:
            i += 1
        counts[i] += 1
    return counts


def _edge_label(ms: float) -> str:
    return f"{ms / 1000:g}s" if ms >= 1000 else f"{ms:g}"


def histogram(
    values: Sequence[float],
    height: int = 4,
    edges: Sequence[float] = TTFT_EDGES_MS,
) -> Text:
    """A vertical-bar histogram of ``values`` over fixed log-spaced buckets.

    Args:
        values: samples in ms (failures excluded by the caller).
        height: rows of bars (each row gives 8 levels).
        edges: bucket upper edges in ms.

    Returns:
        ``height`` bar rows, then an axis row with bucket labels, then a count row.
    """
    counts = bucket_counts(values, edges)
    col = 5
    top = max(counts) if counts else 0
    text = Text()
    for row in range(height, 0, -1):
        line = ""
        for c in counts:
            if top == 0:
                cell = " "
            else:
                level = c / top * height
                full = level - (row - 1)
                if full >= 1:
                    cell = _BARS[-1]
                elif full > 0:
                    cell = _BARS[max(0, math.ceil(full * 8) - 1)]
                else:
                    cell = " "
            line += (cell * 3).center(col)
        text.append(line + "\n", style="bold")
    labels = ["<" + _edge_label(edges[0])] + [_edge_label(e) for e in edges[:-1]]
    labels.append("≥" + _edge_label(edges[-1]))
    text.append("".join(lab[:col].center(col) for lab in labels) + "\n", style="dim")
    text.append("".join((str(c) if c else "·").center(col) for c in counts), style="dim")
    return text

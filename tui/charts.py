"""Small text charts, as pure functions of data and size (testable without a terminal).

The widgets only hold data and call these; see docs/architecture.md, "The dashboard".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def column_ranges(n: int, width: int) -> list[tuple[int, int]]:
    """Split ``n`` buckets over ``width`` columns: ``(lo, hi)`` bucket ranges, one per column.

    With fewer buckets than columns a bucket spans several columns (ranges repeat).
    """
    if n <= 0 or width <= 0:
        return []
    if n <= width:
        return [(j * n // width, j * n // width + 1) for j in range(width)]
    return [(j * n // width, max((j + 1) * n // width, j * n // width + 1)) for j in range(width)]


def merge_buckets(
    values: Sequence[float | None], weights: Sequence[int], lo: int, hi: int
) -> float | None:
    """The ``weights``-weighted mean of ``values[lo:hi]`` (None ignored, None when empty)."""
    total = 0.0
    n = 0
    for v, w in zip(values[lo:hi], weights[lo:hi], strict=False):
        if v is not None and w > 0:
            total += v * w
            n += w
    return total / n if n else None


def _level(value: float, top: float) -> str:
    if top <= 0:
        return _BARS[0]
    return _BARS[min(len(_BARS) - 1, max(0, int(value / top * (len(_BARS) - 1) + 0.5)))]


def trend_strip(
    values: Sequence[float | None],
    ok: Sequence[int],
    failed: Sequence[int],
    width: int,
) -> Text:
    """One line over time: a bar per column scaled from 0 to the maximum, ``×`` where the
    column had only failures, blank where nothing was probed."""
    text = Text(no_wrap=True)
    cols = column_ranges(len(values), width)
    merged = [merge_buckets(values, ok, lo, hi) for lo, hi in cols]
    top = max((v for v in merged if v is not None), default=0.0)
    for (lo, hi), v in zip(cols, merged, strict=True):
        if v is not None:
            text.append(_level(v, top), style="bold" if sum(failed[lo:hi]) else "")
        elif sum(failed[lo:hi]):
            text.append("×", style="bold")
        else:
            text.append(" ")
    return text


def dist_strip(values: Sequence[float], edges: Sequence[float] = TTFT_EDGES_MS) -> str:
    """A one-line histogram over fixed log buckets (``·`` for an empty bucket)."""
    counts = bucket_counts(values, edges)
    top = max(counts) if counts else 0
    if top == 0:
        return ""
    return "".join(_level(c, top) if c else "·" for c in counts)


def fmt_value(value: float, unit: str) -> str:
    """An axis label: ``850``, ``1.2s`` for ms; ``420`` for other units."""
    if unit == "ms" and value >= 1000:
        return f"{value / 1000:.3g}s"
    if value >= 100 or unit != "ms":
        return f"{value:.0f}" if value >= 10 else f"{value:.2g}"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _nice_ticks(lo: float, hi: float) -> list[float]:
    ticks: list[float] = []
    decade = 10 ** math.floor(math.log10(max(lo, 1e-9)))
    while decade <= hi * 10:
        for m in (1, 1.5, 2, 3, 5, 7):
            t = m * decade
            if lo <= t <= hi:
                ticks.append(t)
        decade *= 10
    return ticks


class LogAxis:
    """A log-scaled x axis over ``width`` columns from ``lo`` to ``hi`` (both > 0)."""

    def __init__(self, lo: float, hi: float, width: int) -> None:
        lo = max(lo, 1e-3)
        hi = max(hi, lo)
        if hi / lo < 2:  # too narrow a range: widen around its centre
            centre = math.sqrt(hi * lo)
            lo, hi = centre / math.sqrt(2), centre * math.sqrt(2)
        self.lo, self.hi, self.width = lo, hi, max(width, 1)
        self._a = math.log(lo)
        self._span = math.log(hi) - self._a

    @classmethod
    def around(cls, values: Sequence[float], width: int) -> LogAxis:
        """An axis covering ``values`` with a little margin."""
        present = [v for v in values if v > 0]
        if not present:
            return cls(1, 1000, width)
        return cls(min(present) / 1.08, max(present) * 1.08, width)

    def column(self, value: float) -> int:
        """The column of ``value`` (clamped to the axis)."""
        x = (math.log(max(value, 1e-3)) - self._a) / self._span
        return min(self.width - 1, max(0, int(x * self.width)))

    def counts(self, values: Iterable[float]) -> list[int]:
        """How many values fall in each column."""
        out = [0] * self.width
        for v in values:
            out[self.column(v)] += 1
        return out

    def labels(self, unit: str = "ms") -> Text:
        """A line of tick labels (1-2-5 steps) placed at their columns, never overlapping."""
        line = [" "] * self.width
        placed_until = -1
        for t in _nice_ticks(self.lo, self.hi):
            label = "┴" + fmt_value(t, unit)
            col = self.column(t)
            if col <= placed_until or col + len(label) > self.width:
                continue
            line[col : col + len(label)] = list(label)
            placed_until = col + len(label)
        return Text("".join(line), style="dim", no_wrap=True)


def histogram_marked(
    values: Sequence[float],
    width: int,
    height: int,
    marks: Sequence[tuple[str, float | None]],
    unit: str = "ms",
) -> Text:
    """A histogram on a log axis with vertical percentile marks and a labelled axis.

    Args:
        values: samples (failures excluded by the caller).
        width: columns available.
        height: rows of bars (each row gives 8 levels).
        marks: ``(label, value)`` pairs such as ``("P50", 842.0)``, drawn as ``┊`` through
            the bars and ``▲label`` under them.
        unit: ``ms`` (labels switch to seconds above 1000) or any other unit.

    Returns:
        ``height`` bar rows, a mark row and an axis-label row.
    """
    if not values:
        return Text("no successful probe in the window", style="dim")
    width = max(width, 10)
    axis = LogAxis.around([*values, *(v for _, v in marks if v)], width)
    # Bins at least two cells wide (about 40 at most) keep a few hundred samples smooth.
    bins = max(5, min(width // 2, 40))
    bin_axis = LogAxis(axis.lo, axis.hi, bins)
    counts = bin_axis.counts(values)
    top = max(counts)
    cols = column_ranges(bins, width)  # column -> (bin, bin + 1)
    mark_cols: dict[int, str] = {}
    for label, v in marks:
        if v is not None:
            mark_cols.setdefault(axis.column(v), label)
    text = Text(no_wrap=True)
    for row in range(height, 0, -1):
        for col, (b, _) in enumerate(cols):
            full = counts[b] / top * height - (row - 1)
            if full >= 1:
                text.append(_BARS[-1], style="bold")
            elif full > 0:
                text.append(_BARS[max(0, math.ceil(full * 8) - 1)], style="bold")
            elif col in mark_cols:
                text.append("┊", style="dim")
            else:
                text.append(" ")
        text.append("\n")
    marker = [" "] * width
    placed_until = -1
    for col in sorted(mark_cols):
        label = "▲" + mark_cols[col]
        start = max(col, placed_until + 1)
        if start + len(label) > width:
            label = "▲"
        if start < width:
            marker[start : start + len(label)] = list(label)[: width - start]
            placed_until = start + len(label)
    text.append("".join(marker) + "\n", style="bold")
    text.append_text(axis.labels(unit))
    return text


def time_chart(
    values: Sequence[float | None],
    ok: Sequence[int],
    failed: Sequence[int],
    width: int,
    height: int,
    unit: str,
    left_label: str,
    right_label: str = "now",
) -> Text:
    """Bars over time (a column per time slice), scaled from 0, with a y label and a time axis.

    Columns with only failures show ``×`` on the baseline (never a 0 bar); columns with no
    probe stay blank.

    Args:
        values: per-bucket means, oldest first (None: no successful probe).
        ok: successful probes per bucket (weights when merging buckets into columns).
        failed: failed probes per bucket.
        width: columns available (including a 7-column y gutter).
        height: rows of bars.
        unit: unit shown with the top value (``ms``, ``tok/s``).
        left_label: the time at the left edge (``-15m``).
        right_label: the time at the right edge.
    """
    gutter = 7
    cols = column_ranges(len(values), max(width - gutter, 4))
    merged = [merge_buckets(values, ok, lo, hi) for lo, hi in cols]
    fails = [sum(failed[lo:hi]) for lo, hi in cols]
    top = max((v for v in merged if v is not None), default=0.0)
    text = Text(no_wrap=True)
    if top <= 0 and not any(fails):
        return Text("no data in the window yet", style="dim")
    top_label = fmt_value(top, "ms" if unit == "ms" else unit) if top else "0"
    for row in range(height, 0, -1):
        if row == height:
            text.append(f"{top_label:>5} ┤"[:gutter].ljust(gutter), style="dim")
        elif row == 1:
            text.append(f"{'0':>5} ┤", style="dim")
        else:
            text.append("      │", style="dim")
        for v, f in zip(merged, fails, strict=True):
            if v is not None and top > 0:
                full = v / top * height - (row - 1)
                if full >= 1:
                    text.append(_BARS[-1], style="bold")
                elif full > 0:
                    text.append(_BARS[max(0, math.ceil(full * 8) - 1)], style="bold")
                else:
                    text.append(" ")
            elif f and row == 1:
                text.append("×", style="bold")
            else:
                text.append(" ")
        text.append("\n")
    span = len(cols)
    axis = left_label + right_label.rjust(max(span - len(left_label), 1))
    text.append(" " * gutter + axis[:span], style="dim")
    return text


def hbar(value: float | None, top: float, width: int) -> str:
    """A horizontal bar of ``value / top`` of ``width`` cells, in eighths of a cell."""
    if value is None or top <= 0 or width <= 0:
        return ""
    eighths = round(min(max(value / top, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)

"""The overview table: one row per target, group members together under a group row.

Two halves, kept apart so the layout logic is testable without a terminal:

* pure functions: which columns fit a width (dropped by priority, never wrapped), how targets
  are grouped, filtered and sorted into rows, and each cell's text;
* :class:`TargetTable`, a Line-API widget that draws those rows. It repaints only the lines
  whose text changed (a ``DataTable.update_cell`` repaints the whole table, which at one
  refresh a second was most of the dashboard's idle CPU), keeps the header fixed, and moves
  its cursor over target rows only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from probes.timestamps import parse_iso
from store.health import State
from store.summary import TargetSummary, observed_share
from tui import format as fmt
from tui.charts import dist_strip, trend_strip

if TYPE_CHECKING:
    from store.fallback import FallbackFit


@dataclass(frozen=True, slots=True)
class Column:
    """A table column. Lower ``priority`` survives narrower terminals.

    Attributes:
        key: stable id.
        label: header text.
        width: cells, including a one-cell gap.
        priority: 0 always shown; higher numbers drop first as the terminal narrows.
        right: right-aligned (numbers) rather than left-aligned (words).
    """

    key: str
    label: str
    width: int
    priority: int
    right: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("state", "state", fmt.STATE_WIDTH + 1, 0, right=False),
    Column("since", "for", 4, 2),
    Column("target", "target", 15, 0, right=False),
    Column("p50", "P50ms", 6, 0),
    Column("p95", "P95", 5, 3),
    Column("p99", "P99", 5, 0),
    Column("tps", "tok/s", 6, 1),
    Column("err", "err", 5, 1),
    Column("kind", "top error", 14, 4, right=False),
    Column("cost", "$/req", 10, 3),
    Column("uptime", "uptime", 7, 1),
    Column("seen", "seen", 5, 1),
    Column("age", "last", 5, 1),
    Column("dist", "TTFT dist", 14, 4, right=False),
    Column("trend", "TTFT trend", 18, 5, right=False),
    Column("headroom", "rate left", 11, 5),
    Column("lastms", "last ms", 8, 6),
    Column("cache", "cache", 6, 6),
    Column("model", "model", 20, 7, right=False),
    Column("provider", "provider", 18, 8, right=False),
)
"""Every column, in display order. Widths include a one-cell gap (no cell padding)."""


def visible_columns(width: int, state_width: int = fmt.STATE_WIDTH) -> tuple[Column, ...]:
    """The columns that fit in ``width`` cells, dropping the highest priority numbers first.

    One cell is kept for the vertical scrollbar. Columns of priority 0 are always kept.

    Args:
        width: cells available to the table.
        state_width: cells of the widest state label on screen (:func:`state_width`); the
            widest of all, "○ not configured", by default.
    """
    available = width - 1
    columns = tuple(replace(c, width=state_width + 1) if c.key == "state" else c for c in COLUMNS)
    chosen: set[str] = set()
    used = 0
    for col in sorted(columns, key=lambda c: c.priority):
        if used + col.width > available and col.priority > 0:
            # Lower-priority columns could still fit, but dropping strictly by priority
            # keeps the layout predictable as the terminal is resized.
            break
        chosen.add(col.key)
        used += col.width
    return tuple(c for c in columns if c.key in chosen)


def state_width(summaries: Sequence[TargetSummary]) -> int:
    """Cells the state column needs for these targets: the widest label among their states
    (never narrower than the header). A fleet that is all up gives the 12 cells "○ not
    configured" would take to P95 and $/req at 80 columns; the column widens (and they drop)
    only while a target is in a state with a longer label."""
    widths = [
        len(fmt.STATE_SHORT[state_of(s)]) if s.computed_at is not None else 1 for s in summaries
    ]
    return max([len("state"), *widths])


# ---- rows ------------------------------------------------------------------------------------


#: Sort orders cycled by ``s``: (id, label). Groups always stay together.
SORTS: tuple[tuple[str, str], ...] = (
    ("config", "config order"),
    ("state", "worst state first"),
    ("ttft", "fastest P50 TTFT first"),
    ("errors", "most errors first"),
    ("cost", "cheapest first"),
    ("name", "name"),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table.

    Attributes:
        key: the target name, or ``group:<name>`` for a group row.
        summary: the target's summary (None for a group row).
        group: the group's name (both for a group row and its members).
        members: for a group row, its members' summaries in config order.
        branch: ``├ `` / ``└ `` for group members (``├◆`` / ``└◆`` for the one to use now,
            :func:`best_now`), "" otherwise.
    """

    key: str
    summary: TargetSummary | None
    group: str | None = None
    members: tuple[TargetSummary, ...] = ()
    branch: str = ""

    @property
    def selectable(self) -> bool:
        """Target rows take the cursor; group rows do not."""
        return self.summary is not None


def state_of(s: TargetSummary) -> State:
    """The displayed state of a summary (no data when it has no verdict yet)."""
    return s.verdict.state if s.verdict else State.NO_DATA


def matches(s: TargetSummary, text: str) -> bool:
    """Whether a filter text matches a target (name, provider, model, group or state)."""
    needle = text.strip().lower()
    if not needle:
        return True
    hay = " ".join((s.name, s.provider, s.model, s.group_name or "", state_of(s).value))
    return needle in hay.lower()


def _sort_key(sort: str) -> Callable[[TargetSummary], tuple[float, str]]:
    big = float("inf")

    def key(s: TargetSummary) -> tuple[float, str]:
        if sort == "state":
            return (fmt.STATE_SEVERITY[state_of(s)], "")
        if sort == "ttft":
            return (s.ttft_p50_ms if s.ttft_p50_ms is not None else big, "")
        if sort == "errors":
            return (-(s.error_rate or 0.0), "")
        if sort == "cost":
            return (s.cost_per_request_usd if s.cost_per_request_usd is not None else big, "")
        if sort == "name":
            return (0.0, s.name)
        return (0.0, "")

    return key


def build_rows(
    targets: Sequence[TargetSummary], sort: str = "config", filter_text: str = ""
) -> list[Row]:
    """Group, filter and sort targets into table rows.

    Members of a ``group`` (a primary and its fallbacks) always sit together in config order
    under a group row, so "primary down, fallback healthy" reads at a glance. Sorting orders
    the blocks (a group by its best member for speed/cost, its worst for state/errors);
    ties keep config order.
    """
    blocks: dict[str, list[TargetSummary]] = {}
    needle = filter_text.strip().lower()
    for s in targets:
        if (
            not needle
            or matches(s, needle)
            or (s.group_name is not None and needle in s.group_name.lower())
        ):
            blocks.setdefault(f"group:{s.group_name}" if s.group_name else s.name, []).append(s)
    key = _sort_key(sort)
    order = list(blocks)
    if sort != "config":
        order.sort(key=lambda b: min(key(s) for s in blocks[b]))
    rows: list[Row] = []
    for b in order:
        members = blocks[b]
        group = members[0].group_name
        if group is None:
            rows.append(Row(members[0].name, members[0]))
            continue
        rows.append(Row(b, None, group, tuple(members)))
        # "◆" in the branch marks the member to use right now (best_now): no extra cells.
        best = best_now(members) if members[0].vantage is None else None
        for i, s in enumerate(members):
            glyph = "└" if i == len(members) - 1 else "├"
            rows.append(Row(s.name, s, group, branch=glyph + ("◆" if s is best else " ")))
    return rows


def group_text(row: Row, fits: Sequence[FallbackFit] = ()) -> Text:
    """The group row: its name, then the primary's and each fallback's state in words, so
    "primary down, fallback healthy" reads without looking at the rows below, and whether the
    fallback can take the primary's load (``fits``, :func:`tui.fallback_panel.load_text`)."""
    members = row.members
    if members and members[0].vantage is not None:
        # One target seen from several vantages (``view --prometheus``): the split in words.
        text = Text(f" {row.group}", style="bold")
        verdict = members[0].verdict
        return text.append(f" · {verdict.reason}" if verdict else "")
    text = Text(f" group {row.group}", style="bold")
    if not members:
        return text
    text.append(f" · primary {fmt.STATE_LABELS[state_of(members[0])]}")
    fallbacks = members[1:]
    if len(fallbacks) == 1:
        text.append(f" · fallback {fmt.STATE_LABELS[state_of(fallbacks[0])]}")
    elif fallbacks:
        up = sum(1 for s in fallbacks if state_of(s) in (State.UP, State.DEGRADED))
        text.append(f" · fallbacks {up} of {len(fallbacks)} up")
    if fits:
        # Loaded only once the reader found groups with features (it brings the prices).
        from tui.fallback_panel import load_text

        text.append(load_text(fits))
    return text


def best_now(members: Sequence[TargetSummary]) -> TargetSummary | None:
    """The member to send traffic to right now: up before degraded (others are not
    answering), then the lowest P50 TTFT over the window, then config order; None when no
    member is up or degraded."""
    rank = {State.UP: 0, State.DEGRADED: 1}
    live = [(rank[state_of(s)], i, s) for i, s in enumerate(members) if state_of(s) in rank]
    if not live:
        return None
    inf = float("inf")
    return min(live, key=lambda t: (t[0], t[2].ttft_p50_ms or inf, t[1]))[2]


#: The columns that say who a target is: all a summary without figures shows.
_WHO = frozenset({"target", "model", "provider"})


def cell_text(col: Column, s: TargetSummary, branch: str, now_s: float | None = None) -> str:
    """The plain text of one cell (the state cell's style is added by the caller).

    Args:
        col: the column.
        s: the target's summary.
        branch: tree glyph for group members.
        now_s: seconds since the epoch now (for "in this state for"); None to omit.
    """
    k = col.key
    if s.computed_at is None and k not in _WHO:
        # Drawn from the published targets before the first read (store/preview.py).
        return "…" if k == "state" else ""
    if k == "state":
        return fmt.STATE_SHORT[state_of(s)]
    if k == "since":
        since = s.verdict.since if s.verdict else None
        if since is None or now_s is None:
            return "–"
        seconds = now_s - parse_iso(since).timestamp()
        if state_of(s) is State.IN_FLIGHT and seconds < 100:
            return f"{max(seconds, 0):.0f}s"  # "probing 12s": the seconds are the point
        return fmt.span(seconds)
    if k == "target":
        return branch + (s.vantage if s.vantage is not None else s.name)
    if k == "p50":
        return fmt.ms(s.ttft_p50_ms)
    if k == "p95":
        return fmt.ms(s.ttft_p95_ms)
    if k == "p99":
        return fmt.ms(s.ttft_p99_ms)
    if k == "tps":
        return fmt.tps(s.decode_tps_p50)
    if k == "err":
        return fmt.pct(s.error_rate)
    if k == "kind":
        return s.top_error_kind or ("–" if s.count else "")
    if k == "cost":
        return fmt.usd(s.cost_per_request_usd) if s.count else "–"
    if k == "uptime":
        return fmt.uptime_pct(s.window_uptime.pct if s.window_uptime else None)
    if k == "seen":
        return fmt.share(observed_share(s.window_uptime))
    if k == "age":
        return fmt.age(s.last_age_s)
    if k == "dist":
        return dist_strip(s.ttft_values_ms) or "no data"
    if k == "trend":
        tr = s.trend
        if tr is None or not (any(tr.ok) or any(tr.failed)):
            return "no data"
        return trend_strip(tr.ttft_ms, tr.ok, tr.failed, col.width - 1).plain
    if k == "headroom":
        return fmt.headroom(s.ratelimit_remaining_requests, s.ratelimit_remaining_tokens)
    if k == "lastms":
        if s.last_status == "ok":
            return fmt.ms(s.last_ttft_ms)
        return "fail" if s.last_status else "–"
    if k == "cache":
        return fmt.pct(s.cache_hit_share)
    if k == "model":
        return s.model
    if k == "provider":
        return s.provider
    raise KeyError(k)


def fit(text: str, width: int, right: bool) -> str:
    """Pad or cut ``text`` to ``width`` cells with a one-cell gap on the left (``…`` if cut)."""
    inner = width - 1
    if len(text) > inner:
        text = text[: max(inner - 1, 0)] + "…"
    return " " + (text.rjust(inner) if right else text.ljust(inner))


def header_text(columns: Sequence[Column]) -> str:
    """The header line for ``columns``."""
    return "".join(fit(c.label, c.width, c.right) for c in columns)


# ---- the widget ------------------------------------------------------------------------------


#: A row's text, or a function that draws it: called only once the row is on screen (or
#: its text is asked for), so a refresh costs the rows shown, not every target.
LineText = Text | Callable[[], Text]


class _Line:
    """A row as drawn: its key, whether it takes the cursor, and its text (drawn on first
    use)."""

    __slots__ = ("_draw", "_sig", "_text", "key", "selectable")

    def __init__(self, key: str, selectable: bool, text: LineText) -> None:
        self.key = key
        self.selectable = selectable
        self._text: Text | None = text if isinstance(text, Text) else None
        self._draw: Callable[[], Text] | None = None if isinstance(text, Text) else text
        self._sig: tuple[object, ...] | None = None

    @property
    def drawn(self) -> bool:
        """Whether the text was drawn (a row never shown is not)."""
        return self._text is not None

    @property
    def text(self) -> Text:
        """The row's text, drawn now if it was not yet."""
        if self._text is None:
            assert self._draw is not None
            self._text, self._draw = self._draw(), None
        return self._text

    @property
    def sig(self) -> tuple[object, ...]:
        """What identifies the row's look: plain text plus style spans (cheaper than
        ``Text.markup``)."""
        if self._sig is None:
            text = self.text
            self._sig = (text.plain, *text.spans)
        return self._sig


class TargetTable(ScrollView, can_focus=True):
    """The overview's target rows, drawn line by line.

    Set the content with :meth:`set_lines`; only lines on screen are drawn, and of those only
    the ones whose text changed are repainted.
    The cursor moves over target rows (group rows are skipped) and is kept on the same
    target when rows are re-ordered or filtered.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "up", show=False),
        Binding("down,j", "cursor(1)", "down", show=False),
        Binding("pageup", "cursor(-10)", "page up", show=False),
        Binding("pagedown", "cursor(10)", "page down", show=False),
        Binding("home,g", "cursor(-100000)", "first", show=False),
        Binding("end,G", "cursor(100000)", "last", show=False),
    ]
    """Arrows and vim keys move the cursor (enter is the screen's: footer order)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "target-table--header",
        "target-table--cursor",
        "target-table--group",
    }
    """Header line, cursor row and group rows."""

    DEFAULT_CSS = """
    TargetTable { height: auto; scrollbar-size-vertical: 1; overflow-x: hidden; }
    TargetTable > .target-table--header { text-style: bold; color: $text-muted; }
    TargetTable > .target-table--cursor { background: $block-cursor-blurred-background; }
    TargetTable:focus > .target-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    TargetTable > .target-table--group { color: $text-muted; }
    """
    """Default styles (theme variables only)."""

    class Highlighted(Message):
        """The cursor moved to another target."""

        def __init__(self, name: str | None) -> None:
            super().__init__()
            self.name = name
            """The target under the cursor (None when the table is empty)."""

    class Selected(Message):
        """Enter (or a click on the selected row) asked for a target's detail."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name
            """The target."""

    cursor_key: var[str | None] = var(None, init=False)
    """The target under the cursor, or None when no target row is shown (the selection:
    validated to a shown target row; a change repaints, scrolls and posts
    :class:`Highlighted`, as Textual's ``ListView.index`` does)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[_Line] = []
        self._header = ""
        self._index = -1  # row of cursor_key in _lines (-1: none)
        self._strips: dict[tuple[tuple[object, ...], bool, int], Strip] = {}

    def validate_cursor_key(self, key: str | None) -> str | None:
        """Only a shown target row can be selected; anything else selects the first one."""
        if key is not None and self._row_of(key) >= 0:
            return key
        first = self._first_selectable(0, 1)
        return self._lines[first].key if first >= 0 else None

    def watch_cursor_key(self, key: str | None) -> None:
        """Repaint and scroll to the new selection and tell the screen."""
        self._index = self._row_of(key) if key is not None else -1
        self.refresh()
        self._scroll_to_cursor()
        self.post_message(self.Highlighted(key))

    def _row_of(self, key: str) -> int:
        for i, line in enumerate(self._lines):
            if line.key == key and line.selectable:
                return i
        return -1

    # ---- content -------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """The keys of every row in order (``group:<name>`` for group rows)."""
        return [line.key for line in self._lines]

    def row_texts(self) -> list[str]:
        """The plain text of every row (for tests and captures)."""
        return [line.text.plain for line in self._lines]

    def set_lines(self, header: str, lines: Sequence[tuple[str, bool, LineText]]) -> None:
        """Replace the rows, drawing only those on screen and repainting only what changed.

        Args:
            header: the header line.
            lines: ``(key, selectable, text)`` per row, in display order; ``text`` may be a
                function drawing it, called only when the row is shown (or its text asked
                for: :meth:`row_texts`).
        """
        old_key, old_index = self.cursor_key, self._index
        old = self._lines
        new = [_Line(k, sel, t) for k, sel, t in lines]
        self._lines = new
        structure_changed = len(old) != len(new) or header != self._header
        if structure_changed:
            self._header = header
            self.virtual_size = Size(self.size.width, len(new) + 1)
        if len(self._strips) > 8 * (len(new) + 1):
            self._strips.clear()
        # Keep the cursor on the same target if it is still shown, else near where it was.
        index = self._row_of(old_key) if old_key is not None else -1
        if index < 0:
            index = self._first_selectable(max(old_index, 0), 1)
        key = new[index].key if index >= 0 else None
        if key != old_key:
            self.cursor_key = key  # the watcher repaints, scrolls and tells the screen
            return
        moved = index != old_index
        self._index = index
        if structure_changed or moved:
            self.refresh()
        else:
            for i in self._rows_on_screen():
                a, b = old[i], new[i]
                if a.key != b.key or not a.drawn or a.sig != b.sig:
                    self._refresh_row(i)
        if moved or structure_changed:
            self._scroll_to_cursor()
            self.post_message(self.Highlighted(key))

    def _rows_on_screen(self) -> range:
        """Indexes of the rows the table shows now (below its header)."""
        top = round(self.scroll_y)
        return range(top, min(top + max(self.size.height - 1, 0), len(self._lines)))

    def _first_selectable(self, start: int, step: int) -> int:
        n = len(self._lines)
        if n == 0:
            return -1
        i = min(max(start, 0), n - 1)
        while 0 <= i < n:
            if self._lines[i].selectable:
                return i
            i += step
        # Nothing that way: look the other way.
        i = min(max(start, 0), n - 1)
        while 0 <= i < n:
            if self._lines[i].selectable:
                return i
            i -= step
        return -1

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - round(self.scroll_y)
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        if self._index < 0:
            return
        visible = max(self.size.height - 1, 1)
        top = round(self.scroll_y)
        # Show the group row above a first member too.
        first = self._index
        if first > 0 and not self._lines[first - 1].selectable:
            first -= 1
        if first < top:
            self.scroll_to(y=first, animate=False)
        elif self._index >= top + visible:
            self.scroll_to(y=self._index - visible + 1, animate=False)

    # ---- actions -------------------------------------------------------------------------

    def move_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` target rows (clamped; group rows are skipped)."""
        if not self._lines:
            return
        step = 1 if delta > 0 else -1
        target = self._index
        remaining = abs(delta)
        i = self._index
        while remaining and 0 <= i + step < len(self._lines):
            i += step
            if self._lines[i].selectable:
                target = i
                remaining -= 1
        if target != self._index and target >= 0:
            self.cursor_key = self._lines[target].key

    def select_key(self, key: str) -> None:
        """Put the cursor on the row ``key`` (if shown and selectable)."""
        if self._row_of(key) >= 0:
            self.cursor_key = key

    def action_cursor(self, delta: int) -> None:
        """Move the cursor (bound to arrows, page keys, home/end and j/k/g/G)."""
        self.move_cursor(delta)

    def action_select(self) -> None:
        """Ask for the selected target's detail."""
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(key))

    def on_click(self, event: events.Click) -> None:
        """A click selects a row; a click on the selected row opens its detail."""
        index = event.y - 1 + round(self.scroll_y)
        if event.y < 1 or not 0 <= index < len(self._lines):
            return
        if not self._lines[index].selectable:
            return
        if index == self._index:
            self.action_select()
        else:
            self.select_key(self._lines[index].key)

    # ---- drawing -------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        """A new width invalidates every cached line."""
        self._strips.clear()
        self.virtual_size = Size(event.size.width, len(self._lines) + 1)
        self._scroll_to_cursor()

    def notify_style_update(self) -> None:
        """Theme changes invalidate cached lines."""
        super().notify_style_update()
        self._strips.clear()

    def _strip(self, text: Text, style: Style, width: int) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments, text.cell_len).crop_extend(0, width, style)
        return strip.apply_style(style)

    def render_line(self, y: int) -> Strip:
        """Line 0 is the fixed header; the rest scroll."""
        width = self.size.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("target-table--header")
            return self._strip(Text(self._header), style, width)
        index = y - 1 + round(self.scroll_y)
        if not 0 <= index < len(self._lines):
            return Strip([Segment(" " * width, base)], width)
        line = self._lines[index]
        selected = index == self._index
        key = (line.sig, selected, width)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        style = base
        text = line.text
        if selected:
            style = base + self.get_component_rich_style("target-table--cursor")
            if self.app.no_color:
                style += Style(reverse=True)  # grey on grey is unreadable: invert instead
            # State colours on the cursor's background are hard to read: plain bold text.
            text = Text(text.plain, style="bold")
        elif not line.selectable:
            style = base + self.get_component_rich_style("target-table--group")
        strip = self._strip(text, style, width)
        self._strips[key] = strip
        return strip

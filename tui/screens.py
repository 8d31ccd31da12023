"""The dashboard's screens: overview, one target's detail, comparison, incidents, cost, help
and "terminal too small".

Screens never read the database and never call the app. Each dashboard screen's ``view`` is
bound to the app's (:class:`~tui.view.DashView`); the screen on top draws every new view
(:meth:`DashScreen.show_view`), a covered screen draws the newest one when it comes back
(:meth:`DashScreen.on_screen_resume`), so hidden screens cost nothing. What the user does that
changes shared state goes up as messages (:class:`~tui.messages.FilterChanged`,
``TargetTable.Selected``) or app actions (``app.cycle_sort``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, ScrollableContainer, VerticalScroll
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from store.health import State
from store.summary import TargetSummary
from tui import format as fmt
from tui import keys, panels
from tui.incident_list import SEVERITIES
from tui.messages import FilterChanged
from tui.table import (
    COLUMNS,
    Column,
    LineText,
    Row,
    TargetTable,
    build_rows,
    cell_text,
    fit,
    group_text,
    header_text,
    state_of,
    state_width,
    visible_columns,
)
from tui.view import DashView
from tui.widgets import Drawing

if TYPE_CHECKING:
    from store.reader import Snapshot  # loaded by the reader's thread, after the first paint

_SINCE = next(c for c in COLUMNS if c.key == "since")


def fingerprint(s: TargetSummary) -> tuple[object, ...]:
    """What changes a target's panels (not its age): counts, newest probe, state, uptime."""
    return (
        s.name,
        s.count,
        s.errors,
        s.last_started_at,
        s.verdict,
        s.paused,
        s.window_uptime,
        s.ttft_p50_ms,
    )


class DashScreen(Screen[None]):
    """A screen showing snapshot data under the shared status line."""

    # Textual annotates this oddly (ClassVar inside a union): mypy wants no ClassVar here.
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-narrow"),
        (120, "-wide"),
    ]
    """At 120 columns and more, panels sit side by side."""

    view: var[DashView | None] = var(None, init=False, always_update=True)
    """What to draw (bound to the app's ``view``)."""

    def watch_view(self, view: DashView | None) -> None:
        """Draw a new view while on top (a covered screen catches up when it comes back)."""
        if view is not None and self.is_current and self.is_mounted:
            self.show_view(view)

    def current_target(self) -> str | None:
        """The target that ``p``, ``r`` and ``e`` act on here (None: none selected)."""
        return None

    def show_view(self, view: DashView) -> None:
        """Redraw from ``view`` (only what changed)."""
        self.show_status(view)

    def show_status(self, view: DashView) -> None:
        """Redraw the status line."""
        status = self.query_one("#status", Drawing)
        snap, ctx = view.snap, view.status

        def draw(width: int, height: int) -> Text:
            line, blind = panels.status_text(snap, ctx, width)
            status.set_class(blind, "blind")
            return line

        status.show(draw, panels.status_key(snap, ctx))

    def _draw(self) -> None:
        if self.view is not None:
            self.show_view(self.view)

    def on_mount(self) -> None:
        """First paint from the view bound so far."""
        self._draw()

    def on_screen_resume(self) -> None:
        """Catch up with the newest view when this screen comes back on top."""
        self._draw()

    def on_resize(self) -> None:
        """Redraw at the new size (columns and panels depend on it)."""
        self._draw()


class OverviewScreen(DashScreen):
    """One row per target (groups together), the selected target's panel and incidents."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *keys.FIRST,
        # On-call's keys before the rest: at 80 columns the footer ends after about nine.
        Binding("i", "app.open_incidents", "incidents", tooltip="Open and recent incidents"),
        Binding("enter", "details", "details", tooltip="Open the selected target's detail"),
        keys.PAUSE,
        keys.PROBE,
        keys.WINDOW,
        Binding("slash", "filter", "filter", tooltip="Filter targets by name, model, group"),
        Binding(
            "s", "app.cycle_sort", "sort", tooltip="Cycle the sort order (groups stay together)"
        ),
        Binding("c", "app.open_compare", "compare", tooltip="Compare targets on shared axes"),
        Binding(
            "dollar_sign",
            "app.open_cost",
            "cost",
            key_display="$",
            tooltip="Cost: feature projections (cheapest, fastest) and cost of monitoring",
        ),
        keys.EXPORT,
        keys.PAUSE_ALL,
        keys.PROBE_ALL,
        Binding("escape", "clear_filter", "clear filter", show=False, tooltip="Clear the filter"),
    ]
    """Overview keys, in footer order."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[tuple[object, ...], Text]] = {}

    def compose(self) -> ComposeResult:
        """Status, table, lower panels, the (hidden) filter box and the footer."""
        yield Drawing(id="status")
        yield Drawing(id="summary")
        yield TargetTable(id="targets")
        with Container(id="lower"):
            yield Drawing(id="selected", fill=True)
            yield Drawing(id="incidents")
        yield Input(id="filter", placeholder="filter targets (enter keeps it, esc clears)")
        yield Footer()

    def on_mount(self) -> None:
        """First paint: "no data yet" states before the first read lands."""
        self.query_one("#filter", Input).cursor_blink = False
        self.query_one(TargetTable).focus()
        self._draw()

    def current_target(self) -> str | None:
        """The target under the cursor."""
        return self.query_one(TargetTable).cursor_key

    def show_view(self, view: DashView) -> None:
        """Redraw the table (changed lines only), the selected panel and incidents."""
        self.show_status(view)
        table = self.query_one(TargetTable)
        snap = view.snap
        shown = snap.targets if snap is not None else view.preview or ()
        columns = visible_columns(table.size.width or self.size.width, state_width(shown))
        lines: list[tuple[str, bool, LineText]]
        if snap is None and view.preview:
            # The first paint: who the targets are; their figures follow with the snapshot.
            lines = [
                (row.key, True, self._row_drawing(columns, row, None, view))
                if row.summary is not None
                else (row.key, False, group_text(row))
                for row in build_rows(view.preview, view.sort, view.filter_text)
            ]
            table.set_lines(header_text(columns), lines)
        elif snap is None:
            table.set_lines(
                header_text(columns), [("empty", False, Text(" reading the database…"))]
            )
        elif not snap.targets:
            table.set_lines(
                header_text(columns),
                [
                    (
                        "empty",
                        False,
                        Text(f" no data yet: {snap.waiting}"),
                    )
                ],
            )
        else:
            rows = build_rows(snap.targets, view.sort, view.filter_text)
            now_s = snap.taken_at.timestamp()
            lines = []
            for row in rows:
                if row.summary is None:
                    fits = snap.fallbacks.get(row.group or "", ())
                    lines.append((row.key, False, group_text(row, fits)))
                else:
                    lines.append((row.key, True, self._row_drawing(columns, row, now_s, view)))
            if not lines:
                lines.append(
                    ("empty", False, Text(f" no target matches “{view.filter_text}” (esc clears)"))
                )
            table.set_lines(header_text(columns), lines)
        self._show_selected(view)
        self._show_incidents(snap)
        self._show_summary(view)

    def _show_summary(self, view: DashView) -> None:
        states = tuple(state_of(s) for s in view.snap.targets) if view.snap else ()
        styles = tuple(view.style(st) for st in fmt.SUMMARY_ORDER)
        self.query_one("#summary", Drawing).show(
            lambda w, h: panels.summary_text(states, styles, w), (states, styles)
        )

    def _row_drawing(
        self, columns: tuple[Column, ...], row: Row, now_s: float | None, view: DashView
    ) -> Callable[[], Text]:
        """Draws the row's text when the table shows it (most of 200 rows are off screen)."""
        return lambda: self._row_text(columns, row, now_s, view)

    def _row_text(
        self, columns: tuple[Column, ...], row: Row, now_s: float | None, view: DashView
    ) -> Text:
        s = row.summary
        assert s is not None
        # Only the ages move between two reads without a probe: reuse the row otherwise.
        since = cell_text(_SINCE, s, "", now_s)
        key = (
            columns,
            row.branch,
            s.computed_at,
            s.verdict,
            s.paused,
            fmt.age(s.last_age_s),
            since,
            view.style(state_of(s)),
        )
        cached = self._rows.get(s.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = Text(no_wrap=True)
        for col in columns:
            cell = fit(cell_text(col, s, row.branch, now_s), col.width, col.right)
            if col.key == "state":
                text.append(cell, style=view.style(state_of(s)))
            else:
                text.append(cell)
        self._rows[s.name] = (key, text)
        return text

    def _selected_summary(self, snap: Snapshot | None) -> TargetSummary | None:
        if snap is None:
            return None
        key = self.query_one(TargetTable).cursor_key
        return next((s for s in snap.targets if s.name == key), None)

    def _show_selected(self, view: DashView) -> None:
        panel = self.query_one("#selected", Drawing)
        snap = view.snap
        if snap is None:
            panel.show(lambda w, h: Text("reading the database…", style="dim"), ("loading",))
            return
        s = self._selected_summary(snap)
        if s is None and snap.targets:
            panel.show(lambda w, h: Text("no target selected", style="dim"), ("none",))
            return
        style = view.style(state_of(s)) if s else ""
        window, now = snap.window_s, snap.taken_at
        official = snap.official.get(s.name) if s else None
        key = (fingerprint(s) if s else None, window, bool(snap.targets), official)
        panel.show(lambda w, h: panels.selected_text(s, window, w, now, style, h, official), key)

    def _show_incidents(self, snap: Snapshot | None) -> None:
        panel = self.query_one("#incidents", Drawing)
        if snap is None:
            panel.show(lambda w, h: Text("Incidents: reading…", style="dim"), ("loading",))
            return
        incidents, window, now = snap.incidents, snap.window_s, snap.taken_at
        open_minute = int(now.timestamp() // 60) if any(i.open for i in incidents) else 0
        key = (tuple((i.id, i.ended_at, i.failures) for i in incidents), window, open_minute)
        panel.show(lambda w, h: panels.incidents_text(incidents, now, window, w), key)

    @on(TargetTable.Highlighted)
    def _highlighted(self) -> None:
        if self.view is not None:
            self._show_selected(self.view)

    def action_details(self) -> None:
        """Open the detail screen of the target under the cursor (the table's ``Selected``
        message goes up to the app, which opens it)."""
        self.query_one(TargetTable).action_select()

    # ---- filter and sort ------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter box and focus it."""
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        """Clear the filter and hide its box."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.post_message(FilterChanged(""))
        self.query_one(TargetTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.post_message(FilterChanged(event.value))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        if not event.value:
            box.remove_class("visible")
        self.query_one(TargetTable).focus()


class _SubScreen(DashScreen):
    """A screen opened from the overview; esc (or backspace) goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *keys.FIRST,
        Binding("escape,backspace", "back", "back", tooltip="Back to the overview"),
        *keys.LAST,
    ]
    """Back keys (tmux delays a lone esc by 0.5 s, so backspace works too)."""

    def action_back(self) -> None:
        """Return to the previous screen."""
        self.app.pop_screen()


class DetailScreen(_SubScreen):
    """One target: histograms with percentile marks, TTFT and TPS over time, errors by kind,
    state history and the recent probes with their error messages."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.target_name = name
        """The target shown."""

    def compose(self) -> ComposeResult:
        """Status, a scrolling body of panels, the footer."""
        yield Drawing(id="status")
        with VerticalScroll(id="detail-body"):
            yield Drawing(id="head")
            with Container(id="hists", classes="pair"):
                yield Drawing(id="ttft-hist", classes="half")
                yield Drawing(id="total-hist", classes="half")
            with Container(id="trends", classes="pair"):
                yield Drawing(id="ttft-trend", classes="half")
                yield Drawing(id="tps-trend", classes="half")
            with Container(id="tables", classes="pair"):
                yield Drawing(id="errors", classes="half")
                yield Drawing(id="history", classes="half")
            yield Drawing(id="recent")
        yield Footer()

    def on_mount(self) -> None:
        """Draw what is known now; the detail arrives with the next refresh."""
        self.query_one("#detail-body").focus()
        self._draw()

    def current_target(self) -> str | None:
        """This screen's target."""
        return self.target_name

    def show_view(self, view: DashView) -> None:
        """Redraw every panel whose data changed."""
        self.show_status(view)
        snap = view.snap
        s = next((t for t in snap.targets if t.name == self.target_name), None) if snap else None
        head = self.query_one("#head", Drawing)
        if snap is None or s is None:
            name = self.target_name
            head.show(lambda w, h: Text(f"{name}: no data yet", style="bold"), ("none", name))
            return
        detail = snap.detail if snap.detail and snap.detail.name == s.name else None
        window, now = snap.window_s, snap.taken_at
        style = view.style(state_of(s))
        fp = (fingerprint(s), window)
        official = snap.official.get(s.name)
        head.show(
            lambda w, h: panels.detail_head(
                s, window, w, now, style, official=official, detail=detail
            ),
            (*fp, s.verdict, official, id(detail)),
        )
        marks_t = [("P50", s.ttft_p50_ms), ("P95", s.ttft_p95_ms), ("P99", s.ttft_p99_ms)]
        marks_total = [("P50", s.total_p50_ms), ("P95", s.total_p95_ms), ("P99", s.total_p99_ms)]
        self.query_one("#ttft-hist", Drawing).show(
            lambda w, h: panels.histogram_panel(
                "TTFT histogram (ms, log scale)", s.ttft_values_ms, marks_t, w
            ),
            fp,
        )
        self.query_one("#total-hist", Drawing).show(
            lambda w, h: panels.histogram_panel(
                "Total time histogram (ms, log scale)", s.total_values_ms, marks_total, w
            ),
            fp,
        )
        dkey = (fp, id(detail))
        self.query_one("#ttft-trend", Drawing).show(
            lambda w, h: panels.trend_panel("TTFT over time", detail, "ttft", w), dkey
        )
        self.query_one("#tps-trend", Drawing).show(
            lambda w, h: panels.trend_panel("Decode tok/s over time", detail, "tps", w), dkey
        )
        self.query_one("#errors", Drawing).show(
            lambda w, h: panels.errors_panel(detail, s, w), dkey
        )
        open_minute = int(now.timestamp() // 60)
        self.query_one("#history", Drawing).show(
            lambda w, h: panels.history_panel(detail, now, w), (dkey, open_minute)
        )
        self.query_one("#recent", Drawing).show(
            lambda w, h: panels.recent_panel(detail, now, w), dkey
        )


class CompareScreen(_SubScreen):
    """Targets side by side on the same axes: TTFT distribution, decode TPS, cost per request."""

    def compose(self) -> ComposeResult:
        """Status, the comparison, the footer."""
        yield Drawing(id="status")
        with VerticalScroll(id="compare-body"):
            yield Drawing(id="compare")
        yield Footer()

    def on_mount(self) -> None:
        """Draw what is known now."""
        self.query_one("#compare-body").focus()
        self._draw()

    def show_view(self, view: DashView) -> None:
        """Redraw when any target's figures changed."""
        self.show_status(view)
        panel = self.query_one("#compare", Drawing)
        snap = view.snap
        if snap is None:
            panel.show(lambda w, h: Text("reading the database…", style="dim"), ("loading",))
            return
        targets = [
            r.summary
            for r in build_rows(snap.targets, view.sort, view.filter_text)
            if r.summary is not None
        ]
        styles = {st: view.style(st) for st in State}
        window = snap.window_s
        key = (tuple(fingerprint(s) for s in targets), window)
        panel.show(lambda w, h: panels.compare_text(targets, window, w, styles), key)


class IncidentsScreen(_SubScreen):
    """Open and recent incidents across targets, open outages first, then newest first;
    ``f`` shows one severity only (down, degraded)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *keys.FIRST,
        Binding("escape,backspace", "back", "back", tooltip="Back to the overview"),
        Binding("f", "severity", "severity", tooltip="Show all, down only, or degraded only"),
        *keys.LAST,
    ]
    """Back, the severity filter, then the common keys."""

    severity: var[str] = var("all")
    """The severity shown (:data:`tui.incident_list.SEVERITIES`)."""

    def action_severity(self) -> None:
        """Show the next severity: all, down only, degraded only."""
        ids = [sid for sid, _ in SEVERITIES]
        self.severity = ids[(ids.index(self.severity) + 1) % len(ids)]

    def watch_severity(self) -> None:
        """Redraw with the new filter."""
        self._draw()

    def compose(self) -> ComposeResult:
        """Status, the incident list, the footer."""
        yield Drawing(id="status")
        with VerticalScroll(id="incidents-body"):
            yield Drawing(id="incidents-all")
        yield Footer()

    def on_mount(self) -> None:
        """Draw what is known now."""
        self.query_one("#incidents-body").focus()
        self._draw()

    def show_view(self, view: DashView) -> None:
        """Redraw when incidents changed (and once a minute while one is open)."""
        self.show_status(view)
        snap = view.snap
        panel = self.query_one("#incidents-all", Drawing)
        if snap is None:
            panel.show(lambda w, h: Text("reading the database…", style="dim"), ("loading",))
            return
        incidents, window, now = snap.incidents, snap.window_s, snap.taken_at
        open_minute = int(now.timestamp() // 60) if any(i.open for i in incidents) else 0
        key = (
            tuple((i.id, i.ended_at, i.failures) for i in incidents),
            window,
            open_minute,
            snap.notifications,
            self.severity,
        )
        severity = self.severity
        panel.show(
            lambda w, h: (
                panels.notifications_line(snap, w)
                + Text("\n")
                + panels.incidents_text(incidents, now, window, w, severity)
            ),
            key,
        )


class CostScreen(_SubScreen):
    """Feature projections on every target (cheapest and fastest marked) and what probing
    itself costs, from :mod:`tui.cost_panel` (the same tables ``inferwatch cost`` prints)."""

    def __init__(self) -> None:
        super().__init__()
        self._cost_key: tuple[int, float] | None = None

    def compose(self) -> ComposeResult:
        """Status, the cost tables (they scroll both ways rather than wrap), the footer."""
        yield Drawing(id="status")
        with ScrollableContainer(id="cost-body"):
            yield Static(id="cost")
        yield Footer()

    def on_mount(self) -> None:
        """Draw what is known now; the reports arrive with the next refresh."""
        self.query_one("#cost-body").focus()
        self._draw()

    def show_view(self, view: DashView) -> None:
        """Redraw when new reports arrived."""
        self.show_status(view)
        panel = self.query_one("#cost", Static)
        cost, window_s = view.cost, view.status.window_s
        key = (id(cost), window_s)
        if self._cost_key == key:
            return
        self._cost_key = key
        if cost is None or cost.window_s != window_s:
            panel.update(Text("reading costs…", style="dim"))
            return
        from rich.measure import Measurement

        from tui.cost_panel import render_cost_panel

        tables = render_cost_panel(cost.projections, cost.monitoring, cost.fallbacks)
        # At their natural width the tables scroll sideways instead of wrapping cells.
        console = self.app.console
        natural = Measurement.get(console, console.options.update_width(1000), tables)
        panel.styles.width = max(natural.maximum, 20)
        panel.update(tables)


class HelpScreen(ModalScreen[None]):
    """Every key of the dashboard, generated from the bindings; esc, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q,f1", "dismiss", "close"),
    ]
    """Keys that close the help."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 96%; height: auto; max-height: 96%;
                                  padding: 0 2; border: round $primary; background: $surface; }
    HelpScreen Static { width: 100%; }
    """
    """A centred box; its text wraps to the box's width (never clipped at 80 columns)."""

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        """The key list (descriptions wrap under themselves) and the state legend."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(justify="right", style="bold", no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
        for key, description in self._keys:
            grid.add_row(key, description)
        states = "  ".join(fmt.STATE_LABELS[st] for st in fmt.SUMMARY_ORDER)
        legend = Text(
            f"States: {states}.\n"
            "A failing target is degraded from its first failure, down after the configured "
            "streak (3 by default), up again after 2 successes. “⧗ probing 12s”: a probe is "
            "running and nothing newer is known; “? stale”: the monitor is not probing it.\n"
            "TTFT in ms over the window, successful probes only; failures count in err. "
            "uptime: available time over the observed time; seen: the share of the window "
            "observed. In a group, ◆ (├◆, └◆) marks the member to use right now.\n"
            "p/r act on the selected target (P/R on all); the status line shows "
            "“⧗ … sent” until the prober takes the command, then “✔ … done”.",
            style="dim",
        )
        with VerticalScroll():
            yield Static(Text("inferwatch keys", style="bold"))
            yield Static(grid)
            yield Static(Text("\n").append_text(legend))


class TooSmallScreen(ModalScreen[None]):
    """Shown instead of the dashboard below the minimum size; goes away when it is resized."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "app.quit", "quit")]
    """Still quits on q."""

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen > Static { width: 100%; height: auto; text-align: center; }
    """
    """Centred message on a plain background."""

    def compose(self) -> ComposeResult:
        """The message."""
        yield Static(id="too-small")

    def set_size(self, width: int, height: int, min_width: int, min_height: int) -> None:
        """Say the current and the needed size."""
        self.query_one("#too-small", Static).update(
            f"Terminal too small: {width}x{height}\n"
            f"inferwatch needs at least {min_width}x{min_height}.\n"
            "Enlarge the window or pane. q quits."
        )

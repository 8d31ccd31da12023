"""The Textual dashboard: one row per target, a detail panel for the selected one.

It never measures anything: it reads the database the prober writes (in a thread worker, on a
re-armed timer, at most once a second) and sends commands back through it. Rendering on this
loop therefore cannot disturb a measured TTFT (tui-style.md §2.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Sparkline, Static
from textual.worker import Worker, WorkerState

from store import control
from store.db import open_db
from store.health import State
from store.queries import Snapshot, SnapshotReader, TargetSummary
from tui import format as fmt
from tui.charts import histogram, sparkline

#: Dashboard windows cycled by ``w``, in seconds.
WINDOWS_S: tuple[float, ...] = (900.0, 3600.0, 86400.0, 7 * 86400.0)
#: Below this size the dashboard shows a "terminal too small" message instead.
MIN_WIDTH, MIN_HEIGHT = 60, 15
#: A heartbeat older than this means the prober is not running.
PROBER_DEAD_AFTER_S = 10.0


@dataclass(frozen=True, slots=True)
class Column:
    """A table column. Lower ``priority`` survives narrower terminals."""

    key: str
    label: str
    width: int
    priority: int
    right: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("state", "state", 17, 0, right=False),
    Column("target", "target", 15, 0, right=False),
    Column("p50", "P50 ms", 7, 0),
    Column("p99", "P99 ms", 7, 0),
    Column("tps", "tok/s", 6, 1),
    Column("err", "err", 5, 1),
    Column("cost", "$/req", 11, 1),
    Column("age", "age", 5, 2),
    Column("p95", "P95 ms", 7, 3),
    Column("last", "last ms", 8, 3),
    Column("trend", " TTFT trend", 18, 4, right=False),
    Column("cache", "cache", 6, 5),
    Column("model", " model", 20, 6, right=False),
)
"""Widths include a one-cell gap (the table has no cell padding, to fit 80 columns)."""


def visible_columns(width: int) -> tuple[Column, ...]:
    """The columns that fit in ``width`` cells, dropping the highest priority numbers first."""
    available = width - 1
    chosen: set[str] = set()
    used = 0
    for col in sorted(COLUMNS, key=lambda c: c.priority):
        if used + col.width > available and col.priority > 0:
            break
        chosen.add(col.key)
        used += col.width
    return tuple(c for c in COLUMNS if c.key in chosen)


class SnapshotReady(Message):
    """A refresh finished reading the database. Newer snapshots replace queued older ones."""

    def __init__(self, snap: Snapshot, done_commands: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.snap = snap
        self.done_commands = done_commands

    def can_replace(self, message: Message) -> bool:
        """Coalesce: only the newest snapshot needs drawing."""
        return isinstance(message, SnapshotReady)


class HelpScreen(ModalScreen[None]):
    """Lists every key of the dashboard; any of esc, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 90%; padding: 1 2; border: round $primary;
                          background: $surface; }
    """

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = bindings

    def compose(self) -> ComposeResult:
        lines = Text("inferwatch keys\n\n", style="bold")
        for key, description in self._keys:
            lines.append(f"{key:>10}  ", style="bold")
            lines.append(description + "\n")
        lines.append(
            "\nState: ✔ up  ▲ degraded  ✖ down  ? stale  … no data  ○ not configured  ‖ paused\n"
            "Latency columns are TTFT in ms over the window, successful probes only.",
            style="dim",
        )
        yield Static(lines)


class InferwatchApp(App[None]):
    """The live dashboard over an inferwatch database.

    Args:
        db_path: the database the prober writes.
        window_s: initial window of the figures, seconds.
        refresh_s: seconds between refreshes (at least 1).
        source_label: where the targets come from (config path or "demo"), shown in the status.
    """

    CSS_PATH = "app.tcss"
    TITLE = "inferwatch"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "keys"),
        Binding("p", "toggle_pause", "pause/resume"),
        Binding("r", "probe_now", "probe now"),
        Binding("w", "cycle_window", "window"),
    ]

    def __init__(
        self,
        db_path: Path,
        window_s: float = 3600.0,
        refresh_s: float = 1.0,
        source_label: str = "",
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.window_s = window_s
        self.refresh_s = max(1.0, refresh_s)
        self.source_label = source_label
        self.snap: Snapshot | None = None
        self._reader = SnapshotReader(db_path)
        self._cells: dict[tuple[str, str], str] = {}
        self._state_styles: dict[State, str] = {}
        self._styles_theme: str | None = None
        self._shown: dict[str, object] = {}
        self._columns: tuple[Column, ...] = ()
        self._row_names: list[str] = []
        self._pending: list[tuple[int, str]] = []  # (command id, what it does)
        self.animation_level = "none"

    def compose(self) -> ComposeResult:
        yield Static("inferwatch · starting…", id="status")
        table: DataTable[Text] = DataTable(
            id="targets", cursor_type="row", zebra_stripes=False, cell_padding=0
        )
        yield table
        with_detail = Static(id="detail-text")
        from textual.containers import Vertical

        with Vertical(id="detail"):
            yield with_detail
            yield Static(id="histogram")
            yield Sparkline([], id="trend", summary_function=max)
        yield Static(id="too-small")
        yield Footer()

    def on_unmount(self) -> None:
        self._reader.close()

    def on_mount(self) -> None:
        self._apply_size()
        self._refresh_now()
        if not self.is_headless:
            self.set_interval(5.0, self._watch_terminal)
            # A closed terminal or tmux pane sends SIGHUP: exit cleanly (temp files, prober).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)

    # ---- refresh cycle -------------------------------------------------------------------

    def _refresh_now(self) -> None:
        self.load_snapshot(self.window_s)

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def load_snapshot(self, window_s: float) -> None:
        """Read the database off the UI thread and post the result."""
        snap = self._reader.read(window_s)
        pending = [cid for cid, _ in list(self._pending)]
        done: set[int] = set()
        if pending:
            db = open_db(self.db_path, migrate=False)
            try:
                done = {cid for cid in pending if control.command_done(db, cid)}
            finally:
                db.close()
        self.post_message(SnapshotReady(snap, frozenset(done)))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "refresh" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            if event.state == WorkerState.ERROR:
                self.query_one("#status", Static).update(
                    f"inferwatch · cannot read {self.db_path}: {worker.error}"
                )
            # Re-arm only after the previous read finished: refreshes never overlap.
            self.set_timer(self.refresh_s, self._refresh_now)
        elif worker.group == "command" and event.state == WorkerState.ERROR:
            self.notify(f"command failed: {worker.error}", severity="error")

    @on(SnapshotReady)
    def _show(self, message: SnapshotReady) -> None:
        if message.snap.window_s != self.window_s:
            return  # a read started before the window changed; a fresh one is on its way
        self.snap = message.snap
        if message.done_commands:
            self._pending = [(c, w) for c, w in self._pending if c not in message.done_commands]
        self._update_status()
        self._update_table()
        self._update_detail()

    # ---- drawing -------------------------------------------------------------------------

    def _update_status(self) -> None:
        snap = self.snap
        status = self.query_one("#status", Static)
        if snap is None:
            return
        parts = [f"inferwatch {self.source_label}".strip(), f"window {fmt.window(snap.window_s)}"]
        blind = False
        if snap.prober is None:
            parts.append("prober: never ran on this database")
            blind = True
        elif snap.prober_age_s is not None and snap.prober_age_s > PROBER_DEAD_AFTER_S:
            parts.append(
                f"✖ prober NOT RUNNING (last seen {fmt.age(snap.prober_age_s)} ago): "
                "monitor blind, figures are stale"
            )
            blind = True
        else:
            parts.append("‖ PAUSED" if snap.prober.paused else "● probing")
        parts.append(f"{snap.probes_last_minute}/min")
        parts.append(f"db {snap.db_bytes / 1e6:.1f} MB")
        if self._pending:
            parts.append("waiting for prober: " + ", ".join(w for _, w in self._pending))
        self._set(status, Text(" · ".join(parts)))
        status.set_class(blind, "blind")

    def _cell(self, col: Column, s: TargetSummary) -> Text:
        verdict = s.verdict
        state = verdict.state if verdict else State.NO_DATA
        if col.key == "state":
            style = self._style_for(state)
            return Text(" " + fmt.STATE_LABELS[state], style=style)
        values = {
            "target": " " + s.name,
            "p50": fmt.ms(s.ttft_p50_ms),
            "p95": fmt.ms(s.ttft_p95_ms),
            "p99": fmt.ms(s.ttft_p99_ms),
            "last": fmt.ms(s.last_ttft_ms)
            if s.last_status == "ok"
            else ("fail" if s.last_status else "–"),
            "tps": fmt.tps(s.decode_tps_p50),
            "err": fmt.pct(s.error_rate),
            "cost": fmt.usd(s.cost_per_request_usd) if s.count else "–",
            "age": fmt.age(s.last_age_s),
            "trend": " " + sparkline(s.ttft_series_ms, col.width - 1),
            "cache": fmt.pct(s.cache_hit_share),
            "model": " " + s.model,
        }
        return Text(values[col.key], justify="right" if col.right else "left")

    def _style_for(self, state: State) -> str:
        # get_css_variables() regenerates the whole colour system: once per theme, not per cell.
        if self._styles_theme != self.theme:
            variables = self.get_css_variables()
            self._state_styles = {
                st: f"bold {variables[v.lstrip('$')]}" if v.lstrip("$") in variables else "bold"
                for st, v in fmt.STATE_STYLES.items()
            }
            self._styles_theme = self.theme
        return self._state_styles[state]

    def _ordered(self, targets: list[TargetSummary]) -> list[TargetSummary]:
        # Group members sit together (primary above its fallbacks), in config order.
        first_index: dict[str, int] = {}
        for i, t in enumerate(targets):
            first_index.setdefault(t.group_name or t.name, i)
        return sorted(
            targets, key=lambda t: (first_index[t.group_name or t.name], targets.index(t))
        )

    def _update_table(self, width: int | None = None) -> None:
        if self.snap is None:
            return
        table = self.query_one("#targets", DataTable)
        targets = self._ordered(self.snap.targets)
        names = [t.name for t in targets]
        columns = visible_columns(width or self.size.width)
        if columns != self._columns or names != self._row_names:
            cursor = table.cursor_row
            table.clear(columns=True)
            for col in columns:
                label = Text(
                    col.label if col.right else " " + col.label.strip(),
                    justify="right" if col.right else "left",
                )
                table.add_column(label, width=col.width, key=col.key)
            for t in targets:
                table.add_row(*(self._cell(c, t) for c in columns), key=t.name)
            self._columns, self._row_names = columns, names
            self._cells.clear()
            if targets:
                table.move_cursor(row=min(cursor, len(targets) - 1))
            return
        for t in targets:
            for col in columns:
                cell = self._cell(col, t)
                key = (t.name, col.key)
                # Only changed cells are touched: each update_cell re-renders the table.
                if self._cells.get(key) != cell.markup:
                    self._cells[key] = cell.markup
                    table.update_cell(t.name, col.key, cell)

    def selected(self) -> TargetSummary | None:
        """The summary of the target under the cursor, if any."""
        if self.snap is None or not self._row_names:
            return None
        table = self.query_one("#targets", DataTable)
        row = min(max(table.cursor_row, 0), len(self._row_names) - 1)
        name = self._row_names[row]
        return next((t for t in self.snap.targets if t.name == name), None)

    def _update_detail(self) -> None:
        text = self.query_one("#detail-text", Static)
        hist = self.query_one("#histogram", Static)
        trend = self.query_one("#trend", Sparkline)
        s = self.selected()
        if s is None:
            self._set(
                text,
                Text(
                    "No targets yet. The prober publishes its targets when it starts;"
                    " try `inferwatch demo`."
                ),
            )
            self._set(hist, Text(""))
            if trend.data:
                trend.data = []
            return
        line1 = Text()
        line1.append(s.name, style="bold")
        line1.append(f" · {s.model} · {s.provider}")
        if s.group_name:
            line1.append(f" · group {s.group_name}")
        line1.append(f" · every {s.interval_s:g}s")
        if s.verdict and s.verdict.reason:
            line1.append(f" · {s.verdict.reason}")
        line2 = Text(
            f"TTFT P50 {fmt.duration(s.ttft_p50_ms)} · P95 {fmt.duration(s.ttft_p95_ms)} · "
            f"P99 {fmt.duration(s.ttft_p99_ms)}   total P50 {fmt.duration(s.total_p50_ms)}   "
            f"decode {fmt.tps(s.decode_tps_p50)} tok/s   {fmt.usd(s.cost_per_request_usd)}/req   "
            f"cache {fmt.pct(s.cache_hit_share)}   "
            f"{s.count} probes, {s.errors} failed in {fmt.window(self.window_s)}"
        )
        body = Text("\n").join([line1, line2])
        if s.last_status and s.last_status != "ok":
            body.append(f"\nlast failure: {s.last_error_kind}: {s.last_error_message or ''}")
        elif s.top_error_kind:
            body.append(f"\nmost frequent failure in window: {s.top_error_kind}")
        self._set(text, body)
        if s.ttft_values_ms:
            title = Text("TTFT distribution (ms), successful probes in window\n", style="dim")
            self._set(hist, title + histogram(s.ttft_values_ms, height=3))
        else:
            self._set(hist, Text("no successful probe in the window yet", style="dim"))
        # Failed probes are left out, never drawn as 0 ms.
        data = [v for v in s.ttft_series_ms if v is not None]
        if data != trend.data:
            trend.data = data

    def _set(self, widget: Static, content: Text) -> None:
        """Update a Static only when its content changed (each update repaints it)."""
        key = widget.id or ""
        if self._shown.get(key) != content.markup:
            self._shown[key] = content.markup
            widget.update(content)

    def _apply_size(self, size: Size | None = None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        self.screen.set_class(small, "too-small")
        self.query_one("#too-small", Static).update(
            f"Terminal too small: {size.width}x{size.height}; "
            f"inferwatch needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\nq quits."
        )

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size)
        self._update_table(event.size.width)

    @on(DataTable.RowHighlighted)
    def _row_changed(self) -> None:
        self._update_detail()

    def _watch_terminal(self) -> None:
        # If the terminal went away (SSH drop without SIGHUP), exit instead of spinning.
        if not sys.stdin or not sys.stdin.isatty():
            self.exit()

    # ---- actions -------------------------------------------------------------------------

    def action_help(self) -> None:
        """Show every key."""
        keys = [
            ("q, ctrl+c", "quit"),
            ("?, f1", "this help"),
            ("p", "pause / resume probing (all targets)"),
            ("r", "probe every target now"),
            ("w", "cycle the window: 15m, 1h, 24h, 7d"),
            ("↑ ↓", "select a target (details below the table)"),
            ("esc", "close this help"),
        ]
        self.push_screen(HelpScreen(keys))

    def action_cycle_window(self) -> None:
        """Switch to the next window length and refresh."""
        later = [w for w in WINDOWS_S if w > self.window_s]
        self.window_s = later[0] if later else WINDOWS_S[0]
        self.notify(f"window {fmt.window(self.window_s)}", timeout=2)
        self.load_snapshot(self.window_s)

    def action_toggle_pause(self) -> None:
        """Ask the prober to pause (or resume) all targets."""
        paused = bool(self.snap and self.snap.prober and self.snap.prober.paused)
        self.send_command("resume" if paused else "pause")

    def action_probe_now(self) -> None:
        """Ask the prober to probe every target now."""
        self.send_command("probe_now")

    @work(thread=True, group="command", exit_on_error=False)
    def send_command(self, command: str, target: str | None = None) -> None:
        """Queue a command for the prober (in a thread: it writes to the database)."""
        db = open_db(self.db_path, migrate=False)
        try:
            command_id = control.send_command(db, command, target)
        finally:
            db.close()
        what = command.replace("_", " ")
        self.call_from_thread(self._pending.append, (command_id, what))
        self.call_from_thread(self.notify, f"{what}: sent to the prober", timeout=2)

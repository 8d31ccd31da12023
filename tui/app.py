"""The Textual dashboard: overview, per-target detail, comparison, incidents.

It never measures anything: it reads the database the prober writes (in a thread worker, on a
re-armed timer, at most once a second, never two reads at once) and sends commands back
through it. Rendering on this loop therefore cannot disturb a measured TTFT
(tui-style.md §2.3). Each read posts one :class:`~tui.messages.SnapshotReady` (newer ones
replace queued older ones) and only the screen on top redraws, only what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import sqlite_utils
from rich.color import Color as RichColor
from rich.color import ColorParseError
from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from probes.config import Config
from probes.timestamps import file_stamp
from store import control
from store.db import SchemaNotReady, open_db, open_reader
from store.health import State
from store.reader import Snapshot, SnapshotReader
from tui import format as fmt
from tui import keys
from tui.messages import CommandSent, CostReady, ExportFinished, ReadFailed, SnapshotReady
from tui.panels import StatusContext
from tui.screens import (
    CostScreen,
    DashScreen,
    DetailScreen,
    HelpScreen,
    OverviewScreen,
    TooSmallScreen,
)
from tui.table import SORTS, build_rows

#: Dashboard windows cycled by ``w``, in seconds.
WINDOWS_S: tuple[float, ...] = (900.0, 3600.0, 86400.0, 7 * 86400.0)
#: Below this size the dashboard shows a "terminal too small" message instead.
MIN_WIDTH, MIN_HEIGHT = 60, 15
#: How long a confirmed command stays in the status line, seconds.
DONE_SHOWN_S = 6.0
#: The cost reports are re-read at most this often while the cost screen is open, seconds.
COST_EVERY_S = 10.0

#: Returns the current UTC time (injected for deterministic tests and screenshots).
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _rich_colour_style(value: str) -> str:
    """``bold <colour>`` for a theme colour; ``bold dim`` when the theme value is not a plain
    colour (``$text-muted`` is ``auto 60%``, a contrast rule Rich cannot parse)."""
    try:
        RichColor.parse(value)
    except ColorParseError:
        return "bold dim"
    return f"bold {value}"


class InferwatchApp(App[None]):
    """The live dashboard over an inferwatch database.

    Args:
        db_path: the database the prober writes.
        window_s: initial window of the figures, seconds.
        refresh_s: seconds between refreshes (at least 1).
        source_label: where the targets come from (config path or "demo"), shown in the status.
        clock: the current UTC time (tests inject a fixed one).
        export_dir: where ``e`` writes its CSV files (default: the working directory).
        config: the prober's config, for the cost screen's feature projections and prices
            (without it the cost screen shows the cost of monitoring only).
    """

    CSS_PATH = "app.tcss"
    TITLE = "inferwatch"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        *keys.FIRST,
        *keys.LAST,
    ]
    """Keys available on every screen; screens repeat them in their footer order."""

    def __init__(
        self,
        db_path: Path,
        window_s: float = 3600.0,
        refresh_s: float = 1.0,
        source_label: str = "",
        *,
        clock: Clock = _utc_now,
        export_dir: Path | None = None,
        config: Config | None = None,
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.window_s = window_s
        self.refresh_s = max(1.0, refresh_s)
        self.source_label = source_label
        self.clock = clock
        self.export_dir = export_dir
        self.config = config
        self.snap: Snapshot | None = None
        self.cost: CostReady | None = None
        self._cost_read: tuple[float, int, float] | None = None  # (window, version, at)
        self.sort = "config"
        self.filter_text = ""
        self._reader = SnapshotReader(db_path)
        self._pending: dict[int, str] = {}
        self._done: list[tuple[float, str]] = []
        self._state_styles: dict[State, str] = {}
        self._styles_theme: str | None = None
        self._refreshing = False
        self._again = False
        self._timer: Timer | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._request: tuple[float, str | None, datetime, bool] | None = None
        self.animation_level = "none"

    def get_default_screen(self) -> Screen[None]:
        """The overview."""
        return OverviewScreen()

    def on_mount(self) -> None:
        """Start the reader, read at once; watch the terminal; apply the size rule."""
        self._check_size(self.size.width, self.size.height)
        self.reader_loop()
        self.request_refresh()
        if not self.is_headless:
            self.set_interval(5.0, self._watch_terminal)
            # A closed terminal or tmux pane sends SIGHUP: exit cleanly (temp files, prober).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)

    def on_unmount(self) -> None:
        """Stop the reader thread (it closes its connection)."""
        self._stopping = True
        self._wake.set()

    # ---- refresh cycle -------------------------------------------------------------------
    #
    # One long-lived thread worker reads; the UI asks for a read by setting ``_wake`` and is
    # answered by one SnapshotReady. A per-refresh worker would cost a thread start and three
    # state-change messages a second: at an idle dashboard that was most of the UI's work.

    def request_refresh(self) -> None:
        """Read now, or right after the read in flight (reads never overlap)."""
        if self._refreshing:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._refreshing = True
        cost = any(isinstance(s, CostScreen) for s in self.screen_stack)
        self._request = (self.window_s, self.detail_target(), self.clock(), cost)
        self._wake.set()

    def detail_target(self) -> str | None:
        """The target whose detail screen is open, if any."""
        for screen in self.screen_stack:
            if isinstance(screen, DetailScreen):
                return screen.target_name
        return None

    @work(thread=True, exclusive=True, group="reader", exit_on_error=False)
    def reader_loop(self) -> None:
        """Answer each read request with one SnapshotReady (a thread: SQLite blocks)."""
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                request = self._request
                if request is None:
                    continue
                try:
                    self.post_message(SnapshotReady(*self.load_snapshot(*request)))
                except Exception as exc:  # shown on screen; the next tick tries again
                    self.post_message(ReadFailed(str(exc)))
        finally:
            self._reader.close()

    def load_snapshot(
        self, window_s: float, detail: str | None, now: datetime, cost: bool = False
    ) -> tuple[Snapshot, frozenset[int]]:
        """Read the database (reader thread): the snapshot and the commands now done."""
        snap = self._reader.read(window_s, now, detail)
        if cost:
            self._read_cost(snap, now)
        pending = list(self._pending)
        done: set[int] = set()
        if pending:
            db = open_db(self.db_path, migrate=False)
            try:
                done = {cid for cid in pending if control.command_done(db, cid)}
            finally:
                db.close()
        return snap, frozenset(done)

    def _read_done(self) -> None:
        """A read finished: re-arm the timer only now, so reads never overlap."""
        self._refreshing = False
        if self._again:
            self._again = False
            self.request_refresh()
        else:
            self._timer = self.set_timer(self.refresh_s, self.request_refresh)

    @on(ReadFailed)
    def _read_failed(self, message: ReadFailed) -> None:
        self.notify(f"cannot read {self.db_path}: {message.error}", severity="error")
        self._read_done()

    def _read_cost(self, snap: Snapshot, now: datetime) -> None:
        """Cost reports for the cost screen (worker thread), when data or window changed."""
        last = self._cost_read
        mono = time.monotonic()
        if (
            last is not None
            and last[0] == snap.window_s
            and (last[1] == snap.version or mono - last[2] < COST_EVERY_S)
        ):
            return
        from store.costs import feature_projections, monitoring_report

        self._cost_read = (snap.window_s, snap.version, mono)
        try:
            db: sqlite_utils.Database | None = open_reader(self.db_path)
        except SchemaNotReady:
            db = None
        try:
            projections = (
                feature_projections(db, self.config, snap.window_s, now)
                if self.config is not None and self.config.features
                else None
            )
            monitoring = monitoring_report(db, snap.window_s, now) if db is not None else None
        finally:
            if db is not None:
                db.close()
        self.post_message(CostReady(snap.window_s, projections, monitoring))

    @on(CostReady)
    def _cost_ready(self, message: CostReady) -> None:
        if message.window_s != self.window_s:
            return
        self.cost = message
        self.redraw()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group in ("command", "export", "reader") and event.state == WorkerState.ERROR:
            self.notify(f"{worker.group} failed: {worker.error}", severity="error")

    @on(SnapshotReady)
    def _show(self, message: SnapshotReady) -> None:
        self._read_done()
        snap = message.snap
        if snap.window_s != self.window_s:
            return  # a read started before the window changed; a fresh one is on its way
        self.snap = snap
        for cid in message.done_commands:
            what = self._pending.pop(cid, None)
            if what is not None:
                self._done.append((time.monotonic(), what))
        cutoff = time.monotonic() - DONE_SHOWN_S
        self._done = [(t, w) for t, w in self._done if t >= cutoff]
        self.redraw()

    def redraw(self) -> None:
        """Hand the newest snapshot to the screen on top (covered screens skip the work)."""
        screen = self.screen
        if isinstance(screen, DashScreen):
            screen.show_snapshot(self.snap)

    # ---- state shared by the screens ------------------------------------------------------

    def status_context(self) -> StatusContext:
        """What the status line needs beside the snapshot."""
        sort_label = "" if self.sort == "config" else dict(SORTS)[self.sort]
        return StatusContext(
            source=self.source_label,
            window_s=self.window_s,
            sort_label=sort_label,
            filter_text=self.filter_text,
            pending=list(self._pending.values()),
            done=[w for _, w in self._done],
        )

    def state_style(self, state: State) -> str:
        """The Rich style of a state word (bold, in its theme colour)."""
        # get_css_variables() regenerates the whole colour system: once per theme, not per cell.
        if self.no_color:
            return "bold"  # Textual greys colours out; grey words are harder to read than bold
        if self._styles_theme != self.theme:
            variables = self.get_css_variables()
            self._state_styles = {
                st: _rich_colour_style(variables.get(v.lstrip("$"), ""))
                for st, v in fmt.STATE_STYLES.items()
            }
            self._styles_theme = self.theme
        return self._state_styles[state]

    def set_filter(self, text: str) -> None:
        """Show only targets matching ``text`` (name, model, provider, group or state)."""
        if text != self.filter_text:
            self.filter_text = text
            self.redraw()

    def cycle_sort(self) -> None:
        """Switch to the next sort order."""
        ids = [s for s, _ in SORTS]
        self.sort = ids[(ids.index(self.sort) + 1) % len(ids)]
        self.notify(f"sort: {dict(SORTS)[self.sort]}", timeout=2)
        self.redraw()

    def open_detail(self, name: str) -> None:
        """Open a target's detail screen and read its detail at once."""
        self.push_screen(DetailScreen(name))
        self.request_refresh()

    def filtered_targets(self) -> list[str]:
        """Names of the targets the overview shows (after the filter)."""
        if self.snap is None:
            return []
        rows = build_rows(self.snap.targets, self.sort, self.filter_text)
        return [r.summary.name for r in rows if r.summary is not None]

    # ---- size and terminal ---------------------------------------------------------------

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        top = self.screen_stack[-1] if self.screen_stack else None
        if small:
            if not isinstance(top, TooSmallScreen):
                screen = TooSmallScreen()
                self.push_screen(screen)
                self.call_after_refresh(screen.set_size, width, height, MIN_WIDTH, MIN_HEIGHT)
            else:
                top.set_size(width, height, MIN_WIDTH, MIN_HEIGHT)
        elif isinstance(top, TooSmallScreen):
            self.pop_screen()

    def on_resize(self, event: events.Resize) -> None:
        """Switch to or from the "terminal too small" screen."""
        self._check_size(event.size.width, event.size.height)

    def _watch_terminal(self) -> None:
        # If the terminal went away (SSH drop without SIGHUP), exit instead of spinning.
        if not sys.stdin or not sys.stdin.isatty():
            self.exit()

    # ---- actions -------------------------------------------------------------------------

    def action_help(self) -> None:
        """Show every key, generated from the bindings the screens use."""
        entries: list[tuple[str, str]] = [("q, ctrl+c", keys.QUIT.tooltip)]
        seen = {"q", "ctrl+c"}
        for bindings in (OverviewScreen.BINDINGS, DetailScreen.BINDINGS):
            for b in bindings:
                if not isinstance(b, Binding) or b.key in seen:
                    continue
                seen.add(b.key)
                names = {"slash": "/", "question_mark": "?", "dollar_sign": "$"}
                shown = ", ".join(names.get(k, k) for k in b.key.split(","))
                entries.append((shown, b.tooltip or b.description))
        entries.insert(2, ("↑ ↓ j k", "select a target (PgUp/PgDn, Home/End, g/G too)"))
        self.push_screen(HelpScreen(entries))

    def action_cycle_window(self) -> None:
        """Switch to the next window length and read it."""
        later = [w for w in WINDOWS_S if w > self.window_s]
        self.window_s = later[0] if later else WINDOWS_S[0]
        self.notify(f"window {fmt.window(self.window_s)}", timeout=2)
        self.redraw()
        self.request_refresh()

    def _target(self) -> str | None:
        screen = self.screen
        return screen.current_target() if isinstance(screen, DashScreen) else None

    def _summary_paused(self, name: str) -> bool:
        if self.snap is None:
            return False
        s = next((t for t in self.snap.targets if t.name == name), None)
        return bool(s and s.paused)

    def action_pause(self) -> None:
        """Pause (or resume) probing of the selected target."""
        name = self._target()
        if name is None:
            self.notify("no target selected: P pauses or resumes every target", timeout=3)
            return
        command = "resume" if self._summary_paused(name) else "pause"
        self.send_command(command, name)

    def action_pause_all(self) -> None:
        """Pause (or resume) probing of every target."""
        paused = bool(self.snap and self.snap.prober and self.snap.prober.paused)
        self.send_command("resume" if paused else "pause")

    def action_probe_now(self) -> None:
        """Probe the selected target now."""
        name = self._target()
        if name is None:
            self.notify("no target selected: R probes every target", timeout=3)
            return
        self.send_command("probe_now", name)

    def action_probe_all(self) -> None:
        """Probe every target now."""
        self.send_command("probe_now")

    @work(thread=True, group="command", exit_on_error=False)
    def send_command(self, command: str, target: str | None = None) -> None:
        """Queue a command for the prober (in a thread: it writes to the database)."""
        db = open_db(self.db_path, migrate=False)
        try:
            command_id = control.send_command(db, command, target)
        finally:
            db.close()
        what = command.replace("_", " ") + (f" {target}" if target else " all")
        self.post_message(CommandSent(command_id, what))

    @on(CommandSent)
    def _command_sent(self, message: CommandSent) -> None:
        self._pending[message.command_id] = message.what
        self.redraw()
        self.request_refresh()

    def action_export(self) -> None:
        """Export the window's probes (the detail's target, or the filtered targets)."""
        name = self._target() if isinstance(self.screen, DetailScreen) else None
        targets = [name] if name else (self.filtered_targets() if self.filter_text else [])
        stamp = file_stamp(self.clock())
        label = name or "all"
        directory = self.export_dir or Path.cwd()
        path = directory / f"inferwatch-{label}-{fmt.window(self.window_s)}-{stamp}.csv"
        self.notify(f"exporting to {path}…", timeout=2)
        self.export(path, self.window_s, targets)

    @work(thread=True, group="export", exit_on_error=False)
    def export(self, path: Path, window_s: float, targets: list[str]) -> None:
        """Write the export in a thread and report back."""
        from store.export import export_window

        try:
            rows = export_window(self.db_path, path, window_s, targets, now=self.clock())
        except Exception as exc:  # reported on screen, never crashes the dashboard
            self.post_message(ExportFinished(path, 0, str(exc)))
            return
        self.post_message(ExportFinished(path, rows))

    @on(ExportFinished)
    def _export_finished(self, message: ExportFinished) -> None:
        if message.error:
            self.notify(f"export failed: {message.error}", severity="error", timeout=8)
        else:
            self.notify(f"exported {message.rows} probes to {message.path}", timeout=8)

"""The Textual dashboard: overview, per-target detail, comparison, incidents, cost.

It never measures anything: the prober runs in its own process, so rendering never lands
inside a measured TTFT (docs/architecture.md, "Processes"). The app's state is reactive:
window, sort and filter here, the selection in the overview's table, and the newest snapshot,
cost reports and commands in flight; whenever one changes the app publishes a new
:class:`~tui.view.DashView`, which every dashboard screen receives through data binding and
draws when it is on top. Screens post messages up and never call the app.

Every database access goes through one reader thread (:class:`tui.reader.DatabaseReader`)
with the app's only connection: the app asks for a read on a timer re-armed after each
answer (at most once a second), and at once after a key that changes what is shown; bursts
are coalesced and reads never overlap. A CSV export (``e``) streams from its own connection in
its own worker, so a long export never holds up the refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.color import Color as RichColor
from rich.color import ColorParseError
from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from probes.text import printable
from probes.timestamps import file_stamp, utc_now
from store.health import State
from tui import format as fmt
from tui import keys
from tui.dbwatch import WATCH_EVERY_S, Files, FilesChanged, FileWatch
from tui.messages import (
    CommandFailed,
    CommandSent,
    CostReady,
    ExportFinished,
    FilterChanged,
    Prepared,
    PrepareFailed,
    PreviewReady,
    ReadFailed,
    SnapshotReady,
)
from tui.panels import PROBER_DEAD_AFTER_S, StatusContext
from tui.reader import (
    DatabaseReader,
    PreviewRequest,
    ReadRequest,
    Reopen,
    SendCommand,
    SnapshotSource,
)
from tui.screens import (
    CompareScreen,
    CostScreen,
    DashScreen,
    DetailScreen,
    HelpScreen,
    IncidentsScreen,
    OverviewScreen,
    TooSmallScreen,
)
from tui.table import SORTS, TargetTable, build_rows
from tui.view import DashView

if TYPE_CHECKING:
    # Loaded by the reader's thread after the first paint (store/preview.py says why).
    from probes.config import Config
    from store.reader import Snapshot
    from store.summary import TargetSummary

#: Dashboard windows cycled by ``w``, in seconds.
WINDOWS_S: tuple[float, ...] = (900.0, 3600.0, 86400.0, 7 * 86400.0)
#: Below this size the dashboard shows a "terminal too small" message instead.
MIN_WIDTH, MIN_HEIGHT = 60, 15
#: How long a confirmed command stays in the status line, seconds.
DONE_SHOWN_S = 6.0
#: After SIGHUP or SIGTERM the process ends within this many seconds, whatever Textual's
#: shutdown is doing (the terminal may be gone; nobody is left to see a hang).
HARD_EXIT_S = 5.0
#: A prober lock free this long, seconds, with no heartbeat in that time: the prober is dead
#: (a starting prober takes its lock within about a second).
LOCK_FREE_DEAD_S = 3.0

#: The collector's thresholds once the first snapshot is drawn (:meth:`InferwatchApp.settle_gc`).
GC_THRESHOLDS = (20_000, 10, 10)

#: Returns the current UTC time (injected for deterministic tests and screenshots).
Clock = Callable[[], datetime]


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
        reader: where snapshots come from instead of the database (``inferwatch view
            --prometheus``: :class:`tui.prometheus_source.PrometheusSource`); such a source
            has no connection, so commands answer "view only".
        prepare: work that the first paint does not wait for, run on the reader's thread
            before its first read (creating the database, starting the prober, loading the
            config): a config it returns replaces ``config`` and its dashboard window and
            refresh apply; if it raises, the app exits and keeps the error in
            :attr:`prepare_error`.
        on_exit_signal: called at once (on the UI loop, must not block) when SIGHUP or
            SIGTERM ends the dashboard: the command line stops the prober it started there,
            before Textual's shutdown.

    The first paint draws the published targets (:mod:`store.preview`), then the app asks
    for the first snapshot, whose figures fill them in.
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

    # ``var``: reactive without Textual's automatic repaint of the whole app; the watchers
    # publish a view and each screen repaints only the panels whose content changed.
    window_s: var[float] = var(3600.0, init=False)
    """The window of every figure, seconds (``w`` cycles :data:`WINDOWS_S`)."""
    sort: var[str] = var("config", init=False)
    """The overview's sort order (an id of ``tui.table.SORTS``)."""
    filter_text: var[str] = var("", init=False)
    """The overview's filter ("" for none)."""
    snap: var[Snapshot | None] = var(None, init=False, always_update=True)
    """The newest snapshot, None before the first read."""
    preview: var[tuple[TargetSummary, ...]] = var((), init=False)
    """The published targets without figures, drawn until the first snapshot lands."""
    cost: var[CostReady | None] = var(None, init=False, always_update=True)
    """The newest cost reports (read only while the cost screen is open)."""
    pending: var[tuple[tuple[int, str], ...]] = var((), init=False)
    """Commands sent and not yet taken by the prober: (id, human text)."""
    done: var[tuple[tuple[float, str], ...]] = var((), init=False)
    """Commands the prober took recently: (monotonic time, human text)."""
    view: var[DashView | None] = var(None, init=False, always_update=True)
    """What the screens draw, published whenever any of the above changes."""

    def __init__(
        self,
        db_path: Path,
        window_s: float = 3600.0,
        refresh_s: float = 1.0,
        source_label: str = "",
        *,
        clock: Clock = utc_now,
        export_dir: Path | None = None,
        config: Config | None = None,
        reader: SnapshotSource | None = None,
        prepare: Callable[[], Config | None] | None = None,
        on_exit_signal: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.set_reactive(InferwatchApp.window_s, window_s)
        self.db_path = db_path
        self.refresh_s = max(1.0, refresh_s)
        self.source_label = printable(source_label)
        self.clock = clock
        self.export_dir = export_dir
        self.reader = DatabaseReader(
            db_path, self.post_message, clock, config, source=reader, prepare=prepare
        )
        """The one reader thread; every database access goes through it."""
        self._config = config
        self.prepare_error: Exception | None = None
        """What the ``prepare`` hook raised (the app then exited), None otherwise."""
        self._bell_seen: int | None = None
        self._state_styles: dict[State, str] = {}
        self._styles_theme: str | None = None
        self._timer: Timer | None = None
        self.animation_level = "none"
        self._on_exit_signal = on_exit_signal
        self._hard_exit: threading.Timer | None = None
        self._watch_files = reader is None
        self._watch_stop = threading.Event()
        self._files: Files | None = None
        self._lock_free_since: float | None = None
        self._db_notice = ""

    def get_default_screen(self) -> Screen[None]:
        """The overview."""
        return OverviewScreen().data_bind(InferwatchApp.view)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this platform; on Linux and macOS one that ends when its
        terminal is gone (``tui.driver`` says how Textual's own can hang)."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver":
            from tui.driver import ResilientLinuxDriver

            if driver.__name__ == "LinuxDriver":
                return ResilientLinuxDriver
        return driver

    def on_mount(self) -> None:
        """Start the reader and ask for the published targets (the first snapshot is asked
        for once they are drawn); watch the terminal; apply the size rule."""
        self._publish()
        self._check_size(self.size.width, self.size.height)
        self._run_reader()
        self.reader.submit(PreviewRequest())
        self._warn(self._config)
        if self._watch_files:
            self._run_watch()
        if not self.is_headless:
            self.set_interval(5.0, self._watch_terminal)
            # A closed terminal or tmux pane sends SIGHUP, a service manager SIGTERM: end
            # the prober we started and exit, within seconds whatever happens.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.end_on_signal, sig)

    def end_on_signal(self, sig: int) -> None:
        """SIGHUP or SIGTERM: stop our prober at once, exit, and make sure the process ends
        within :data:`HARD_EXIT_S` even if Textual's shutdown hangs on a dead terminal."""
        if self._on_exit_signal is not None:
            with contextlib.suppress(Exception):
                self._on_exit_signal()
        if not self.is_headless and self._hard_exit is None:
            self._hard_exit = threading.Timer(HARD_EXIT_S, os._exit, (128 + sig,))
            self._hard_exit.daemon = True
            self._hard_exit.start()
        self.exit()

    def disarm(self) -> None:
        """Cancel the hard deadline of :meth:`end_on_signal` (call it once :meth:`run` has
        returned: the shutdown did not hang)."""
        if self._hard_exit is not None:
            self._hard_exit.cancel()

    def on_unmount(self) -> None:
        """Stop the reader and watcher threads (the reader closes its connection)."""
        self._watch_stop.set()
        self.reader.stop()

    # ---- state ---------------------------------------------------------------------------

    def watch_window_s(self, window_s: float) -> None:
        """A new window: say so, redraw (the status line shows it) and read it."""
        self.notify(f"window {fmt.window(window_s)}", timeout=2)
        self._publish()
        self.request_refresh()

    def watch_sort(self, sort: str) -> None:
        """A new sort order: say so and redraw."""
        self.notify(f"sort: {dict(SORTS)[sort]}", timeout=2)
        self._publish()

    def watch_filter_text(self) -> None:
        """A new filter: redraw."""
        self._publish()

    def watch_snap(self) -> None:
        """A new snapshot: redraw."""
        self._publish()

    def watch_preview(self) -> None:
        """The published targets: draw them."""
        self._publish()

    def watch_cost(self) -> None:
        """New cost reports: redraw."""
        self._publish()

    def watch_pending(self) -> None:
        """Commands sent or taken: redraw the status line."""
        self._publish()

    def watch_done(self) -> None:
        """Commands confirmed or expired: redraw the status line."""
        self._publish()

    def _publish(self) -> None:
        sort_label = "" if self.sort == "config" else dict(SORTS)[self.sort]
        self.view = DashView(
            snap=self.snap,
            sort=self.sort,
            filter_text=self.filter_text,
            status=StatusContext(
                source=self.source_label,
                window_s=self.window_s,
                sort_label=sort_label,
                filter_text=self.filter_text,
                pending=[what for _, what in self.pending],
                done=[what for _, what in self.done],
                notice=self._notice(),
            ),
            styles=self._styles(),
            cost=self.cost,
            preview=self.preview,
        )

    def _styles(self) -> dict[State, str]:
        """The Rich style of each state word (bold, in its theme colour)."""
        if self.no_color:
            # Textual greys colours out; grey words are harder to read than bold.
            return dict.fromkeys(State, "bold")
        # get_css_variables() regenerates the whole colour system: once per theme, not per cell.
        if self._styles_theme != self.theme:
            variables = self.get_css_variables()
            self._state_styles = {
                st: _rich_colour_style(variables.get(v.lstrip("$"), ""))
                for st, v in fmt.STATE_STYLES.items()
            }
            self._styles_theme = self.theme
        return self._state_styles

    # ---- files: the database and the prober -------------------------------------------------

    def _run_watch(self) -> None:
        """Start the watcher: a daemon thread, not a Textual worker (it lives as long as the
        app; it must never hold up the app's exit, nor tests waiting for workers)."""
        threading.Thread(target=self._watch, name="inferwatch-watch", daemon=True).start()

    def _watch(self) -> None:
        """Look at the database file and the prober lock once a second (thread: file system
        calls may block); post what changed."""
        watch = FileWatch(self.db_path)
        last: Files | None = None
        while not self._watch_stop.is_set():
            files: Files | None
            try:
                files = watch.look()
            except Exception as exc:  # never let a look take the dashboard down
                files = last
                self.log.warning(f"file watch: {exc!r}")
            if files is not None and files != last:
                self.post_message(FilesChanged(files))
                last = files
            self._watch_stop.wait(WATCH_EVERY_S)

    @on(FilesChanged)
    def _files_changed(self, message: FilesChanged) -> None:
        files = message.files
        stamp = self.clock().strftime("%H:%M:%SZ")
        if files.db == "deleted":
            self._db_notice = f"database deleted at {stamp}: nothing is stored"
        elif files.db == "replaced":
            self._db_notice = f"database replaced at {stamp}: reading the new file"
            self.reader.submit(Reopen())
            self.request_refresh()
        elif self._db_notice.startswith("database deleted"):
            self._db_notice = ""
        if files.prober_alive:
            self._lock_free_since = None
        elif self._lock_free_since is None:
            self._lock_free_since = time.monotonic()
        self._files = files
        self._publish()

    def prober_dead(self) -> bool:
        """True when no prober is probing into this database: its heartbeat is older than
        ``PROBER_DEAD_AFTER_S``, or the prober lock has been free for
        :data:`LOCK_FREE_DEAD_S` and no heartbeat came in that time (a prober on another
        host, whose lock this machine cannot see, still heartbeats). False before the first
        snapshot (a prober may be starting)."""
        snap = self.snap
        if not self._watch_files or snap is None:
            return False
        age = snap.prober_age_s if snap.prober is not None else None
        if age is not None and age > PROBER_DEAD_AFTER_S:
            return True
        free = self._lock_free_since
        if free is None or time.monotonic() - free < LOCK_FREE_DEAD_S:
            return False
        return age is None or age > LOCK_FREE_DEAD_S

    def restart_hint(self) -> str:
        """Where the dead prober's log is and how to start it again."""
        info = self._files.prober if self._files is not None else None
        parts = []
        if info is not None and info.log:
            parts.append(f"its log: {info.log}")
        restart = info.restart if info is not None and info.restart else ""
        restart = restart or f"inferwatch run --headless --db {self.db_path}"
        parts.append(f"restart: {restart} (or `inferwatch`)")
        return "; ".join(parts)

    def _notice(self) -> str:
        if self._db_notice:
            return self._db_notice
        if not self.prober_dead():
            return ""
        snap = self.snap
        age = snap.prober_age_s if snap is not None and snap.prober is not None else None
        if age is not None and age > PROBER_DEAD_AFTER_S:
            return self.restart_hint()  # the line says "prober not running since" already
        return f"prober not running: {self.restart_hint()}"

    # ---- reading -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="reader", exit_on_error=False)
    def _run_reader(self) -> None:
        """The reader thread (SQLite blocks; it never runs on the UI loop)."""
        self.reader.run()

    def request_refresh(self) -> None:
        """Read now (right after the read in flight, if any; requests pile into one)."""
        screens = self.screen_stack
        detail = next((s.target_name for s in screens if isinstance(s, DetailScreen)), None)
        cost = any(isinstance(s, CostScreen) for s in screens)
        self.reader.submit(ReadRequest(self.window_s, detail, cost))

    def _answered(self) -> None:
        """A read finished: the next one in ``refresh_s``. One timer at most: a read asked for
        by a key replaces the one that was due."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.refresh_s, self.request_refresh)

    @on(PreviewReady)
    def _show_preview(self, message: PreviewReady) -> None:
        """Draw the targets, then read the first snapshot (after the paint: its imports and
        queries would otherwise share the interpreter with it)."""
        if self.snap is None:
            self.preview = message.targets
        self.call_after_refresh(self.request_refresh)

    @on(Prepared)
    def _prepared(self, message: Prepared) -> None:
        config = message.config
        if config is None:
            return
        self._warn(config)
        self.refresh_s = max(1.0, config.dashboard.refresh_s)
        if config.dashboard.window_s != self.window_s:
            self.set_reactive(InferwatchApp.window_s, config.dashboard.window_s)
            self._publish()
            self.request_refresh()

    @on(PrepareFailed)
    def _prepare_failed(self, message: PrepareFailed) -> None:
        self.prepare_error = message.error
        self.exit()

    @on(SnapshotReady)
    def _show(self, message: SnapshotReady) -> None:
        self._answered()
        snap = message.snap
        now = time.monotonic()
        taken = {cid: what for cid, what in self.pending if cid in message.done_commands}
        if taken:
            self.pending = tuple((c, w) for c, w in self.pending if c not in taken)
        cutoff = now - DONE_SHOWN_S
        self.done = tuple((t, w) for t, w in self.done if t >= cutoff) + tuple(
            (now, what) for what in taken.values()
        )
        self._ring(snap)
        if self.snap is None and not self.is_headless:
            self.call_after_refresh(self.settle_gc)
        if snap.window_s == self.window_s:  # else: read before the window changed; one follows
            self.snap = snap

    def settle_gc(self) -> None:
        """Keep the collector's work to what a refresh leaves behind (called once the first
        snapshot is drawn; not in headless runs, where tests share the process).

        Everything alive then (modules, widgets, styles: about 100,000 objects) lives as long
        as the dashboard: ``gc.freeze()`` takes it out of every collection. A refresh makes a
        few thousand short-lived objects, nearly all freed by reference counting; with the
        default thresholds they still set off a young collection several times a second
        (about 1 ms of CPU a second at 200 targets), with a larger first generation none runs
        for minutes.
        """
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    def _ring(self, snap: Snapshot) -> None:
        """The terminal bell for each new ``bell`` channel notification (docs/alerts.md)."""
        newest = snap.notifications.newest_bell_id if snap.notifications else 0
        if self._bell_seen is not None and newest > self._bell_seen:
            self.bell()
        self._bell_seen = newest

    @on(ReadFailed)
    def _read_failed(self, message: ReadFailed) -> None:
        self.say(f"cannot read {self.db_path}: {message.error}", severity="error")
        self._answered()

    @on(CostReady)
    def _cost_ready(self, message: CostReady) -> None:
        if message.window_s == self.window_s:
            self.cost = message

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group in ("export", "reader") and event.state == WorkerState.ERROR:
            self.say(f"{worker.group} failed: {worker.error}", severity="error")

    # ---- what the screens tell the app -----------------------------------------------------

    @on(FilterChanged)
    def _filter_changed(self, message: FilterChanged) -> None:
        self.filter_text = message.text

    @on(TargetTable.Selected)
    def _open_detail(self, message: TargetTable.Selected) -> None:
        self.push_screen(DetailScreen(message.name).data_bind(InferwatchApp.view))
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
        # If the terminal went away (SSH drop without SIGHUP: a hung-up terminal answers
        # isatty() with EIO, so False), end as on SIGHUP instead of spinning.
        if not sys.stdin or not sys.stdin.isatty():
            self.end_on_signal(signal.SIGHUP)

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
        """Switch to the next window length (its watcher reads it)."""
        later = [w for w in WINDOWS_S if w > self.window_s]
        self.window_s = later[0] if later else WINDOWS_S[0]

    def action_cycle_sort(self) -> None:
        """Switch to the next sort order."""
        ids = [s for s, _ in SORTS]
        self.sort = ids[(ids.index(self.sort) + 1) % len(ids)]

    def action_open_compare(self) -> None:
        """Open the comparison screen."""
        self.push_screen(CompareScreen().data_bind(InferwatchApp.view))

    def action_open_incidents(self) -> None:
        """Open the incidents screen."""
        self.push_screen(IncidentsScreen().data_bind(InferwatchApp.view))

    def action_open_cost(self) -> None:
        """Open the cost screen and read its reports at once."""
        self.push_screen(CostScreen().data_bind(InferwatchApp.view))
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

    def send_command(self, command: str, target: str | None = None) -> None:
        """Queue a command for the prober (the reader thread writes it); when no prober is
        running, say so instead: nothing would take it."""
        if self.prober_dead():
            what = command.replace("_", " ")
            self.say(
                f"prober not running: {what} not sent; {self.restart_hint()}",
                severity="warning",
                timeout=10,
            )
            return
        self.reader.submit(SendCommand(command, target))

    @on(CommandSent)
    def _command_sent(self, message: CommandSent) -> None:
        self.pending = (*self.pending, (message.command_id, message.what))
        self.request_refresh()

    @on(CommandFailed)
    def _command_failed(self, message: CommandFailed) -> None:
        self.say(f"command failed: {message.what}: {message.error}", severity="error")

    def action_export(self) -> None:
        """Export the window's probes (the detail's target, or the filtered targets)."""
        name = self._target() if isinstance(self.screen, DetailScreen) else None
        targets = [name] if name else (self.filtered_targets() if self.filter_text else [])
        stamp = file_stamp(self.clock())
        label = re.sub(r"[^A-Za-z0-9._-]", "_", name or "all")  # a name may hold "/"
        directory = self.export_dir or Path.cwd()
        path = directory / f"inferwatch-{label}-{fmt.window(self.window_s)}-{stamp}.csv"
        self.say(f"exporting to {path}…", timeout=2)
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
            self.say(f"export failed: {message.error}", severity="error", timeout=8)
        else:
            self.say(f"exported {message.rows} probes to {message.path}", timeout=8)

    def _warn(self, config: Config | None) -> None:
        """Show the config's warnings (a key over plain http, a sub-second remote interval)."""
        if config is None:
            return
        from probes.config import config_warnings  # loaded with the config, not before

        for warning in config_warnings(config):
            self.say(f"config: {warning}", severity="warning", timeout=20)

    def say(self, text: str, **kwargs: Any) -> None:
        """A notification whose text may come from outside (a path, an exception, config):
        made printable and shown without markup, so ``[`` or ESC in it are just text."""
        self.notify(printable(text), markup=False, **kwargs)

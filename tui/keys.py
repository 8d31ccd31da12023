"""Key bindings shared by every dashboard screen, in the order the footer shows them.

Textual's footer lists the focused widget's bindings first, then the screen's, then the
app's, and the first binding seen for a key wins. Each screen therefore repeats these (they
run app actions) in the order that matters at 80 columns: quit and help first. The help
screen is generated from the same objects, so footer, help and behaviour cannot disagree.
"""

from __future__ import annotations

from textual.binding import Binding

QUIT = Binding("q", "app.quit", "quit", tooltip="Quit (ctrl+c too)")
"""Quit at once (a read-only monitor needs no confirmation)."""
HELP = Binding("question_mark,f1", "app.help", "keys", key_display="?", tooltip="This help")
"""List every key."""
PAUSE = Binding("p", "app.pause", "pause", tooltip="Pause / resume probing of the selected target")
"""Pause or resume the selected target (this screen's target on the detail screen)."""
PAUSE_ALL = Binding("P", "app.pause_all", "pause all", tooltip="Pause / resume every target")
"""Pause or resume every target."""
PROBE = Binding("r", "app.probe_now", "probe", tooltip="Probe the selected target now")
"""Probe the selected target now."""
PROBE_ALL = Binding("R", "app.probe_all", "probe all", tooltip="Probe every target now")
"""Probe every target now."""
WINDOW = Binding("w", "app.cycle_window", "window", tooltip="Cycle the window: 15m, 1h, 24h, 7d")
"""Cycle the window of every figure."""
EXPORT = Binding(
    "e", "app.export", "export", tooltip="Export the window's probes to CSV (shown targets)"
)
"""Export the window's probes to a CSV file in a worker."""

#: The common keys, before a screen's own (quit and help first: they must always show).
FIRST = [QUIT, HELP]
#: The common keys after a screen's own.
LAST = [PAUSE, PROBE, WINDOW, EXPORT, PAUSE_ALL, PROBE_ALL]

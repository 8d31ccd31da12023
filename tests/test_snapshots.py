"""Snapshot tests of the dashboard's screens (pytest-textual-snapshot).

Each test renders the deterministic fixture database (``dashboard_fixture.py``: fixed
timestamps relative to a fixed clock, no randomness) with the app's clock injected, so the SVGs
under ``tests/__snapshots__/test_snapshots/`` only change when the layout does. Snapshot tests
are plain ``def`` tests (``snap_compare`` runs its own event loop); behaviour is asserted in
``test_app.py``. Review changes with ``snapshot_report.html``; accept with
``pytest tests/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests import dashboard_fixture, questions_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp

SnapCompare = Callable[..., bool]

NORMAL = (80, 24)
WIDE = (160, 48)


@pytest.fixture
def app(tmp_path: Path) -> InferwatchApp:
    db = dashboard_fixture.build(tmp_path / "snap.db")
    return InferwatchApp(db, window_s=3600, source_label="fixture", clock=lambda: NOW)


def ready(*keys: str, detail: bool = False) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the first snapshot, press ``keys``, then wait for the detail if asked."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, InferwatchApp)
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None:
                break
        await pilot.press(*keys)
        for _ in range(100):
            await pilot.pause(0.05)
            if not detail or (app.snap is not None and app.snap.detail is not None):
                break
        await pilot.pause(0.2)

    return run_before


def test_overview_80x24(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Overview at 80x24. Look for: the status line (window 1h, prober up since 10:59:55Z);
    the "group chat" row saying primary ✖ down, fallback ✔ up, with chat-primary and
    chat-fallback under it (├/└); every target's row in one line each, no wrapping, with
    state word + symbol, "for", P50/P95/P99, tok/s, err, $/req, uptime, last; "○ no key" for
    the unconfigured target; below, chat-primary's panel (since 11:55:01Z, the HTTP 503) and
    the incidents panel with the OPEN outage first."""
    assert snap_compare(app, terminal_size=NORMAL, run_before=ready())


def test_overview_160x48(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Overview at 160x48. Look for: the extra columns (top error, TTFT dist, TTFT trend with
    × where chat-primary only failed, rate left on chat-fallback, last ms, cache); the lower
    half split: chat-primary's panel with a tall TTFT histogram (▲P50 ▲P95 ▲P99 marks) and
    trend on the left, incidents newest first on the right; db size in the status line."""
    assert snap_compare(app, terminal_size=WIDE, run_before=ready())


def test_overview_no_color_80x24(
    tmp_path: Path, snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overview under NO_COLOR at 80x24. Look for: no colour at all, yet every state still
    reads as a word with its symbol (✖ down, ✔ up, ▲ degraded, ○ no key) and the cursor row
    is still distinguishable."""
    monkeypatch.setenv("NO_COLOR", "1")
    db = dashboard_fixture.build(tmp_path / "nc.db")
    app = InferwatchApp(db, window_s=3600, source_label="fixture", clock=lambda: NOW)
    assert app.no_color
    assert snap_compare(app, terminal_size=NORMAL, run_before=ready())


def test_detail_80x24(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """chat-primary's detail screen at 80x24 (enter on the first target). Look for: the
    header with state, since and cause, the window's figures and all uptimes; the TTFT
    histogram with ┊ marks and ▲P50/▲P95/▲P99 under it; the start of the total-time histogram
    (the rest scrolls); esc back in the footer."""
    assert snap_compare(app, terminal_size=NORMAL, run_before=ready("enter", detail=True))


def test_detail_160x48(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """chat-primary's detail screen at 160x48. Look for: TTFT and total-time histograms side
    by side; TTFT and decode tok/s over time side by side, with × at the two outages; errors
    by kind (server_error with its last message) beside the state history (✖ down OPEN, ✔ up
    after the earlier outage); recent probes with their HTTP 503 messages."""
    assert snap_compare(app, terminal_size=WIDE, run_before=ready("enter", detail=True))


def test_compare_80x24(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Comparison at 80x24. Look for: every target's TTFT distribution on one shared log axis
    (┃ at each P50, tick labels under them), decode tok/s and cost per request as bars from 0
    on one scale each; ◆ fastest and ◆ cheapest on local-llm, ◆ most tok/s on fast-llama;
    chat-primary (down) drawn but never marked."""
    assert snap_compare(app, terminal_size=NORMAL, run_before=ready("c"))


def test_compare_160x48(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Comparison at 160x48. Look for: the same three sections with wider strips and bars,
    all visible without scrolling, and the closing note on what ◆ means."""
    assert snap_compare(app, terminal_size=WIDE, run_before=ready("c"))


def test_too_small(app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Below the minimum (50x12). Look for: only "Terminal too small: 50x12", the needed
    60x15 and "q quits", centred; nothing of the dashboard squeezed in."""
    assert snap_compare(app, terminal_size=(50, 12), run_before=ready())


@pytest.fixture
def questions_app(tmp_path: Path) -> InferwatchApp:
    db = questions_fixture.build(tmp_path / "questions.db")
    return InferwatchApp(
        db,
        window_s=3600,
        source_label="fixture",
        clock=lambda: NOW,
        config=dashboard_fixture.config(),
    )


def ready_questions(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the first snapshot with the group's fallback fit, press ``keys``, then wait
    for what the new screen reads (detail, cost reports)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, InferwatchApp)
        for _ in range(200):
            await pilot.pause(0.05)
            if app.snap is not None and app.snap.fallbacks:
                break
        await pilot.press(*keys)
        for _ in range(200):
            await pilot.pause(0.05)
            snap = app.snap
            if "enter" in keys and snap is not None and snap.detail is not None:
                break
            if "dollar_sign" in keys and app.cost is not None:
                break
            if "enter" not in keys and "dollar_sign" not in keys:
                break
        await pilot.pause(0.2)

    return run_before


def test_questions_overview_80x24(questions_app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """Issue 13's overview at 80x24. Look for: the group row "group chat · primary ✖ down ·
    fallback ✔ up · takes load 1x ✔ 10x ✖"; in chat-primary's panel, under its state, the
    line "measured ✖ down · official ✔ operational"."""
    assert snap_compare(questions_app, terminal_size=NORMAL, run_before=ready_questions())


def test_questions_detail_80x24(questions_app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """chat-fallback's detail at 80x24. Look for: "measured ✔ up · official ? unknown (HTTP
    503 from the status page)"; its canary figures (P50 near 500 ms, no 10k workload in them);
    "prompt caching: cache ✔ 92 % read, TTFT −38 %, cost −71 %  checked 11:48:00Z"; "cold
    starts: cold 10 % of 120 probes · P50 cold 4.5 s vs warm 4xx ms (+4.0 s)"."""
    assert snap_compare(
        questions_app, terminal_size=NORMAL, run_before=ready_questions("down", "enter")
    )


def test_questions_cost_80x24(questions_app: InferwatchApp, snap_compare: SnapCompare) -> None:
    """The ``$`` screen at 80x24. Look for: the support-chat table's first columns (it
    scrolls sideways) and its caption on the TTFT at the feature's 1,200 input tokens; scroll
    position at the top."""
    assert snap_compare(
        questions_app, terminal_size=NORMAL, run_before=ready_questions("dollar_sign")
    )

"""The dashboard's idle work stays proportional to what changed and what is on screen
(issue #15): rows off screen are never drawn, unchanged rows are not repainted, verdicts whose
inputs did not move are not decided again, and summaries already made printable are not walked
again. Each through the real widget or reader code, observed by what it draws or returns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from rich.text import Text
from textual.app import App, ComposeResult

from probes.text import CleanMemo
from store.health import State, Verdict
from store.history import PersistedState
from store.reader import Snapshot
from store.summary import Shown, States, TargetSummary, with_verdicts
from tui.reader import CleanSummaries
from tui.table import TargetTable


class CountingTable(TargetTable):
    """The real table, counting which rows it renders."""

    def __init__(self) -> None:
        super().__init__(id="t")
        self.rendered: list[int] = []

    def render_line(self, y: int):  # type: ignore[no-untyped-def]
        if y > 0:
            self.rendered.append(y - 1 + round(self.scroll_y))
        return super().render_line(y)


class TableApp(App[None]):
    CSS = "#t { max-height: 11; }"  # as in the dashboard, where it takes 60 % at most

    def compose(self) -> ComposeResult:
        yield CountingTable()


def lines(texts: list[str], drawn: list[int]) -> list[tuple[str, bool, object]]:
    def draw(i: int, text: str):  # type: ignore[no-untyped-def]
        def make() -> Text:
            drawn.append(i)
            return Text(text)

        return make

    return [(f"t{i}", True, draw(i, t)) for i, t in enumerate(texts)]


async def test_rows_off_screen_are_never_drawn() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(CountingTable)
        drawn: list[int] = []
        table.set_lines("header", lines([f"row {i}" for i in range(200)], drawn))  # type: ignore[arg-type]
        await pilot.pause()
        shown = table.size.height - 1
        assert 0 < shown < 20
        assert sorted(set(drawn)) == list(range(shown))  # the rows on screen, and only them
        # Asked for (tests, captures), every row is drawn; scrolling draws the next ones.
        assert table.row_texts()[150] == "row 150"
        drawn.clear()
        table.set_lines("header", lines([f"row {i}" for i in range(200)], drawn))  # type: ignore[arg-type]
        await pilot.press("pagedown")
        await pilot.pause()
        assert drawn and max(drawn) < 30 and 10 in drawn


async def test_an_unchanged_row_is_not_repainted() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(CountingTable)
        texts = [f"row {i}" for i in range(200)]
        table.set_lines("header", lines(texts, []))  # type: ignore[arg-type]
        await pilot.pause()
        table.rendered.clear()
        texts[3] = "row 3 new figures"
        table.set_lines("header", lines(texts, []))  # type: ignore[arg-type]
        await pilot.pause()
        assert table.rendered == [3]
        assert table.row_texts()[3] == "row 3 new figures"
        table.rendered.clear()
        texts[150] = "row 150 new figures"  # off screen: nothing to repaint
        table.set_lines("header", lines(texts, []))  # type: ignore[arg-type]
        await pilot.pause()
        assert table.rendered == []


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
UP = PersistedState(State.UP, "2026-11-30T11:00:00Z", None, "", 0)


def summary(age_s: float, verdict: Verdict, **kw: object) -> TargetSummary:
    return TargetSummary(
        name="a",
        provider="p",
        model="m",
        group_name=None,
        interval_s=30.0,
        configured=True,
        paused=False,
        last_age_s=age_s,
        last_started_at="2026-11-30T11:59:00Z",
        verdict=verdict,
        **kw,  # type: ignore[arg-type]
    )


def test_a_verdict_whose_inputs_did_not_move_is_kept_until_the_stale_line() -> None:
    states = States({"a": UP}, None)
    up = with_verdicts([summary(80.0, Verdict(State.NO_DATA, "x"))], states)[0].verdict
    assert up is not None and up.state is State.UP
    s = summary(80.0, up)
    # Stale after 3 intervals + 5 s = 95 s: at 94 s the verdict is kept (the same object) ...
    kept = with_verdicts([s], States({"a": UP}, None), elapsed_s=14.0, decided_by=states)[0]
    assert kept.verdict is up and kept.last_age_s == 94.0
    # ... at 96 s it is decided again, and stale.
    late = with_verdicts([s], States({"a": UP}, None), elapsed_s=16.0, decided_by=states)[0]
    assert late.verdict is not None and late.verdict.state is State.STALE
    # A new persisted state (another object) is decided again even below the line.
    down = PersistedState(State.DOWN, "2026-11-30T11:59:00Z", "server_error", "HTTP 503", 3)
    moved = with_verdicts([s], States({"a": down}, None), elapsed_s=1.0, decided_by=states)[0]
    assert moved.verdict is not None and moved.verdict.state is State.DOWN
    # So is a target whose probe went in flight (its words count the seconds).
    waiting = Verdict(State.NO_DATA, "waiting for the first probe")
    new = replace(summary(5.0, waiting), last_started_at=None)
    none = States({}, None)
    assert with_verdicts([new], none, elapsed_s=1.0, decided_by=none)[0].verdict is waiting
    flying = States({}, None, {"a": "2026-11-30T11:59:50Z"}, NOW)
    probing = with_verdicts([new], flying, elapsed_s=1.0, decided_by=none)[0].verdict
    assert probing is not None and probing.state is State.IN_FLIGHT
    assert probing.reason.startswith("probing 10s")


def test_summaries_already_printable_are_reused_and_new_text_is_escaped() -> None:
    now = NOW
    up = Verdict(State.UP, "up since 11:00Z", "2026-11-30T11:00:00Z")
    clean = summary(10.0, up)
    dirty = replace(summary(10.0, up, last_error_message="bad \x1b[2J"), name="b")
    cleaner, memo = CleanSummaries(), CleanMemo()
    first = cleaner.clean(Snapshot(taken_at=now, window_s=3600, targets=(clean, dirty)), memo)
    assert first.targets[0] is clean
    assert "\x1b" not in (first.targets[1].last_error_message or "")
    # A second later: copies with their ages moved, and one new verdict holding an escape.
    evil = Verdict(State.DOWN, "down: \x1b]0;owned\x07", "2026-11-30T11:59:00Z")
    moved = clean.restated(elapsed_s=1.0, shown=Shown(up, 0))
    dirty_moved = dirty.restated(elapsed_s=1.0, shown=Shown(evil, 0))
    second = cleaner.clean(
        Snapshot(taken_at=now, window_s=3600, targets=(moved, dirty_moved)), memo
    )
    assert second.targets[0] is moved and second.targets[0].last_age_s == 11.0
    b = second.targets[1]
    assert "\x1b" not in (b.last_error_message or "") and b.verdict is not None
    assert "\x1b" not in b.verdict.reason and "\x07" not in b.verdict.reason

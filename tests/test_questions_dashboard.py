"""Issue 13's answers on the real dashboard (Textual app via Pilot) and in its reports, from
``questions_fixture.py`` with hand-computed values.

* overview: the group row says whether the fallback takes the primary's load; the selected
  target's panel puts the official status beside the measured state;
* detail: the prompt-caching verdict and the cold starts;
* ``$``: the fallback table; projections from the TTFT at the feature's prompt size;
* chat-fallback's headline figures are its canaries' (its 10k workloads would add ~2.4 s).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from store.costs import feature_projections
from store.db import open_db
from store.summary import summarize
from tests import dashboard_fixture, questions_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp
from tui.screens import CostScreen, DetailScreen


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return questions_fixture.build(tmp_path_factory.mktemp("questions") / "q.db")


def make_app(db: Path) -> InferwatchApp:
    return InferwatchApp(
        db,
        window_s=3600,
        source_label="test",
        clock=lambda: NOW,
        config=dashboard_fixture.config(),
    )


def screen_lines(app: InferwatchApp) -> list[str]:
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


async def wait_for(pilot: Pilot[Any], ready: Any) -> None:
    for _ in range(200):
        await pilot.pause(0.05)
        if ready():
            await pilot.pause(0.1)
            return
    raise AssertionError("not ready within 10 s")


def canary_values(db_path: Path, target: str, column: str, cold: bool | None = None) -> list[float]:
    db = open_db(db_path)
    try:
        sql = (
            f"SELECT {column} FROM probes WHERE target = ? AND kind = 'canary' "
            f"AND status = 'ok' AND {column} IS NOT NULL"
        )
        if cold is not None:
            sql += f" AND cold = {int(cold)}"
        return [float(r[0]) for r in db.conn.execute(sql, [target])]
    finally:
        db.close()


def test_headline_p50_is_the_canaries(db_path: Path) -> None:
    canaries = canary_values(db_path, "chat-fallback", "ttft_ms")
    assert len(canaries) == 120
    db = open_db(db_path)
    try:
        s = next(s for s in summarize(db, 3600, NOW) if s.name == "chat-fallback")
        (everything,) = db.conn.execute(
            "SELECT count(*) FROM probes WHERE target = 'chat-fallback'"
        ).fetchone()
    finally:
        db.close()
    assert everything == 120 + 24  # the workloads are stored
    assert s.count == 120 and s.errors == 0  # the 10k timeout is not the canary's
    assert s.ttft_p50_ms == pytest.approx(statistics.median(canaries), abs=1e-9)


async def test_overview_group_row_and_official_status(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None and app.snap.fallbacks)
        lines = screen_lines(app)
        group = next(line for line in lines if "group chat" in line)
        # Demand (both features, assumed on the group): 20,500 requests/day = 14.2/min and
        # (20,000 × 1,500 + 500 × 6,600) / 1,440 = 23,125 tokens/min; chat-fallback's headroom
        # (median over its 120 canaries): 940.5 requests and 196,430 tokens a minute. Tokens
        # fill first at 196,430 / 23,125 = 8.5x: 1x fits, 10x does not.
        assert "takes load 1x ✔ 10x ✖" in group
        (fit,) = app.snap.fallbacks["chat"]
        assert fit.breaks_first == "tokens/min"
        assert fit.max_multiplier == pytest.approx(196_430 / 23_125, rel=1e-9)
        # chat-primary is under the cursor: measured down, the provider says operational.
        assert any("measured ✖ down · official ✔ operational" in line for line in lines)


async def test_detail_cache_verdict_and_cold_starts(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.press("down", "enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, DetailScreen)
                and app.snap is not None
                and app.snap.detail is not None
                and app.snap.detail.name == "chat-fallback"
            ),
        )
        text = "\n".join(screen_lines(app))
        assert "measured ✔ up · official ? unknown (HTTP 503 from the status page)" in text
        # 1,086 of 1,180 tokens read from the cache = 92 %.
        assert "prompt caching: cache ✔ 92 % read, TTFT −38 %, cost −71 %" in text
        # 12 cold of 120 canaries; the penalty is the difference of the two medians.
        cold = statistics.median(canary_values(db_path, "chat-fallback", "ttft_ms", True))
        warm = statistics.median(canary_values(db_path, "chat-fallback", "ttft_ms", False))
        assert cold - warm > 3000
        assert f"cold starts: cold 10 % of 120 probes · P50 cold {cold / 1000:.1f} s" in text
        assert f"(+{(cold - warm) / 1000:.1f} s)" in text


async def test_cost_screen_fallback_and_ttft_at_size(db_path: Path) -> None:
    app = make_app(db_path)
    async with app.run_test(size=(220, 80)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.press("dollar_sign")
        await wait_for(pilot, lambda: isinstance(app.screen, CostScreen) and app.cost is not None)
        assert app.cost is not None and len(app.cost.fallbacks) == 1
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert "Can the fallback take the load?" in text
        assert "TTFT at the feature's 1,200 input tokens" in text
        fallback = next(line for line in lines if line.lstrip().startswith("│ chat-fallback "))
        assert fallback.rstrip(" │").endswith("1k–10k")
        primary = next(line for line in lines if line.lstrip().startswith("│ chat-primary "))
        fits = next(line for line in lines if "chat-primary → chat-fallback" in line)
        assert "│ ✔  │  ✖  │ tokens/min at 8.5x │" in fits
        assert primary.rstrip(" │").endswith("canary (smaller)")


def test_projection_uses_ttft_at_the_features_size(db_path: Path) -> None:
    db = open_db(db_path)
    try:
        report = feature_projections(db, dashboard_fixture.config(), 3600, NOW, "support-chat")
    finally:
        db.close()
    p = next(p for p in report.projections if p.target == "chat-fallback")
    # 1k: TTFT 600..611 ms at 1,000 tokens, P50 605.5; 10k: 2,400..2,410 (the 12th timed
    # out), P50 2,405. 1,200 tokens lies 200 / 9,000 of the way: 605.5 + 1,799.5 × 2 / 90.
    ttft = 605.5 + (2405.0 - 605.5) * 200 / 9000
    decode = statistics.median(canary_values(db_path, "chat-fallback", "decode_tps"))
    assert p.ttft is not None and p.ttft.method == "interpolated"
    assert p.latency_p50_ms == pytest.approx(ttft + 300 / decode * 1000, abs=1e-6)


def test_recent_probes_name_their_kind(db_path: Path) -> None:
    from store.detail import target_detail
    from tui.panels import recent_panel

    db = open_db(db_path)
    try:
        detail = target_detail(db, "chat-fallback", 3600, NOW, recent=200)
    finally:
        db.close()
    text = recent_panel(detail, NOW, 120).plain
    assert text.count("✔ workload 1k") == 12 and text.count("✔ workload 10k") == 11
    assert "✖ first_token_ (workload 10k) no first token in 30 s" in text
    assert text.count("✔ ok") == 120  # the canaries say plain "ok"

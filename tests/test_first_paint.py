"""The dashboard's first paint: the table of targets is drawn before anything slow.

What the first paint waits for is bench/dashboard_start.py's business (time); these tests
check the order of things: the targets come from the published table before the first
snapshot, the heavy modules are not needed for them, and the work moved after the paint
(creating the database, starting the prober, loading the config) still happens, once, with
its errors reported.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from textual.pilot import Pilot

from probes.config import Config, ConfigError, DashboardConfig
from store.preview import published_summaries
from store.reader import SnapshotReader
from tests import dashboard_fixture
from tests.dashboard_fixture import NOW
from tui.app import InferwatchApp
from tui.table import TargetTable

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["chat-primary", "chat-fallback", "fast-llama", "reasoner", "flaky-mix", "local-llm"]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dashboard_fixture.build(tmp_path_factory.mktemp("first") / "dash.db")


async def _rows_drawn(pilot: Pilot[None], app: InferwatchApp) -> list[str]:
    for _ in range(100):
        await pilot.pause(0.05)
        rows = app.screen.query_one(TargetTable).row_texts()
        if any("chat-primary" in r for r in rows):
            return rows
    raise AssertionError("no target rows within 5 s")


def test_published_summaries_have_no_figures(db_path: Path, tmp_path: Path) -> None:
    targets = published_summaries(db_path)
    assert [t.name for t in targets] == [*TARGETS, "no-key"]
    assert targets[0].group_name == "chat" and not targets[-1].configured
    assert all(t.computed_at is None and t.verdict is None and t.count == 0 for t in targets)
    assert published_summaries(tmp_path / "missing.db") == ()
    (tmp_path / "text.db").write_text("not a database " * 100)
    assert published_summaries(tmp_path / "text.db") == ()
    assert not (tmp_path / "missing.db").exists(), "the preview never creates a file"


async def test_targets_are_drawn_before_the_first_snapshot(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read is held back: the names are on screen, the figures are not."""
    release = threading.Event()
    real = SnapshotReader.read

    def held(self: SnapshotReader, *args: object, **kwargs: object) -> object:
        release.wait(10)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SnapshotReader, "read", held)
    app = InferwatchApp(db_path, window_s=3600, source_label="t", clock=lambda: NOW)
    async with app.run_test(size=(120, 30)) as pilot:
        try:
            rows = await _rows_drawn(pilot, app)
            assert app.snap is None
            chat = next(r for r in rows if "chat-primary" in r)
            assert chat.split() == ["…", "├", "chat-primary"], chat
            assert any(r.strip().startswith("group chat") for r in rows)
        finally:
            release.set()
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None:
                break
        await pilot.pause()
        rows = app.screen.query_one(TargetTable).row_texts()
        fast = next(r for r in rows if "fast-llama" in r)
        assert "…" not in fast and any(ch.isdigit() for ch in fast.split("fast-llama")[1])


async def test_prepare_runs_once_off_the_ui_thread_and_its_config_applies(
    db_path: Path,
) -> None:
    calls: list[str] = []

    def prepare() -> Config:
        calls.append(threading.current_thread().name)
        return Config(dashboard=DashboardConfig(window_s=900.0, refresh_s=2.0))

    app = InferwatchApp(db_path, window_s=3600, clock=lambda: NOW, prepare=prepare)
    async with app.run_test() as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.snap is not None and app.snap.window_s == 900.0:
                break
        assert app.window_s == 900.0 and app.refresh_s == 2.0
        assert app.snap is not None and app.snap.window_s == 900.0
        app.request_refresh()
        await pilot.pause(0.3)
    assert len(calls) == 1 and calls[0] != threading.main_thread().name


async def test_a_failing_prepare_closes_the_app_with_its_error(db_path: Path) -> None:
    def prepare() -> Config:
        raise ConfigError(["config.toml: [dashboard] window_s must be > 0"])

    app = InferwatchApp(db_path, clock=lambda: NOW, prepare=prepare)
    async with app.run_test() as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.prepare_error is not None:
                break
    assert isinstance(app.prepare_error, ConfigError)
    assert app.snap is None
    assert app.return_code is not None or not app.is_running


def test_the_first_paint_needs_no_heavy_module(db_path: Path) -> None:
    """The command line, the app and the published targets load neither sqlite-utils, nor
    the config models (pydantic), nor numpy: about half a second of imports on this machine,
    done after the first paint by the reader's thread."""
    code = (
        "import sys\n"
        "from tui.cli import build_parser\n"
        "from tui.app import InferwatchApp\n"
        "from store.preview import published_summaries\n"
        "build_parser().parse_args(['view'])\n"
        f"assert published_summaries({str(db_path)!r})\n"
        "heavy = ('sqlite_utils', 'pydantic', 'numpy', 'genai_prices', 'botocore', "
        "'prometheus_client', 'httpx', 'aiohttp')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "", f"loaded before the first paint: {out.stdout}"

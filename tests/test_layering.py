"""The layering rules: probes/ and store/ never load the UI stack (textual, rich) or tui/, and
the import contracts of pyproject.toml hold (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "rich", "tui")


def _modules(package: str) -> list[str]:
    return [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__main__.py"
    ]


def test_core_imports_do_not_load_the_ui() -> None:
    modules = _modules("probes") + _modules("store")
    # httpx's own CLI entry point (httpx._main) pulls in rich when click is installed; that is
    # httpx's import, not ours, so count only what our modules add on top of third parties.
    code = (
        "import importlib, sys\n"
        "import httpx, httpx_sse, sqlite_utils, pydantic, aiohttp, genai_prices, platformdirs\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {FORBIDDEN!r})\n"
        "bad += sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "", f"UI modules loaded by the core: {out.stdout}"


def test_import_contracts_hold() -> None:
    """The layering contracts in pyproject.toml ([tool.importlinter]; docs/architecture.md,
    "Layers"), checked by import-linter on every import statement, lazy ones included."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "4 kept" in out.stdout, out.stdout

"""Docs stay in step with the code: the field reference, the README's commands."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from probes.record import FIELD_DOCS, FIELD_NAMES, ProbeRecord, fields_markdown
from tests.public_schema import PUBLIC_COLUMNS
from tui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_every_field_is_documented_with_a_unit_column() -> None:
    assert set(FIELD_DOCS) == set(FIELD_NAMES) == {f.name for f in dataclasses.fields(ProbeRecord)}


def test_record_fields_are_the_public_columns_in_order() -> None:
    assert FIELD_NAMES == PUBLIC_COLUMNS
    fields_md = (ROOT / "docs" / "fields.md").read_text()
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", fields_md.split("## ")[0], re.M)
    assert tuple(documented) == PUBLIC_COLUMNS


def test_fields_md_is_generated_from_the_code() -> None:
    assert (ROOT / "docs" / "fields.md").read_text() == fields_markdown(), (
        "regenerate: python -m probes.record > docs/fields.md"
    )


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    used = set(re.findall(r"^\s*(?:\$ )?inferwatch ([a-z-]+)", readme, re.M))
    assert used, "README shows no inferwatch commands"
    assert used - {"--help", "--config", "--db"} <= subcommands


def test_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## How it is built", 1)[1].split("```")[1]
    named = set(re.findall(r"[a-z_]+\.py", section))
    for package in ("probes", "store", "tui"):
        modules = {p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py"}
        assert modules <= named, f"README 'How it is built' misses {sorted(modules - named)}"

"""The README's settings table is the one written from the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumbing.settings import declared
from plumbing.settings_doc import markdown_table, readme_table, rewrite_readme

pytestmark = pytest.mark.unit

README = Path(__file__).parents[2] / "README.md"


def test_readme_settings_table_matches_the_declarations() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == markdown_table(), (
        "the README's settings table is out of date: run `make settings-table`"
    )


def test_every_declared_setting_has_a_row_and_a_meaning() -> None:
    table = markdown_table()

    for d in declared():
        assert f"| `{d.name}` |" in table
        assert d.spec.doc, d.name


def test_rewriting_replaces_only_the_block_between_the_markers() -> None:
    stale = README.read_text(encoding="utf-8").replace("| `SENTRY_DSN` |", "| `SENTRY_DNS` |")

    fresh = rewrite_readme(stale)

    assert fresh == README.read_text(encoding="utf-8")


def test_the_env_example_names_only_declared_settings() -> None:
    example = README.with_name(".env.example").read_text(encoding="utf-8")
    names = {line.partition("=")[0] for line in example.splitlines() if "=" in line}

    assert names <= {d.name for d in declared()}

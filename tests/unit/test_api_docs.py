"""docs/API.md is the reference the OpenAPI document gives now, and the README points to it."""

from __future__ import annotations

import re
from pathlib import Path

from api.openapi_docs import ERROR_CODES
from khalex_pay.boot import api_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_api_md_is_what_the_openapi_document_says_now() -> None:
    # Stale? Run `uv run python -m scripts.api_docs` and commit docs/API.md.
    assert api_docs.main(["--check"]) == 0


def test_the_reference_covers_every_operation_and_error_code() -> None:
    text = api_docs.TARGET.read_text(encoding="utf-8")
    document = api_docs.openapi()

    for path, item in document["paths"].items():
        for method in item:
            assert f"### {method.upper()} {path}\n" in text
    for code in ERROR_CODES:
        assert f"`{code}`" in text


def test_the_readme_links_the_reference_and_only_files_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]

    assert "docs/API.md" in local
    assert [t for t in local if not (ROOT / t).exists()] == []

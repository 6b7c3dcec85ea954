"""On PostgreSQL too, a database with no tables says to migrate, in one line."""

from __future__ import annotations

import pytest

from khalex_pay import cli
from tests import services

pytestmark = pytest.mark.integration


def test_a_postgresql_database_without_tables_says_run_migrate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    services.require_postgres()
    with services.fresh_database(migrated=False) as url:
        monkeypatch.setenv("DATABASE_URL", url)

        assert cli.main(["keys", "list"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("khalex-pay: the database postgresql+psycopg://")
    assert err.strip().endswith("has no tables yet: run khalex-pay migrate")

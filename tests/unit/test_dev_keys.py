"""`khalex-pay dev` makes its own personal-data keys once and keeps them beside its database."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from khalex_pay.boot.dev import dev_keys
from plumbing.settings import Settings, keyring

pytestmark = pytest.mark.unit

UNKEYED = Settings()


def test_dev_makes_keys_once_and_reads_them_back_after_a_restart(tmp_path: Path) -> None:
    settings = dataclasses.replace(UNKEYED, database_url=f"sqlite:///{tmp_path / 'dev.db'}")

    first, said = dev_keys(settings)
    again, said_again = dev_keys(settings)

    assert keyring(first) is not None
    assert (again.data_encryption_keys, again.blind_index_key) == (
        first.data_encryption_keys, first.blind_index_key,
    )  # fmt: skip
    assert "new dev keys, kept in" in said
    assert "dev's own keys, kept in" in said_again
    assert (tmp_path / "dev.db.keys").stat().st_mode & 0o777 == 0o600


def test_keys_from_the_environment_win(tmp_path: Path) -> None:
    keyed = dataclasses.replace(
        UNKEYED, database_url=f"sqlite:///{tmp_path / 'dev.db'}",
        data_encryption_keys="a" * 43 + "=", blind_index_key="b" * 43 + "=",
    )  # fmt: skip

    kept, said = dev_keys(keyed)

    assert kept is keyed
    assert "from the environment" in said
    assert not (tmp_path / "dev.db.keys").exists()


def test_a_database_without_a_file_gets_keys_that_it_says_live_in_memory_only() -> None:
    settings = dataclasses.replace(UNKEYED, database_url="postgresql+psycopg://db/khalex")

    keyed, said = dev_keys(settings)

    assert keyring(keyed) is not None
    assert "memory only" in said

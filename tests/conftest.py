"""Shared fixtures: the real PostgreSQL and Redis, checked once; the run stops if either is gone."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from plumbing import sealing
from tests import services
from tests.processes import System, start_system

#: Personal-data keys of the tests (fixed, so processes started by tests share them).
TEST_DATA_KEYS = "dGVzdC1kYXRhLWtleS0xLWtoYWxleC1wYXktdGVzdHM="
TEST_INDEX_KEY = "dGVzdC1pbmRleC1rZXkta2hhbGV4LXBheS10ZXN0cyE="
os.environ.setdefault("DATA_ENCRYPTION_KEYS", TEST_DATA_KEYS)
os.environ.setdefault("BLIND_INDEX_KEY", TEST_INDEX_KEY)
sealing.install(sealing.Keyring.parse(TEST_DATA_KEYS, TEST_INDEX_KEY))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly created and migrated PostgreSQL database for this test session."""
    services.require_postgres()
    with services.fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The tests' Redis database, flushed once per session."""
    import redis

    services.require_redis()
    redis.Redis.from_url(services.REDIS_URL).flushdb()
    return services.REDIS_URL


@pytest.fixture(scope="session")
def launch_system(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., AbstractContextManager[System]]:
    """`launch_system(name, database_url, redis_url, **options)`: `start_system` with its logs
    in a fresh temporary directory named for `name` (usable from module-scoped fixtures)."""

    def launch(
        name: str, database_url: str, redis_url: str, **options: Any
    ) -> AbstractContextManager[System]:
        return start_system(tmp_path_factory.mktemp(name), database_url, redis_url, **options)

    return launch

"""Shared fixtures: the real PostgreSQL and Redis, checked once; the run stops if either is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


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

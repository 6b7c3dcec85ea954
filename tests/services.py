"""The real PostgreSQL and Redis the tests use: found, or the run stops loudly (never skips)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

#: Where the tests create their throwaway databases (override with TEST_PG_ADMIN_URL).
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: The Redis the tests use; each run flushes the database number it is given.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

ROOT = Path(__file__).resolve().parent.parent


def require_postgres() -> None:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: run scripts/ensure-services ({exc})",
            returncode=3,
        )


def require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis is not reachable at {REDIS_URL}: run scripts/ensure-services ({exc})",
            returncode=3,
        )


@contextmanager
def fresh_database(
    *, migrated: bool = True, admin_url: str = PG_ADMIN_URL, prefix: str = "khalex_test"
) -> Iterator[str]:
    """The one throwaway PostgreSQL database of the tests and benchmarks: created empty,
    migrated with Alembic unless `migrated=False`, its URL yielded, dropped after."""
    from migrations.run import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, timeout_s: float = 90.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def khalex_pay(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `khalex-pay ARGS` as its own process, its output going to `log`."""
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "khalex_pay.cli", *args],
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1, what: str = ""
) -> None:
    """Poll `predicate` until it holds; fail the test if it still does not after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or predicate}")
        time.sleep(interval_s)

"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from litestar import Response, get

from api import openapi_docs as docs
from api.types import Deps
from payments.container import Container
from store import db


@get("/health/live", sync_to_thread=False, tags=["health"], **docs.LIVE)
def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@get("/health/ready", sync_to_thread=True, tags=["health"], **docs.READY)
def ready(container: Deps) -> Response[dict[str, object]]:
    """200 when the database and Redis answer, else 503 naming what failed."""
    failed = [name for name, check in _checks(container).items() if not _passes(check)]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "failed": failed}
    return Response(body, status_code=503 if failed else 200)


def _checks(container: Container) -> dict[str, object]:
    checks: dict[str, object] = {"database": lambda: _database(container)}
    if container.settings.redis_url:
        checks["redis"] = lambda: _redis(container.settings.redis_url)
    return checks


def _passes(check: object) -> bool:
    try:
        return bool(check())  # type: ignore[operator]
    except Exception:  # any failure means "not ready"
        return False


def _database(container: Container) -> bool:
    with container.engine.connect() as conn:
        return db.ping(conn)


def _redis(url: str) -> bool:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()

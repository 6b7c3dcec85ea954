"""Shop requests we refused, stored with the reason (the raw body included)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from store.db import utcnow
from store.tables import refused_requests


def add(
    conn: sa.Connection,
    *,
    path: str,
    status_code: int,
    code: str,
    field: str | None,
    reason: str,
    idempotency_key: str | None,
    body: bytes,
) -> int:
    result = conn.execute(
        refused_requests.insert()
        .values(
            received_at=utcnow(), path=path[:255], status_code=status_code, code=code,
            field=field, reason=reason[:500], idempotency_key=idempotency_key,
            body=body.decode("utf-8", "backslashreplace"),
        )
        .returning(refused_requests.c.id)
    )  # fmt: skip
    return int(result.scalar_one())


def latest(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    query = sa.select(refused_requests).order_by(refused_requests.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]

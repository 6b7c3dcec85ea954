"""Shop requests we refused, stored with the reason and the first 4 KiB of the raw body."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from store import raw
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
    # Everything here may come from a stranger: cut to the columns, NUL escaped.
    result = conn.execute(
        refused_requests.insert()
        .values(
            received_at=utcnow(), path=raw.reason(path, 255), status_code=status_code,
            code=raw.text(code, 64), field=field and raw.text(field, 64),
            reason=raw.reason(reason, 500),
            idempotency_key=idempotency_key and raw.reason(idempotency_key, 255),
            body=raw.seal_personal(raw.body_text(body, limit=raw.REFUSED_BODY_BYTES)),
        )
        .returning(refused_requests.c.id)
    )  # fmt: skip
    return int(result.scalar_one())


def latest(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    query = sa.select(refused_requests).order_by(refused_requests.c.id.desc()).limit(limit)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    return [{**row, "body": raw.open_personal(row["body"])} for row in rows]

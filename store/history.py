"""The append-only event rows of payments and orders: one writer and one reader for both.

Each history table has the same columns beside the owner's id (`payment_id`, `order_id`):
kind, from_status, to_status, data and created_at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def append(  # noqa: PLR0917 - the call sites read as one sentence
    conn: sa.Connection,
    owner: sa.Column[Any],
    owner_id: str,
    kind: str,
    from_status: str | None,
    to_status: str,
    data: dict[str, object],
    at: datetime,
) -> None:
    """Add one event row to `owner`'s table (e.g. `payment_events.c.payment_id`)."""
    conn.execute(
        owner.table.insert().values({
            owner.name: owner_id, "kind": kind, "from_status": from_status,
            "to_status": to_status, "data": data, "created_at": at,
        })
    )  # fmt: skip


def of(conn: sa.Connection, owner: sa.Column[Any], owner_id: str) -> list[dict[str, Any]]:
    """The events of `owner_id`, oldest first."""
    table = owner.table
    query = sa.select(table).where(owner == owner_id).order_by(table.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]

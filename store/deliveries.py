"""Dramatiq deliveries in the database: the record of each dead-lettered message, and the
counts of starts and finishes where no Redis counts them (`workers.poison`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from store.db import utcnow
from store.tables import job_deliveries


def started(conn: sa.Connection, message_id: str, queue: str, actor: str, args: list[Any]) -> int:
    """Count one more start of `message_id`; returns how many starts never finished."""
    now = utcnow()
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    t = job_deliveries
    insert = dialect_insert(t).values(
        message_id=message_id, queue=queue, actor=actor, args=args, started=1,
        first_started_at=now, last_started_at=now,
    )  # fmt: skip
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.message_id],
        set_={"started": t.c.started + 1, "last_started_at": now},
    ).returning(t.c.started - t.c.finished)
    return int(conn.execute(stmt).scalar_one())


def finished(conn: sa.Connection, message_id: str, error: str | None) -> None:
    conn.execute(
        job_deliveries.update()
        .where(job_deliveries.c.message_id == message_id)
        .values(finished=job_deliveries.c.finished + 1, last_error=error[:500] if error else None)
    )


def dead_lettered(
    conn: sa.Connection,
    message_id: str,
    reason: str,
    *,
    queue: str | None = None,
    actor: str | None = None,
    args: list[Any] | None = None,
    started: int = 0,
) -> None:
    """Record that `message_id` was dead-lettered, and why.

    With its `queue` and `actor`, the row is written even when its starts were counted
    elsewhere (Redis), holding at least `started` starts; without them, only the row
    `started()` wrote is marked.
    """
    t, now = job_deliveries, utcnow()
    if queue is None or actor is None:
        conn.execute(
            t.update()
            .where(t.c.message_id == message_id)
            .values(dead_lettered_at=now, last_error=reason[:500])
        )
        return
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    insert = dialect_insert(t).values(
        message_id=message_id, queue=queue, actor=actor, args=args or [], started=started,
        first_started_at=now, last_started_at=now, dead_lettered_at=now,
        last_error=reason[:500],
    )  # fmt: skip
    more = sa.case(
        (t.c.started < insert.excluded.started, insert.excluded.started), else_=t.c.started
    )
    updates = {
        "started": more, "last_started_at": now, "dead_lettered_at": now,
        "last_error": reason[:500],
    }  # fmt: skip
    conn.execute(insert.on_conflict_do_update(index_elements=[t.c.message_id], set_=updates))


def reset(conn: sa.Connection, message_id: str) -> None:
    """Forget `message_id`'s starts, finishes and dead-lettering (a replay starts afresh)."""
    conn.execute(
        job_deliveries.update()
        .where(job_deliveries.c.message_id == message_id)
        .values(started=0, finished=0, dead_lettered_at=None, last_error=None)
    )


def dead(conn: sa.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Messages we dead-lettered ourselves, newest first."""
    query = (
        sa.select(job_deliveries)
        .where(job_deliveries.c.dead_lettered_at.is_not(None))
        .order_by(job_deliveries.c.dead_lettered_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def dead_since(conn: sa.Connection, since: datetime, limit: int) -> list[tuple[str, str, str]]:
    """(message_id, queue, actor) of the messages we dead-lettered since `since`, newest first."""
    t = job_deliveries
    rows = conn.execute(
        sa.select(t.c.message_id, t.c.queue, t.c.actor)
        .where(t.c.dead_lettered_at >= since)
        .order_by(t.c.dead_lettered_at.desc())
        .limit(limit)
    )
    return [(row.message_id, row.queue, row.actor) for row in rows]

"""The transactional outbox: jobs written in the same transaction as the change that needs them.

A relay (right after commit, and again from the scheduler) hands them to the broker, so a
crash or a Redis outage between a commit and its enqueue loses nothing. Each row keeps the
correlation id of the request or job that wrote it, for the message to carry on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plumbing import correlation
from store.db import utcnow
from store.tables import outbox


@dataclass(frozen=True)
class Job:
    id: int
    queue: str
    actor: str
    args: list[Any]
    correlation_id: str | None = None


def add(conn: sa.Connection, queue: str, actor: str, *args: str | int) -> int:
    """Queue `actor(*args)` to be sent once this transaction commits; args are ids only.

    The row takes the current correlation id (`plumbing.correlation`), if any.
    """
    result = conn.execute(
        outbox.insert()
        .values(
            queue=queue, actor=actor, args=list(args), created_at=utcnow(),
            correlation_id=correlation.current(),
        )
        .returning(outbox.c.id)
    )  # fmt: skip
    return int(result.scalar_one())


def add_job(conn: sa.Connection, queue: str, actor: str, *args: str | int) -> Job:
    """`add`, returning the job itself, for its writer to publish once it commits."""
    job_id = add(conn, queue, actor, *args)
    return Job(job_id, queue, actor, list(args), correlation.current())


def add_many(
    conn: sa.Connection, queue: str, actor: str, args: Sequence[Sequence[str | int]]
) -> None:
    """`add` for many jobs of one actor, in one statement: `actor(*a)` for each `a` in `args`."""
    if not args:
        return
    now, correlation_id = utcnow(), correlation.current()
    # executemany: one cached statement SQLAlchemy batches, whatever the number of jobs.
    conn.execute(outbox.insert(), [
        {"queue": queue, "actor": actor, "args": list(a), "created_at": now,
         "correlation_id": correlation_id}
        for a in args
    ])  # fmt: skip


def claim(conn: sa.Connection, *, ids: list[int] | None = None, limit: int = 100) -> list[Job]:
    """Lock up to `limit` unsent jobs (skipping ones another relay holds)."""
    query = sa.select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit)
    if ids is not None:
        query = query.where(outbox.c.id.in_(ids))
    rows = conn.execute(query.with_for_update(skip_locked=True))
    return [Job(r.id, r.queue, r.actor, list(r.args), r.correlation_id) for r in rows]


def mark_sent(conn: sa.Connection, job_ids: list[int]) -> None:
    if job_ids:
        conn.execute(outbox.update().where(outbox.c.id.in_(job_ids)).values(sent_at=utcnow()))

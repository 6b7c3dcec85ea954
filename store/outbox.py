"""The transactional outbox: jobs written in the same transaction as the change that needs them.

A relay (right after commit, and again from the scheduler) hands them to the broker, so a
crash or a Redis outage between a commit and its enqueue loses nothing. Each row keeps the
correlation id of the request or job that wrote it, for the message to carry on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from plumbing import correlation
from store.db import utcnow
from store.tables import outbox

log = logging.getLogger(__name__)

#: How long published jobs wait to be marked sent together, in one UPDATE.
MARK_EVERY_S = 0.05
#: A marker thread with nothing to mark for this long ends (a process that rarely publishes
#: keeps no thread waiting).
IDLE_EXIT_S = 10.0


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
) -> list[Job]:
    """`add_job` for many jobs of one actor, in one statement: `actor(*a)` for each `a` in
    `args`; the jobs in the order of `args`, for their writer to publish once it commits."""
    if not args:
        return []
    now, correlation_id = utcnow(), correlation.current()
    if conn.dialect.name == "postgresql":
        # One statement text whatever the count (the args as one JSON array), so the driver
        # parses it once and the server prepares it once; a multi-row VALUES list is a text
        # of its own per count, split and planned again each time. The ids come from the
        # sequence in the ORDER BY's order, so sorted they follow `args`.
        rows = conn.execute(
            _ADD_MANY,
            {"queue": queue, "actor": actor, "rows": [list(a) for a in args], "now": now,
             "correlation_id": correlation_id},
        )  # fmt: skip
        ids = sorted(rows.scalars())
    else:
        # executemany with RETURNING: SQLAlchemy sends one multi-row INSERT per batch and
        # gives the ids back in the parameters' order.
        rows = conn.execute(
            outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True),
            [{"queue": queue, "actor": actor, "args": list(a), "created_at": now,
              "correlation_id": correlation_id} for a in args],
        )  # fmt: skip
        ids = list(rows.scalars())
    return [
        Job(job_id, queue, actor, list(a), correlation_id)
        for job_id, a in zip(ids, args, strict=True)
    ]


_ROWS = (
    sa.func.jsonb_array_elements(sa.bindparam("rows", type_=postgresql.JSONB))
    .table_valued("value", with_ordinality="ord")
    .render_derived(name="job_args")
)
_ADD_MANY = (
    outbox.insert()
    .from_select(
        ["queue", "actor", "args", "created_at", "correlation_id"],
        sa.select(
            sa.bindparam("queue", type_=outbox.c.queue.type),
            sa.bindparam("actor", type_=outbox.c.actor.type),
            _ROWS.c.value,
            sa.bindparam("now", type_=outbox.c.created_at.type),
            sa.bindparam("correlation_id", type_=outbox.c.correlation_id.type),
        ).order_by(_ROWS.c.ord),
    )
    .returning(outbox.c.id)
)


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


class SentMarker:
    """Marks published jobs sent, many in one UPDATE, from a thread of its own.

    A writer that publishes its own jobs right after commit hands their ids here instead of
    marking them itself: the request does not wait, and a busy process marks a batch per
    statement. Until marked, the scheduler's relay may publish one of them again, which
    every job tolerates; a crash before marking leaves just that. On SQLite (one process,
    one writer at a time) the ids are marked at once.
    """

    def __init__(self, engine: Engine, every_s: float = MARK_EVERY_S) -> None:
        self._engine = engine
        self._every_s = every_s
        self._deferred = engine.dialect.name != "sqlite"
        self._pending: list[int] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one UPDATE at a time, in id order
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job_ids: list[int]) -> None:
        """Mark `job_ids` sent soon (at once on SQLite)."""
        if not job_ids:
            return
        if not self._deferred:
            with self._engine.begin() as conn:
                mark_sent(conn, job_ids)
            return
        with self._lock:
            self._pending += job_ids
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="outbox-sent-marker", daemon=True
                )
                self._thread.start()
        self._due.set()

    def flush(self) -> None:
        """Mark every id handed over so far; a failure leaves them for the relay."""
        with self._flushing:
            with self._lock:
                job_ids, self._pending = self._pending, []
            if not job_ids:
                return
            try:
                with self._engine.begin() as conn:
                    mark_sent(conn, job_ids)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("%d published jobs not marked sent (%s); the relay may send them "
                            "again", len(job_ids), exc)  # fmt: skip

    def close(self) -> None:
        """Stop the thread and mark what is left (at shutdown)."""
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._due.wait(IDLE_EXIT_S):
                with self._lock:
                    if not self._pending:  # idle: the next `add` starts a thread again
                        self._thread = None
                        return
            self._stop.wait(self._every_s)  # gather a batch (returns at once when stopping)
            self._due.clear()
            self.flush()

"""The figures `/metrics` and the ops summary show, read without scanning history.

Counts of payments and Daraja calls are kept by database triggers (migration 0011): each
write appends its change to `metric_deltas` in its own transaction, and `fold` (run by the
scheduler) moves them into `metric_totals`. The callback-to-final histogram joins two
tables, so no trigger can keep it: `roll_up_callbacks` counts payments finished before a
watermark once, and a scrape counts only those finished after it. What is left (backlogs,
the oldest pending payment) is read through partial indexes that hold only live rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from store import inbox
from store.tables import (
    callback_inbox,
    job_deliveries,
    metric_deltas,
    metric_totals,
    metric_watermarks,
    outbox,
    payments,
)

#: (family, label1, label2) -> (count, sum): e.g. ("payments", "completed", "") or
#: ("processing", "completed", "5.0") for a histogram bucket (not cumulative).
Counts = dict[tuple[str, str, str], tuple[int, float]]

#: Upper bounds (seconds) from a callback's arrival to its payment's final state.
CALLBACK_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: The callback-to-final roll-up's family and watermark name.
CALLBACK_TO_FINAL = "callback_to_final"
#: Label of a histogram's last bucket.
INF = "+Inf"


class seconds_between(FunctionElement[float]):  # noqa: N801 - reads as the SQL function it is
    """Seconds from the first timestamp to the second, on PostgreSQL and SQLite alike."""

    type = sa.Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def bucket_label(bound: float) -> str:
    """A bucket's label as the triggers and Prometheus write it ("0.05", "2.0")."""
    return repr(float(bound))


# --- Trigger-kept counts ------------------------------------------------------------------


def counts(conn: sa.Connection) -> Counts:
    """Folded totals plus the deltas not yet folded, per figure and labels (zeros left out)."""
    both = sa.union_all(*(_figures(t) for t in (metric_totals, metric_deltas))).subquery()
    keys = (both.c.family, both.c.label1, both.c.label2)
    query = (
        sa.select(*keys, sa.func.sum(both.c.n), sa.func.sum(both.c.total))
        .group_by(*keys)
        .having(sa.func.sum(both.c.n) != 0)
    )
    return {(f, l1, l2): (int(n), float(total)) for f, l1, l2, n, total in conn.execute(query)}


def _figures(table: sa.Table) -> sa.Select[Any]:
    return sa.select(table.c.family, table.c.label1, table.c.label2, table.c.n, table.c.total)


_FOLD_PG = sa.text(
    "WITH moved AS (DELETE FROM metric_deltas RETURNING family, label1, label2, n, total) "
    "INSERT INTO metric_totals (family, label1, label2, n, total) "
    "SELECT family, label1, label2, sum(n), sum(total) FROM moved "
    "GROUP BY family, label1, label2 "
    "ON CONFLICT (family, label1, label2) DO UPDATE "
    "SET n = metric_totals.n + excluded.n, total = metric_totals.total + excluded.total"
)


def fold(conn: sa.Connection) -> None:
    """Move every delta into the totals, in the caller's transaction.

    On PostgreSQL the DELETE ... RETURNING moves exactly the rows it removes, so a delta
    committed meanwhile waits for the next fold and two folds never count one twice.
    SQLite lets one writer in at a time, so reading then deleting is safe there.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_FOLD_PG)
        return
    last = conn.execute(sa.select(sa.func.max(metric_deltas.c.id))).scalar()
    if last is None:
        return
    d = metric_deltas
    summed = (
        sa.select(d.c.family, d.c.label1, d.c.label2, sa.func.sum(d.c.n), sa.func.sum(d.c.total))
        .where(d.c.id <= last)
        .group_by(d.c.family, d.c.label1, d.c.label2)
    )
    _add_to_totals(conn, summed)
    conn.execute(sa.delete(d).where(d.c.id <= last))


def _add_to_totals(conn: sa.Connection, rows: sa.Select[Any] | list[dict[str, Any]]) -> None:
    """Add (family, label1, label2, n, total) rows to the totals, creating missing ones."""
    t = metric_totals
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t)
    columns = ["family", "label1", "label2", "n", "total"]
    filled = (
        insert.from_select(columns, rows) if isinstance(rows, sa.Select) else insert.values(rows)
    )
    upsert = filled.on_conflict_do_update(
        index_elements=[t.c.family, t.c.label1, t.c.label2],
        set_={"n": t.c.n + insert.excluded.n, "total": t.c.total + insert.excluded.total},
    )
    conn.execute(upsert)


# --- The callback-to-final roll-up --------------------------------------------------------


def callbacks_after_roll_up(conn: sa.Connection) -> Counts:
    """Callback-to-final buckets of the payments the roll-up has not counted yet.

    Add them to `counts()`, which holds the rolled-up ones.
    """
    return _callback_buckets(conn, _watermark(conn, CALLBACK_TO_FINAL), None)


def roll_up_callbacks(conn: sa.Connection, through: datetime) -> None:
    """Count the payments finished before `through` once (the caller's transaction).

    Call it with a `through` far enough back (an hour) that those payments' first
    callbacks are all processed: a roll-up never looks at a payment again.
    """
    w = metric_watermarks
    since = conn.execute(
        sa.select(w.c.through).where(w.c.name == CALLBACK_TO_FINAL).with_for_update()
    ).scalar()
    if since is not None and since >= through:
        return
    rolled = _callback_buckets(conn, since, through)
    if rolled:
        _add_to_totals(conn, [
            {"family": f, "label1": l1, "label2": l2, "n": n, "total": total}
            for (f, l1, l2), (n, total) in rolled.items()
        ])  # fmt: skip
    if since is None:
        conn.execute(sa.insert(w).values(name=CALLBACK_TO_FINAL, through=through))
    else:
        conn.execute(sa.update(w).where(w.c.name == CALLBACK_TO_FINAL).values(through=through))


def _watermark(conn: sa.Connection, name: str) -> datetime | None:
    w = metric_watermarks
    found: datetime | None = conn.execute(sa.select(w.c.through).where(w.c.name == name)).scalar()
    return found


def _callback_buckets(
    conn: sa.Connection, since: datetime | None, until: datetime | None
) -> Counts:
    """Payments finished in [since, until) that a processed callback settled, per bucket."""
    cb, p = callback_inbox, payments
    first = (
        sa.select(sa.func.min(cb.c.received_at))
        .where(cb.c.payment_id == p.c.id, cb.c.state == inbox.PROCESSED)
        .scalar_subquery()
    )
    window: list[sa.ColumnElement[bool]] = [p.c.finished_at.is_not(None)]
    if since is not None:
        window.append(p.c.finished_at >= since)
    if until is not None:
        window.append(p.c.finished_at < until)
    settled = sa.select(p.c.finished_at, first.label("received_at")).where(*window).subquery()
    seconds = seconds_between(settled.c.received_at, settled.c.finished_at)
    label = bucket_case(seconds, CALLBACK_BUCKETS_S)
    rows = conn.execute(
        sa.select(label, sa.func.count(), sa.func.sum(seconds))
        .where(settled.c.received_at.is_not(None), settled.c.finished_at >= settled.c.received_at)
        .group_by(label)
    )
    return {(CALLBACK_TO_FINAL, "", le): (int(n), float(total)) for le, n, total in rows}


def bucket_case(value: sa.ColumnElement[float], bounds: Sequence[float]) -> sa.ColumnElement[str]:
    """SQL naming the bucket of `value`: the smallest bound holding it, else +Inf."""
    return sa.case(*((value <= b, bucket_label(b)) for b in bounds), else_=INF)


# --- Live rows, through partial indexes ---------------------------------------------------


def oldest_created(conn: sa.Connection, statuses: Sequence[str]) -> datetime | None:
    """When the oldest payment in one of `statuses` (all in flight) was created."""
    oldest: datetime | None = conn.execute(
        sa.select(sa.func.min(payments.c.created_at)).where(payments.c.status.in_(statuses))
    ).scalar()
    return oldest


def outbox_backlog(conn: sa.Connection) -> int:
    return _count(conn, outbox, outbox.c.sent_at.is_(None))


def inbox_backlog(conn: sa.Connection) -> int:
    return _count(conn, callback_inbox, callback_inbox.c.state == inbox.RECEIVED)


def dead_jobs_by_queue(conn: sa.Connection) -> dict[str, int]:
    q = job_deliveries
    rows = conn.execute(
        sa.select(q.c.queue, sa.func.count())
        .where(q.c.dead_lettered_at.is_not(None))
        .group_by(q.c.queue)
    )
    return {str(queue): int(n) for queue, n in rows}


def _count(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(where)
    return int(conn.execute(query).scalar_one())


# --- The ops summary's windows ------------------------------------------------------------


def created_since(conn: sa.Connection, since: datetime) -> list[tuple[str, str | None, bool, int]]:
    """(status, failure reason, late success, how many) of payments created since `since`."""
    t = payments
    rows = conn.execute(
        sa.select(t.c.status, t.c.failure_reason, t.c.late_success, sa.func.count())
        .where(t.c.created_at >= since)
        .group_by(t.c.status, t.c.failure_reason, t.c.late_success)
    )
    return [(str(s), reason, bool(late), int(n)) for s, reason, late, n in rows]


def processing_seconds_since(conn: sa.Connection, since: datetime, limit: int) -> list[float]:
    """Seconds from initiate to final state of the newest `limit` payments created since."""
    t = payments
    rows = conn.execute(
        sa.select(seconds_between(t.c.created_at, t.c.finished_at))
        .where(t.c.created_at >= since, t.c.finished_at.is_not(None))
        .order_by(t.c.created_at.desc())
        .limit(limit)
    ).scalars()
    return [float(s) for s in rows]

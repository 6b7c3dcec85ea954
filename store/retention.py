"""Deleting raw records past their retention, a small batch per statement.

Each kind of record names its table, its key, and the indexed column and condition that
say "old and done". Payments and their events are never purged: they are the money's history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from store.inbox import FINAL_STATES
from store.tables import (
    c2b_payments,
    callback_inbox,
    daraja_exchanges,
    job_deliveries,
    outbox,
    refused_requests,
)

#: PayBill requests that carried no money of their own: validations, refusals, duplicates.
#: Confirmations whose money was counted (or is untrusted) stay: they are the shop's books.
C2B_MONEYLESS = ("accepted", "declined", "rejected", "duplicate")


@dataclass(frozen=True)
class Kind:
    """One kind of raw record: `done(cutoff)` selects the ones that may go."""

    name: str
    key: sa.Column[object]
    done: Callable[[datetime], sa.ColumnElement[bool]]
    #: The indexed time column the batch is read in order of.
    age: sa.Column[datetime]


KINDS = (
    Kind(
        "callback_inbox", callback_inbox.c.id,
        lambda cutoff: sa.and_(
            callback_inbox.c.state.in_(FINAL_STATES), callback_inbox.c.received_at < cutoff
        ),
        callback_inbox.c.received_at,
    ),
    Kind(
        "daraja_exchanges", daraja_exchanges.c.id,
        lambda cutoff: daraja_exchanges.c.sent_at < cutoff, daraja_exchanges.c.sent_at,
    ),
    Kind(
        "refused_requests", refused_requests.c.id,
        lambda cutoff: refused_requests.c.received_at < cutoff, refused_requests.c.received_at,
    ),
    Kind(
        "c2b_payments", c2b_payments.c.id,
        lambda cutoff: sa.and_(
            c2b_payments.c.state.in_(C2B_MONEYLESS), c2b_payments.c.received_at < cutoff
        ),
        c2b_payments.c.received_at,
    ),
    Kind(
        # `sent_at IS NOT NULL` repeats the partial index's predicate so the planner uses it.
        "outbox", outbox.c.id,
        lambda cutoff: sa.and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff),
        outbox.c.sent_at,
    ),
    Kind(
        "job_deliveries", job_deliveries.c.message_id,
        lambda cutoff: sa.and_(
            job_deliveries.c.last_started_at < cutoff,
            job_deliveries.c.finished >= job_deliveries.c.started,
        ),
        job_deliveries.c.last_started_at,
    ),
)  # fmt: skip


def delete_batch(conn: sa.Connection, kind: Kind, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` records of `kind` older than `cutoff`; returns how many went."""
    table = kind.key.table
    oldest = (
        sa.select(kind.key)
        .where(kind.done(cutoff))
        .order_by(kind.age)
        .limit(batch)
        .scalar_subquery()
    )
    result = conn.execute(sa.delete(table).where(kind.key.in_(oldest)))
    return int(result.rowcount or 0)

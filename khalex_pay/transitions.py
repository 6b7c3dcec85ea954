"""Apply a domain fact to a stored payment: decide, then compare-and-set, retrying on a race."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.payment import Change, Fact, decide
from store import payments
from store.payments import Conflict, PaymentRecord

#: How often we re-decide when another transaction changed the payment first.
MAX_RACES = 5


def apply_fact(
    conn: sa.Connection, record: PaymentRecord, fact: Fact, **extra: object
) -> tuple[PaymentRecord, Change | None]:
    """Decide `fact` against `record` and write it inside the caller's transaction."""
    change = decide(record.to_domain(), fact)
    if change is None:
        return record, None
    return payments.apply(conn, record, change, **extra), change


def transition(
    engine: Engine,
    payment_id: str,
    fact: Fact,
    extra: Callable[[Change], dict[str, object]] | None = None,
) -> Change | None:
    """Apply `fact` to payment `payment_id` in its own transaction; None if nothing changed."""
    for _ in range(MAX_RACES):
        try:
            with engine.begin() as conn:
                record = payments.get(conn, payment_id)
                if record is None:
                    return None
                change = decide(record.to_domain(), fact)
                if change is None:
                    return None
                payments.apply(conn, record, change, **(extra(change) if extra else {}))
                return change
        except Conflict:
            continue
    raise Conflict(payment_id)

"""What the reconciliation loop fetches and marks: payments to expire or query again,
callbacks and pushes to queue again.

Each `lock_*` takes row locks (`SKIP LOCKED`) in the caller's transaction, so schedulers on
several hosts never share a row; each mark moves a row's clock so the next tick skips it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from domain.payment import Status
from store import inbox
from store.db import among
from store.tables import IN_FLIGHT, callback_inbox, payments


def pending_created_before(conn: sa.Connection, deadline: datetime, limit: int) -> list[str]:
    """Ids of payments still in flight that were created before `deadline`, oldest first."""
    t = payments
    return list(
        conn.execute(
            sa.select(t.c.id)
            # IN_FLIGHT: the partial indexes' exact predicate
            .where(t.c.status.in_(IN_FLIGHT), t.c.created_at < deadline)
            .order_by(t.c.created_at)
            .limit(limit)
        ).scalars()
    )


def stuck_sending(
    conn: sa.Connection, updated_before: datetime, created_before: datetime, limit: int
) -> list[str]:
    """Ids of `sending` payments whose push job went quiet (untouched since `updated_before`)
    or that are due to expire (created before `created_before`), oldest first."""
    t = payments
    return list(
        conn.execute(
            sa.select(t.c.id)
            .where(
                t.c.status == Status.SENDING.value,
                sa.or_(t.c.updated_at < updated_before, t.c.created_at < created_before),
            )
            .order_by(t.c.created_at)
            .limit(limit)
        ).scalars()
    )


def lock_due_queries(
    conn: sa.Connection, now: datetime, limit: int
) -> list[tuple[str, int, datetime]]:
    """(id, query_attempts, created_at) of payments whose next STK query is due, locked."""
    t = payments
    rows = conn.execute(
        sa.select(t.c.id, t.c.query_attempts, t.c.created_at)
        .where(t.c.next_query_at <= now, t.c.checkout_request_id.is_not(None))
        .order_by(t.c.next_query_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )  # fmt: skip
    return [(row.id, row.query_attempts, row.created_at) for row in rows]


def schedule_query(conn: sa.Connection, payment_id: str, at: datetime, attempts: int) -> None:
    """The payment's next query is at `at`; `attempts` queries were queued so far."""
    schedule_queries(conn, [payment_id], at, attempts)


def schedule_queries(conn: sa.Connection, ids: list[str], at: datetime, attempts: int) -> None:
    """`schedule_query` for several payments sharing `at` and `attempts`, in one UPDATE."""
    if ids:
        conn.execute(
            payments.update()
            .where(among(conn, payments.c.id, ids))
            .values(next_query_at=at, query_attempts=attempts)
        )


def stop_querying(conn: sa.Connection, ids: list[str]) -> None:
    """Ask Daraja no more about these payments (too old for a late query), in one UPDATE."""
    if ids:
        t = payments
        conn.execute(t.update().where(among(conn, t.c.id, ids)).values(next_query_at=None))


def lock_stale_callbacks(conn: sa.Connection, received_before: datetime, limit: int) -> list[int]:
    """Ids of stored callbacks nobody processed since `received_before`, locked."""
    t = callback_inbox
    return list(
        conn.execute(
            sa.select(t.c.id)
            .where(t.c.state == inbox.RECEIVED, t.c.received_at < received_before)
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def mark_callback_seen(conn: sa.Connection, inbox_id: int, now: datetime) -> None:
    """Push the callback's received_at forward, so the next tick does not queue it at once."""
    t = callback_inbox
    conn.execute(t.update().where(t.c.id == inbox_id).values(received_at=now))


def lock_matchable_callbacks(conn: sa.Connection, limit: int) -> list[int]:
    """Ids of unmatched callbacks whose CheckoutRequestID a payment now has, locked."""
    t, p = callback_inbox, payments
    return list(
        conn.execute(
            sa.select(t.c.id)
            .join(p, p.c.checkout_index == t.c.checkout_index)
            .where(t.c.state == inbox.UNMATCHED)
            .limit(limit)
            .with_for_update(of=t, skip_locked=True)
        ).scalars()
    )


def reopen_callback(conn: sa.Connection, inbox_id: int) -> None:
    """An unmatched callback is to be processed again."""
    t = callback_inbox
    conn.execute(t.update().where(t.c.id == inbox_id).values(state=inbox.RECEIVED))


def lock_stale_created(conn: sa.Connection, updated_before: datetime, limit: int) -> list[str]:
    """Ids of `created` payments whose push job has not started since `updated_before`."""
    t = payments
    return list(
        conn.execute(
            sa.select(t.c.id)
            .where(t.c.status == Status.CREATED.value, t.c.updated_at < updated_before)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def mark_payment_seen(conn: sa.Connection, payment_id: str, now: datetime) -> None:
    """Push the payment's updated_at forward, so the next tick does not queue it at once."""
    conn.execute(payments.update().where(payments.c.id == payment_id).values(updated_at=now))

"""Claims on the `alerts` table (what was alerted, so it is not alerted again), and what the
alert checks read from payments and orders."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from domain.payment import FINAL
from store.tables import alerts, order_events, payment_events, payments

#: Statuses a payment ends in.
_FINAL = tuple(status.value for status in FINAL)


def claim_once(conn: sa.Connection, kind: str, keys: list[str], now: datetime) -> list[str]:
    """Record `keys`; returns those never recorded before (in `keys`' order)."""
    if not keys:
        return []
    known = set(conn.execute(sa.select(alerts.c.key).where(alerts.c.key.in_(keys))).scalars())
    fresh = [key for key in keys if key not in known]
    if not fresh:
        return []
    rows = [_row(key, kind, now) for key in fresh]
    won = set(conn.execute(_insert_new(conn).values(rows).returning(alerts.c.key)).scalars())
    return [key for key in fresh if key in won]


def claim_repeating(conn: sa.Connection, kind: str, key: str, now: datetime, repeat_s: int) -> bool:
    """True when `key` was never alerted, or last alerted at least `repeat_s` ago."""
    if conn.execute(_insert_new(conn).values(_row(key, kind, now)).returning(alerts.c.key)).first():
        return True
    stmt = (
        alerts.update()
        .where(alerts.c.key == key, alerts.c.last_alerted_at <= now - timedelta(seconds=repeat_s))
        .values(last_alerted_at=now, times=alerts.c.times + 1)
    )
    return conn.execute(stmt).rowcount == 1


def _row(key: str, kind: str, now: datetime) -> dict[str, object]:
    return {"key": key, "kind": kind, "first_alerted_at": now, "last_alerted_at": now}


def _insert_new(conn: sa.Connection) -> Any:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(alerts).on_conflict_do_nothing(index_elements=[alerts.c.key])


def forget_before(conn: sa.Connection, cutoff: datetime) -> None:
    """Drop the claims last alerted before `cutoff`."""
    conn.execute(alerts.delete().where(alerts.c.last_alerted_at < cutoff))


# --- What the alert checks read ---------------------------------------------------------------


def ended_by_status(conn: sa.Connection, since: datetime) -> dict[str, int]:
    """How many payments ended (reached a final status) since `since`, by status."""
    rows = conn.execute(
        sa.select(payments.c.status, sa.func.count())
        .where(payments.c.finished_at >= since, payments.c.status.in_(_FINAL))
        .group_by(payments.c.status)
    )
    return {status: int(n) for status, n in rows}


def late_successes(conn: sa.Connection, since: datetime, limit: int) -> list[sa.RowMapping]:
    """The `late_success` events since `since`, newest first, with the payment's amount and
    receipt: payment_id, data, created_at, amount, mpesa_receipt_number."""
    e, p = payment_events, payments
    return list(
        conn.execute(
            sa.select(e.c.payment_id, e.c.data, e.c.created_at, p.c.amount,
                      p.c.mpesa_receipt_number)
            .join(p, p.c.id == e.c.payment_id)
            .where(e.c.kind == "late_success", e.c.created_at >= since)
            .order_by(e.c.id.desc())
            .limit(limit)
        ).mappings()
    )  # fmt: skip


def unknown_outcomes(conn: sa.Connection, since: datetime, limit: int) -> list[sa.RowMapping]:
    """Payments that failed with `timeout` since `since` although a push was started, and
    never learned their CheckoutRequestID: id, amount, finished_at, newest first."""
    p = payments
    return list(
        conn.execute(
            sa.select(p.c.id, p.c.amount, p.c.finished_at)
            .where(
                p.c.finished_at >= since, p.c.status == "failed",
                p.c.failure_reason == "timeout", p.c.push_attempts > 0,
                p.c.checkout_index.is_(None),
            )
            .order_by(p.c.finished_at.desc())
            .limit(limit)
        ).mappings()
    )  # fmt: skip


def refund_events(conn: sa.Connection, since: datetime, limit: int) -> list[sa.RowMapping]:
    """Order events since `since` that may owe money back (`refund_due`, `cancelled`),
    newest first: order_id, kind, data, to_status, created_at."""
    e = order_events
    return list(
        conn.execute(
            sa.select(e.c.order_id, e.c.kind, e.c.data, e.c.to_status, e.c.created_at)
            .where(e.c.kind.in_(("refund_due", "cancelled")), e.c.created_at >= since)
            .order_by(e.c.id.desc())
            .limit(limit)
        ).mappings()
    )  # fmt: skip

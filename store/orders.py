"""Orders and their events: inserts, look-ups, pages and compare-and-set transitions.

Every change of an order's state goes through `apply`, which writes the order's
`order_events` row in the same transaction (and is where the shop's webhooks are queued).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.order import Change, Item, Order, Status
from store import history
from store import payments as payments_store
from store.db import utcnow
from store.sealed import phone_index
from store.tables import order_events, order_idempotency_keys, orders, payments


class Conflict(payments_store.Conflict):
    """The order changed under us; reload and decide again.

    A kind of the payments' Conflict: an order confirmed by a payment is written in the
    payment's transaction, whose retry loops then decide both again.
    """


@dataclass(frozen=True)
class NewOrder:
    items: tuple[Item, ...]
    delivery_fee: int
    total_amount: int  # computed by domain.order.total_of, never taken from the shop
    customer_name: str
    customer_email: str | None
    customer_phone: str  # normalised 2547…/2541…
    delivery_address: str | None
    notes: str | None


@dataclass(frozen=True)
class OrderRecord:
    """One `orders` row."""

    id: str
    order_items: list[dict[str, Any]]
    total_amount: int
    delivery_fee: int
    currency: str
    customer_name: str
    customer_email: str | None
    customer_phone: str
    delivery_address: str | None
    notes: str | None
    status: str
    refund_due: bool
    refund_payment_ids: list[str]
    paid_by_payment_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> OrderRecord:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    def to_domain(self) -> Order:
        return Order(
            id=self.id,
            total=self.total_amount,
            status=Status(self.status),
            paid_by=self.paid_by_payment_id,
            refunds=tuple(self.refund_payment_ids),
        )

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(
            Item(i["productId"], i["productName"], i["quantity"], i["unitPrice"])
            for i in self.order_items
        )


def insert(conn: sa.Connection, new: NewOrder) -> OrderRecord:
    """Insert a `pending` order and its first event."""
    now = utcnow()
    order_id = str(uuid.uuid4())
    values = {
        "id": order_id,
        "order_items": [
            {
                "productId": i.product_id,
                "productName": i.product_name,
                "quantity": i.quantity,
                "unitPrice": i.unit_price,
            }
            for i in new.items
        ],
        "total_amount": new.total_amount,
        "delivery_fee": new.delivery_fee,
        "customer_name": new.customer_name,
        "customer_email": new.customer_email,
        "customer_phone": new.customer_phone,
        "customer_phone_index": phone_index(new.customer_phone),
        "delivery_address": new.delivery_address,
        "notes": new.notes,
        "status": Status.PENDING.value,
        "refund_payment_ids": [],
        "created_at": now,
        "updated_at": now,
    }
    row = conn.execute(orders.insert().values(**values).returning(orders)).one()
    data: dict[str, object] = {"totalAmount": new.total_amount, "items": len(new.items)}
    history.append(
        conn, order_events.c.order_id, order_id, "created", None, Status.PENDING.value, data, now
    )
    return OrderRecord.from_row(row)


def get(conn: sa.Connection, order_id: str, *, for_update: bool = False) -> OrderRecord | None:
    """The order `order_id`; `for_update` locks its row until the transaction ends."""
    try:
        uuid.UUID(order_id)
    except ValueError:
        return None
    query = sa.select(orders).where(orders.c.id == order_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return OrderRecord.from_row(row) if row else None


def apply(conn: sa.Connection, record: OrderRecord, change: Change) -> OrderRecord:
    """Write `change` if the order is still at `record.version`, with its event row.

    The one place an order's state changes. Raises `Conflict` when another transaction got
    there first.
    """
    after, now = change.after, utcnow()
    stmt = (
        orders.update()
        .where(orders.c.id == record.id, orders.c.version == record.version)
        .values(
            status=after.status.value,
            paid_by_payment_id=after.paid_by,
            refund_payment_ids=list(after.refunds),
            refund_due=after.refund_due,
            version=record.version + 1,
            updated_at=now,
        )
    )
    if conn.execute(stmt).rowcount != 1:
        raise Conflict(record.id)
    history.append(
        conn, order_events.c.order_id, record.id, change.event.kind,
        change.before.status.value, after.status.value, dict(change.event.data), now,
    )  # fmt: skip
    updated = get(conn, record.id)
    assert updated is not None
    return updated


def events(conn: sa.Connection, order_id: str) -> list[dict[str, Any]]:
    """The order's events, oldest first."""
    return history.of(conn, order_events.c.order_id, order_id)


def payment_ids(conn: sa.Connection, order_id: str) -> list[str]:
    """The ids of every payment made for the order, oldest first."""
    query = (
        sa.select(payments.c.id)
        .where(payments.c.order_id == order_id)
        .order_by(payments.c.created_at, payments.c.id)
    )
    return [str(pid) for pid in conn.execute(query).scalars()]


def in_flight_payment(conn: sa.Connection, order_id: str) -> str | None:
    """The id of the order's payment still in flight, if any."""
    query = sa.select(payments.c.id).where(
        payments.c.order_id == order_id,
        payments.c.status.in_(("created", "sending", "pushed", "unknown")),
    )
    found = conn.execute(query).scalar()
    return str(found) if found else None


def page(
    conn: sa.Connection,
    *,
    limit: int,
    status: str | None = None,
    refund_due: bool | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[OrderRecord]:
    """Up to `limit` orders, newest first, older than the `before` (created_at, id) cursor."""
    query = sa.select(orders).order_by(orders.c.created_at.desc(), orders.c.id.desc())
    if status is not None:
        query = query.where(orders.c.status == status)
    if refund_due is not None:
        query = query.where(orders.c.refund_due == refund_due)
    if before is not None:
        at, last_id = before
        query = query.where(
            sa.or_(
                orders.c.created_at < at,
                sa.and_(orders.c.created_at == at, orders.c.id < last_id),
            )
        )
    return [OrderRecord.from_row(row) for row in conn.execute(query.limit(limit))]


def claim_idempotency_key(conn: sa.Connection, key: str, fingerprint: str, order_id: str) -> None:
    conn.execute(
        order_idempotency_keys.insert().values(
            key=key, fingerprint=fingerprint, order_id=order_id, created_at=utcnow()
        )
    )


def idempotency_key(conn: sa.Connection, key: str) -> tuple[str, str] | None:
    """(fingerprint, order_id) stored for `key`, if any."""
    row = conn.execute(
        sa.select(order_idempotency_keys.c.fingerprint, order_idempotency_keys.c.order_id).where(
            order_idempotency_keys.c.key == key
        )
    ).first()
    return (row[0], str(row[1])) if row else None

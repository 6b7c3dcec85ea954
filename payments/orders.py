"""Orders: the shop says what is owed; the customer only says which phone pays (CONTRACT §7).

Creating, reading, listing and moving orders, and starting a payment whose amount and
fields come from its order. A payment's completion settles its order in the payment's own
transaction (payments/transitions.py `settle_order`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa

from domain.order import PAID, InvalidTransition, Moved, Status, decide
from payments import initiation, shop_webhooks
from payments.container import Container
from payments.transitions import in_races
from plumbing import sealing
from store import c2b, orders
from store.c2b import C2bRecord
from store.db import retrying
from store.orders import NewOrder, OrderRecord
from store.payments import NewPayment

__all__ = [
    "AmountMismatch",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "InvalidTransition",
    "OrderAlreadyPaid",
    "OrderCancelled",
    "OrderNotFound",
    "OrderView",
]

#: Most orders in one page of `GET /api/orders`.
MAX_PAGE = 100
DEFAULT_PAGE = 20


class OrderNotFound(Exception):
    """No such order (or one the caller may not see)."""


class OrderAlreadyPaid(Exception):
    """The order is confirmed or further along: it takes no more payments."""


class OrderCancelled(Exception):
    """The order was cancelled: it takes no payments."""


class AmountMismatch(Exception):
    """The request named an amount other than the order's total."""

    def __init__(self, asked: int, total: int) -> None:
        super().__init__(f"amount {asked} is not the order's total {total}")
        self.asked = asked
        self.total = total


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was first used with a different order."""


class InvalidCursor(ValueError):
    """A `cursor` this API did not hand out."""


@dataclass(frozen=True)
class OrderView:
    """An order with the ids of its payments (and its PayBill payments), as the API shows it."""

    order: OrderRecord
    payment_ids: list[str]
    replayed: bool = False
    paybill: list[C2bRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    orders: list[OrderView]
    next_cursor: str | None


def _fingerprint(new: NewOrder) -> str:
    canonical = json.dumps(asdict(new), sort_keys=True, separators=(",", ":"))
    # Keyed: a plain hash of a body holding a phone number could be matched by guessing.
    return sealing.current().keyed_digest(canonical.encode())


def create(c: Container, new: NewOrder, idempotency_key: str | None = None) -> OrderView:
    """Store a pending order; the same Idempotency-Key and body answer the first order again."""
    digest = _fingerprint(new)
    if idempotency_key and (earlier := _replay(c, idempotency_key, digest)):
        return earlier

    def insert() -> OrderRecord:
        with c.engine.begin() as conn:
            record = orders.insert(conn, new)
            if idempotency_key:
                orders.claim_idempotency_key(conn, idempotency_key, digest, record.id)
            return record

    try:
        record = retrying(insert, attempts=3)
    except sa.exc.IntegrityError:
        # A concurrent request with the same key won the race: answer as it did.
        if idempotency_key and (earlier := _replay(c, idempotency_key, digest)):
            return earlier
        raise
    return OrderView(record, [])


def _replay(c: Container, key: str, digest: str) -> OrderView | None:
    with c.engine.connect() as conn:
        stored = orders.idempotency_key(conn, key)
        if stored is None:
            return None
        if stored[0] != digest:
            raise IdempotencyKeyReused(key)
    view = get(c, stored[1])
    return dataclasses.replace(view, replayed=True)


def get(c: Container, order_id: str) -> OrderView:
    with c.engine.connect() as conn:
        record = orders.get(conn, order_id)
        if record is None:
            raise OrderNotFound(order_id)
        return _view(conn, record)


def list_orders(
    c: Container,
    *,
    status: str | None = None,
    refund_due: bool | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> Page:
    """A page of orders, newest first; `next_cursor` fetches the page after it."""
    limit = max(1, min(limit, MAX_PAGE))
    before = decode_cursor(cursor) if cursor else None
    with c.engine.connect() as conn:
        found = orders.page(
            conn, limit=limit + 1, status=status, refund_due=refund_due, before=before
        )
        views = [_view(conn, r) for r in found[:limit]]
    more = len(found) > limit
    last = found[limit - 1] if more else None
    return Page(views, encode_cursor(last.created_at, last.id) if last else None)


def _view(conn: sa.Connection, record: OrderRecord) -> OrderView:
    return OrderView(
        record, orders.payment_ids(conn, record.id), paybill=c2b.paid_to_order(conn, record.id)
    )


def encode_cursor(created_at: datetime, order_id: str) -> str:
    raw = f"{created_at.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, order_id = raw.split("|", 1)
        return datetime.fromisoformat(at), order_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor(cursor) from exc


def move(c: Container, order_id: str, to: Status) -> OrderView:
    """Move the order to `to` (shop or operator); `InvalidTransition` if the machine forbids it."""

    def attempt(conn: sa.Connection) -> None:
        record = orders.get(conn, order_id)
        if record is None:
            raise OrderNotFound(order_id)
        change = decide(record.to_domain(), Moved(to))
        if change is not None:
            updated = orders.apply(conn, record, change)
            shop_webhooks.order_changed(conn, c.settings, updated, change)

    # A backend killed mid-transaction (a failover, an operator) rolls the move back: try
    # again rather than answer 500. Run twice, a move that did commit changes nothing more.
    retrying(lambda: in_races(c.engine, attempt, order_id), attempts=3)
    return retrying(lambda: get(c, order_id), attempts=3)


def initiate_payment(
    c: Container,
    order_id: str,
    phone_number: str,
    *,
    amount: int | None = None,
    idempotency_key: str | None = None,
) -> initiation.Initiated:
    """Start a payment for the order: its amount, product and customer come from the order.

    Raises:
        OrderNotFound, OrderCancelled, OrderAlreadyPaid, AmountMismatch;
        store.payments.OrderBusy when another payment for the order is in flight, and
        PhoneBusy when the phone has one; initiation.IdempotencyKeyReused.
    """
    with c.engine.connect() as conn:
        record = orders.get(conn, order_id)
    if record is None:
        raise OrderNotFound(order_id)
    if amount is not None and amount != record.total_amount:
        raise AmountMismatch(amount, record.total_amount)
    _payable(record)

    def still_payable(conn: sa.Connection) -> None:
        # Locks the order until the payment is stored: a confirmation or a cancel that
        # commits meanwhile is seen here, not after money was asked for.
        locked = orders.get(conn, order_id, for_update=True)
        assert locked is not None
        _payable(locked)

    return initiation.initiate(
        c, _payment_for(record, phone_number), idempotency_key, guard=still_payable
    )


def _payable(record: OrderRecord) -> None:
    status = Status(record.status)
    if status is Status.CANCELLED:
        raise OrderCancelled(record.id)
    if status in PAID:
        raise OrderAlreadyPaid(record.id)


def _payment_for(record: OrderRecord, phone_number: str) -> NewPayment:
    items = record.items
    if len(items) == 1:
        product_id, product_name = items[0].product_id, items[0].product_name
    else:
        product_id = f"order-{record.id}"
        product_name = ", ".join(f"{i.quantity} x {i.product_name}" for i in items)
    return NewPayment(
        amount=record.total_amount,
        phone_number=phone_number,
        product_id=product_id[:100],
        product_name=product_name[:200],
        customer_name=record.customer_name,
        customer_email=record.customer_email or "",
        order_id=record.id,
    )

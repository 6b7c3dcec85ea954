"""Apply a domain fact to a stored payment: decide, then compare-and-set, retrying on a race.

Every change of a payment's state passes through here, so this is also where the shop's
webhook hears of a payment's end (`shop_webhooks.payment_changed`), and where a completed
payment settles its order (`settle_order`), both in the payment's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain import order
from domain.payment import Change, Fact, decide
from payments import shop_webhooks
from plumbing.settings import Settings
from store import c2b, orders, payments
from store.db import autocommit
from store.payments import COMPLETION_EVENTS, Conflict, PaymentRecord

#: How often we re-decide when another transaction changed the payment first.
MAX_RACES = 5
#: Event kinds that record a payment's receipt: its completion, or the receipt a callback
#: brings after an STK query completed it. A PayBill confirmation with the same receipt is
#: then known to be this same money (`paybill_twin`).
RECEIPT_EVENTS = COMPLETION_EVENTS | {"receipt_recorded"}

T = TypeVar("T")


def in_races(engine: Engine, work: Callable[[sa.Connection], T], what: str) -> T:
    """`work` in a transaction of its own, run again when it lost a race.

    A compare-and-set that finds its row changed by another transaction raises `Conflict`;
    `work` then decides afresh on what that transaction wrote, up to MAX_RACES times.
    """
    for _ in range(MAX_RACES):
        try:
            with engine.begin() as conn:
                return work(conn)
        except Conflict:
            continue
    raise Conflict(what)


def apply_fact(
    conn: sa.Connection, settings: Settings, record: PaymentRecord, fact: Fact, **extra: object
) -> tuple[PaymentRecord, Change | None]:
    """Decide `fact` against `record` and write it inside the caller's transaction."""
    change = decide(record.to_domain(), fact)
    if change is None:
        return record, None
    return _write(conn, settings, record, change, extra), change


def transition(
    engine: Engine,
    settings: Settings,
    payment_id: str,
    fact: Fact,
    extra: Callable[[Change], dict[str, object]] | None = None,
    *,
    known: PaymentRecord | None = None,
) -> Change | None:
    """Apply `fact` to payment `payment_id` in its own transaction; None if nothing changed.

    `known`: see `transition_record`."""
    applied = transition_record(engine, settings, payment_id, fact, extra, known=known)
    return applied[1] if applied else None


def transition_record(
    engine: Engine,
    settings: Settings,
    payment_id: str,
    fact: Fact,
    extra: Callable[[Change], dict[str, object]] | None = None,
    *,
    known: PaymentRecord | None = None,
) -> tuple[PaymentRecord, Change] | None:
    """`transition`, also giving the payment as written (no second read for the caller).

    `known` is the payment as this caller last wrote it: it is decided on without reading
    the row again; the compare-and-set finds out if it is stale (another transaction moved
    the payment since), and the payment is then read afresh.

    A change that writes only the payment and its event row (no order, no shop event, no
    PayBill twin), where the database writes both in one statement, costs no transaction:
    that statement is atomic, and the compare-and-set guards the read before it.
    """
    fresh = [known] if known is not None and known.id == payment_id else []

    def decided(conn: sa.Connection) -> tuple[PaymentRecord, Change] | None:
        if fresh:
            record = fresh.pop()
            change = decide(record.to_domain(), fact)
            if change is not None:
                return record, change
        found = payments.get(conn, payment_id)
        change = decide(found.to_domain(), fact) if found is not None else None
        return (found, change) if found is not None and change is not None else None

    def attempt(conn: sa.Connection) -> tuple[PaymentRecord, Change] | None:
        found = decided(conn)
        if found is None:
            return None
        record, change = found
        return _write(conn, settings, record, change, extra(change) if extra else {}), change

    if payments.writes_in_one_statement(engine):
        with autocommit(engine).connect() as conn:
            found = decided(conn)
            if found is None:
                return None
            record, change = found
            if not only_the_payment(change):
                fresh.append(record)  # written in a transaction, below
            else:
                try:
                    updated = payments.apply(
                        conn, record, change, **(extra(change) if extra else {})
                    )
                except Conflict:
                    pass  # decided on a stale copy: decide again on the row, below
                else:
                    return updated, change
    return in_races(engine, attempt, payment_id)


def only_the_payment(change: Change) -> bool:
    """True when `_write` writes nothing but the payment and its event for `change`: no
    completion and no receipt recorded (order, PayBill twin), and no move into a status the
    shop hears about."""
    return change.event.kind not in RECEIPT_EVENTS and shop_webhooks.shop_event(change) is None


def _write(
    conn: sa.Connection,
    settings: Settings,
    record: PaymentRecord,
    change: Change,
    extra: dict[str, object],
) -> PaymentRecord:
    settles = change.event.kind in COMPLETION_EVENTS and record.order_id is not None
    if settles:
        # Lock the order before writing the payment, in the order initiating for it takes
        # (order, then payments): the two can wait on each other but never deadlock.
        orders.get(conn, str(record.order_id), for_update=True)
    updated = payments.apply(conn, record, change, **extra)
    shop_webhooks.payment_changed(conn, settings, updated, change)
    counted_by_paybill = change.event.kind in RECEIPT_EVENTS and paybill_twin(conn, updated)
    if settles and not counted_by_paybill:
        settle_order(conn, settings, updated)
    return updated


def paybill_twin(conn: sa.Connection, paid: PaymentRecord) -> bool:
    """Record that a PayBill confirmation with `paid`'s receipt was this same money.

    A PayBill with C2B URLs also hears of STK payments as C2B confirmations, sometimes
    before the STK callback. The confirmation becomes a `duplicate` of `paid`; True when it
    had already counted that money for `paid`'s order (confirmed it, or made it a refund),
    so the order must not count it again.
    """
    if not paid.mpesa_receipt_number:
        return False
    twin = c2b.counted(conn, paid.mpesa_receipt_number)
    if twin is None:
        return False
    reason = f"the same money as STK payment {paid.id} (same receipt)"
    c2b.settle(conn, twin, c2b.DUPLICATE, reason=reason, payment_id=paid.id)
    return twin.order_id is not None and twin.order_id == paid.order_id and twin.state in (
        c2b.MATCHED, c2b.REFUND_DUE,
    )  # fmt: skip


def settle_order(
    conn: sa.Connection, settings: Settings, paid: PaymentRecord
) -> orders.OrderRecord | None:
    """Tell the order of payment `paid`, which just completed, in the payment's transaction.

    It confirms a pending order of that total; otherwise the money is a refund due. An
    order that changed meanwhile raises `orders.Conflict` (a payments `Conflict`), so the
    caller's retry decides the payment and the order again, together.
    """
    assert paid.order_id is not None
    record = orders.get(conn, paid.order_id)
    if record is None:
        return None  # the foreign key makes this impossible; never fail a payment for it
    change = order.decide(record.to_domain(), order.PaymentCompleted(paid.id, paid.amount))
    if change is None:
        return record
    updated = orders.apply(conn, record, change)
    shop_webhooks.order_changed(conn, settings, updated, change)
    return updated

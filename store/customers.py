"""One customer's data, found by phone: everything held (export) and erasing it.

Kenya's Data Protection Act 2019 gives a customer the right to see what is held about them
and to have it erased. Payments and orders are the shop's books: erasing keeps their
amounts, receipts, dates and states, replaces every personal field with `ERASED`, clears
their blind indexes, scrubs the raw records and event data that name the customer, and
appends a `customer_erased` event to each history.

PayBill (C2B) payments are found by the blind index of the MSISDN Daraja sent. C2B v2 sends
a SHA-256 digest of the number instead of the number (and v1 may send it masked): those
payments cannot be found by phone, so neither exported nor erased this way; their names
stay sealed in the body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.order import Status as OrderStatus
from plumbing import sealing
from store import history, raw
from store.db import utcnow
from store.sealed import phone_index
from store.tables import (
    IN_FLIGHT,
    c2b_payments,
    callback_inbox,
    daraja_exchanges,
    order_events,
    orders,
    payment_events,
    payments,
    refused_requests,
)

#: What an erased personal field holds from then on.
ERASED = "[erased]"
#: Refused requests are not indexed by phone: they are read this many at a time.
SCAN_BATCH = 500


class CustomerBusy(Exception):
    """A payment or order of the customer is not finished: erasing now would break it."""


@dataclass(frozen=True)
class Held:
    payment_ids: list[str]
    order_ids: list[str]
    callback_ids: list[int]
    exchange_ids: list[int]
    refused_ids: list[int]
    paybill_ids: list[str]


def find(conn: sa.Connection, msisdn: str) -> Held:
    """Every row that names the customer whose normalised number is `msisdn`."""
    index = phone_index(msisdn)
    pay = conn.execute(
        sa.select(payments.c.id, payments.c.callback_token, payments.c.checkout_index)
        .where(payments.c.phone_index == index)
        .order_by(payments.c.created_at)
    ).all()  # fmt: skip
    order_ids = conn.execute(
        sa.select(orders.c.id).where(orders.c.customer_phone_index == index)
        .order_by(orders.c.created_at)
    ).scalars().all()  # fmt: skip
    payment_ids = [str(p.id) for p in pay]
    inbox_where = [callback_inbox.c.payment_id.in_(payment_ids),
                   callback_inbox.c.path_token.in_([p.callback_token for p in pay]),
                   callback_inbox.c.checkout_index.in_([p.checkout_index for p in pay
                                                        if p.checkout_index])]  # fmt: skip
    callbacks = conn.execute(
        sa.select(callback_inbox.c.id).where(sa.or_(*inbox_where)).order_by(callback_inbox.c.id)
    ).scalars().all()  # fmt: skip
    exchanges = conn.execute(
        sa.select(daraja_exchanges.c.id).where(daraja_exchanges.c.payment_id.in_(payment_ids))
        .order_by(daraja_exchanges.c.id)
    ).scalars().all()  # fmt: skip
    paybill = conn.execute(
        sa.select(c2b_payments.c.id).where(c2b_payments.c.phone_index == index)
        .order_by(c2b_payments.c.received_at, c2b_payments.c.id)
    ).scalars().all()  # fmt: skip
    return Held(payment_ids, [str(o) for o in order_ids], list(callbacks), list(exchanges),
                _refused_naming(conn, msisdn), [str(p) for p in paybill])  # fmt: skip


def _refused_naming(conn: sa.Connection, msisdn: str) -> list[int]:
    """Refused requests whose body holds the number in any form (read in batches)."""
    national, found, after = msisdn[-9:], [], 0
    while True:
        rows = conn.execute(
            sa.select(refused_requests.c.id, refused_requests.c.body)
            .where(refused_requests.c.id > after).order_by(refused_requests.c.id)
            .limit(SCAN_BATCH)
        ).all()  # fmt: skip
        found += [r.id for r in rows if national in _digits(raw.open_personal(r.body))]
        if len(rows) < SCAN_BATCH:
            return found
        after = rows[-1].id


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def export(conn: sa.Connection, held: Held) -> dict[str, Any]:
    """Everything held about the customer, opened (it is for the customer)."""
    return {
        "payments": [{**_row(conn, payments, pid),
                      "events": history.of(conn, payment_events.c.payment_id, pid)}
                     for pid in held.payment_ids],
        "orders": [{**_row(conn, orders, oid),
                    "events": history.of(conn, order_events.c.order_id, oid)}
                   for oid in held.order_ids],
        "callbacks": [_raw_row(conn, callback_inbox, i, ("received_at", "state", "body"))
                      for i in held.callback_ids],
        "darajaExchanges": [_raw_row(conn, daraja_exchanges, i,
                                     ("operation", "sent_at", "request", "answer"))
                            for i in held.exchange_ids],
        "refusedRequests": [_raw_row(conn, refused_requests, i,
                                     ("received_at", "path", "reason", "body"))
                            for i in held.refused_ids],
        "paybillPayments": [_raw_row(conn, c2b_payments, i, _PAYBILL_SHOWN)
                            for i in held.paybill_ids],
    }  # fmt: skip


#: What an export shows of a PayBill request: what it paid, and the body as Safaricom sent it.
_PAYBILL_SHOWN = ("id", "kind", "received_at", "trans_id", "bill_ref_number", "amount", "state",
                  "order_id", "body")  # fmt: skip


_HIDDEN = frozenset({"phone_index", "checkout_index", "customer_phone_index", "callback_token"})


def _row(conn: sa.Connection, table: sa.Table, row_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(table).where(table.c.id == row_id)).one()
    return {k: v for k, v in row._mapping.items() if k not in _HIDDEN}


def _raw_row(conn: sa.Connection, table: sa.Table, row_id: int | str, names: Iterable[str]) -> Any:
    row = conn.execute(sa.select(*(table.c[n] for n in names)).where(table.c.id == row_id)).one()
    return {name: _opened(name, value) for name, value in row._mapping.items()}


def _opened(name: str, value: Any) -> Any:
    if name == "request":
        return raw.open_tree(value)
    if name in ("body", "answer") and value is not None:
        return raw.open_personal(value)
    return value


def unfinished(conn: sa.Connection, held: Held) -> str | None:
    """Why the customer cannot be erased yet (one line), or None."""
    busy = conn.execute(
        sa.select(payments.c.id).where(
            payments.c.id.in_(held.payment_ids),
            sa.or_(payments.c.status.in_(IN_FLIGHT), payments.c.next_query_at.is_not(None)),
        )
    ).scalar()  # fmt: skip
    if busy:
        return f"payment {busy} is still in flight (or still asked about); try again once it ends"
    pending = conn.execute(
        sa.select(orders.c.id).where(
            orders.c.id.in_(held.order_ids), orders.c.status == OrderStatus.PENDING.value
        )
    ).scalar()  # fmt: skip
    if pending:
        return f"order {pending} is still pending; cancel it first"
    return None


def erase(conn: sa.Connection, held: Held) -> None:
    """Erase the customer's personal data (see the module); `CustomerBusy` if unfinished."""
    reason = unfinished(conn, held)
    if reason:
        raise CustomerBusy(reason)
    now = utcnow()
    for pid in held.payment_ids:
        # A new version: a transition that read the payment before (a late callback) fails
        # its compare-and-set and decides again on the erased row, never writing it back.
        conn.execute(payments.update().where(payments.c.id == pid).values(
            phone_number=ERASED, customer_name=ERASED, customer_email=ERASED,
            phone_index=None, checkout_request_id=None, checkout_index=None,
            version=payments.c.version + 1,
        ))  # fmt: skip
        _close_history(conn, payments, payment_events.c.payment_id, pid, now)
    for oid in held.order_ids:
        conn.execute(orders.update().where(orders.c.id == oid).values(
            customer_name=ERASED, customer_email=None, customer_phone=ERASED,
            customer_phone_index=None, delivery_address=None, notes=None,
        ))  # fmt: skip
        _close_history(conn, orders, order_events.c.order_id, oid, now)
    for cid in held.callback_ids:
        body = conn.execute(sa.select(callback_inbox.c.body).where(callback_inbox.c.id == cid))
        conn.execute(callback_inbox.update().where(callback_inbox.c.id == cid).values(
            body=erase_text(body.scalar_one()), checkout_request_id=None, checkout_index=None,
        ))  # fmt: skip
    for xid in held.exchange_ids:
        row = conn.execute(
            sa.select(daraja_exchanges.c.request, daraja_exchanges.c.answer)
            .where(daraja_exchanges.c.id == xid)
        ).one()  # fmt: skip
        conn.execute(daraja_exchanges.update().where(daraja_exchanges.c.id == xid).values(
            request=erase_tree(raw.seal_tree(row.request)),
            answer=row.answer and erase_text(row.answer),
        ))  # fmt: skip
    for pid in held.paybill_ids:
        body = conn.execute(sa.select(c2b_payments.c.body).where(c2b_payments.c.id == pid))
        conn.execute(c2b_payments.update().where(c2b_payments.c.id == pid).values(
            body=erase_text(body.scalar_one()), bill_ref_number=ERASED, phone_index=None,
        ))  # fmt: skip
    if held.refused_ids:
        conn.execute(
            refused_requests.update().where(refused_requests.c.id.in_(held.refused_ids))
            .values(body=ERASED)
        )  # fmt: skip


def _close_history(
    conn: sa.Connection, table: sa.Table, owner: sa.Column[Any], owner_id: str, now: Any
) -> None:
    events = owner.table
    for event_id, old in conn.execute(
        sa.select(events.c.id, events.c.data).where(owner == owner_id)
    ).all():
        scrubbed = erase_tree(raw.seal_tree(old))
        if scrubbed != old:
            conn.execute(events.update().where(events.c.id == event_id).values(data=scrubbed))
    status = conn.execute(sa.select(table.c.status).where(table.c.id == owner_id)).scalar_one()
    data: dict[str, object] = {"reason": "the customer asked for their data to be erased"}
    history.append(conn, owner, owner_id, "customer_erased", status, status, data, now)


def erase_tree(node: Any) -> Any:
    """A sealed tree with every sealed value replaced by `ERASED`."""
    if isinstance(node, dict):
        return {erase_tree(k): erase_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [erase_tree(v) for v in node]
    return ERASED if isinstance(node, str) and sealing.is_sealed(node) else node


def erase_text(text: str) -> str:
    """A raw body with its personal values (sealed first, if stored clear) made `ERASED`."""
    return sealing.TOKEN.sub(ERASED, raw.seal_personal(text))

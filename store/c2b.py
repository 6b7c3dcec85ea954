"""PayBill (C2B) requests: stored at the door, then settled once by compare-and-set.

Each row is one validation or confirmation request exactly as Safaricom sent it (`body`,
made storable by `store.raw`), plus what we read from it and where matching it ended. The
payer's personal fields stay inside `body` under Daraja's own keys (MSISDN, FirstName,
MiddleName, LastName), sealed in place (`raw.seal_personal`); no column holds them.
`phone_index` is the blind index of the MSISDN when Daraja sent a number: C2B v2 sends a
SHA-256 digest of it instead, and such a payment cannot be found by phone.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.phone import InvalidPhoneNumber, normalise_msisdn
from store import payments as payments_store
from store import raw
from store.db import utcnow
from store.sealed import phone_index
from store.tables import C2B_COUNTED, c2b_payments, orders

VALIDATION, CONFIRMATION = "validation", "confirmation"
#: Confirmation states. `received` waits for a worker; the rest are where it ended.
RECEIVED, MATCHED, REFUND_DUE, UNMATCHED, DUPLICATE = (
    "received", "matched", "refund_due", "unmatched", "duplicate",
)  # fmt: skip
#: Kept, but never applied: not on the secret URL (untrusted) or refused at the door.
UNTRUSTED, REJECTED = "untrusted", "rejected"
#: Validation states: what Safaricom was told.
ACCEPTED, DECLINED = "accepted", "declined"
#: Confirmations whose money is counted once: one per receipt (a unique index holds it).
COUNTED = C2B_COUNTED
#: Confirmations a person must look at: money that paid no order.
NEEDS_OPERATOR = (UNMATCHED, REFUND_DUE, UNTRUSTED)
#: Widths of the columns a stranger's values go into.
REASON_WIDTH, TRANS_ID_WIDTH, REF_WIDTH, HEADER_WIDTH = 255, 32, 64, 256


class Conflict(payments_store.Conflict):
    """The row moved on under us (another worker settled it): reload and look again.

    A kind of the payments' Conflict: a PayBill twin of an STK payment is settled in that
    payment's transaction, whose retry loops then decide both again.
    """


@dataclass(frozen=True)
class C2bRecord:
    """One `c2b_payments` row."""

    id: str
    kind: str
    received_at: datetime
    source_ip: str | None
    body: str
    trans_id: str | None
    bill_ref_number: str | None
    amount: int | None
    state: str
    reason: str | None
    order_id: str | None
    payment_id: str | None
    result_code: str | None
    version: int
    processed_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> C2bRecord:
        m = row._mapping
        opened = {"body": raw.open_personal(m["body"])}
        return cls(**{f.name: opened.get(f.name, m[f.name]) for f in fields(cls)})


def payer_msisdn(body: str) -> str | None:
    """The payer's normalised number in a C2B body (clear or sealed), if it holds one.

    C2B v2 sends a SHA-256 digest of the number instead: no number, so None.
    """
    try:
        data = json.loads(raw.open_personal(body))
    except (ValueError, RecursionError):
        return None
    value = data.get("MSISDN") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    try:
        return normalise_msisdn(value)
    except InvalidPhoneNumber:
        return None


def payer_index(body: str) -> str | None:
    """The blind index of the payer's number in a C2B body; None when it holds none."""
    msisdn = payer_msisdn(body)
    return phone_index(msisdn) if msisdn else None


def add(
    conn: sa.Connection,
    *,
    kind: str,
    body: str,
    source_ip: str | None,
    headers: dict[str, str],
    state: str,
    trans_id: str | None = None,
    bill_ref_number: str | None = None,
    amount: int | None = None,
    reason: str | None = None,
    result_code: str | None = None,
    order_id: str | None = None,
) -> str:
    """Store one request as it came; returns its id. Strangers' values are made storable."""
    row_id = str(uuid.uuid4())
    kept = {raw.text(k, 64): raw.text(v, HEADER_WIDTH) for k, v in headers.items()}
    conn.execute(
        c2b_payments.insert().values(
            id=row_id, kind=kind, received_at=utcnow(),
            source_ip=source_ip and raw.text(source_ip, 64), headers=kept,
            body=raw.seal_personal(body), phone_index=payer_index(body),
            trans_id=trans_id and raw.text(trans_id, TRANS_ID_WIDTH),
            bill_ref_number=bill_ref_number and raw.text(bill_ref_number, REF_WIDTH),
            amount=amount, state=state, reason=reason and raw.text(reason, REASON_WIDTH),
            result_code=result_code, order_id=order_id,
            processed_at=None if state == RECEIVED else utcnow(),
        )
    )  # fmt: skip
    return row_id


def get(conn: sa.Connection, record_id: str) -> C2bRecord | None:
    try:
        uuid.UUID(record_id)
    except ValueError:
        return None
    row = conn.execute(sa.select(c2b_payments).where(c2b_payments.c.id == record_id)).first()
    return C2bRecord.from_row(row) if row else None


def settle(
    conn: sa.Connection,
    record: C2bRecord,
    state: str,
    *,
    reason: str | None,
    order_id: str | None = None,
    payment_id: str | None = None,
) -> None:
    """Move `record` to `state` if it is still at its version; `Conflict` if not.

    A counted state taken by another confirmation of the same receipt also raises
    `Conflict` (the unique index); the transaction is then spoilt, and the caller's retry
    (a new transaction) finds that one and records a duplicate.
    """
    stmt = (
        c2b_payments.update()
        .where(c2b_payments.c.id == record.id, c2b_payments.c.version == record.version)
        .values(
            state=state, reason=reason and raw.text(reason, REASON_WIDTH),
            order_id=order_id or record.order_id, payment_id=payment_id or record.payment_id,
            version=record.version + 1, processed_at=utcnow(),
        )
    )  # fmt: skip
    try:
        changed = conn.execute(stmt).rowcount
    except sa.exc.IntegrityError as exc:  # the caller's transaction rolls back and retries
        raise Conflict(record.id) from exc
    if changed != 1:
        raise Conflict(record.id)


#: `counted`'s look-up, built once: every STK payment that completes runs it.
_COUNTED = sa.select(c2b_payments).where(
    c2b_payments.c.trans_id == sa.bindparam("trans_id"), c2b_payments.c.state.in_(COUNTED)
)


def counted(conn: sa.Connection, trans_id: str) -> C2bRecord | None:
    """The confirmation already counted for receipt `trans_id`, if any."""
    row = conn.execute(_COUNTED, {"trans_id": trans_id}).first()
    return C2bRecord.from_row(row) if row else None


def paid_to_order(conn: sa.Connection, order_id: str) -> list[C2bRecord]:
    """The PayBill confirmations whose money went to order `order_id` (paid it, or is a
    refund due on it), oldest first."""
    t = c2b_payments
    query = (
        sa.select(t)
        .where(t.c.order_id == order_id, t.c.state.in_((MATCHED, REFUND_DUE)))
        .order_by(t.c.received_at, t.c.id)
    )
    return [C2bRecord.from_row(row) for row in conn.execute(query)]


def order_ids_between(conn: sa.Connection, low: str, high: str, *, limit: int = 2) -> list[str]:
    """Ids of orders from `low` to `high` (a PayBill reference's range), at most `limit`."""
    query = (
        sa.select(orders.c.id)
        .where(orders.c.id >= low, orders.c.id <= high)
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [str(order_id) for order_id in conn.execute(query).scalars()]


def stale(conn: sa.Connection, before: datetime, limit: int) -> list[str]:
    """Confirmations still `received` since before `before` (their job may be lost); their
    `received_at` moves to now so the next pass does not take them again at once."""
    t = c2b_payments
    ids = conn.execute(
        sa.select(t.c.id)
        .where(t.c.state == RECEIVED, t.c.received_at < before)
        .order_by(t.c.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars().all()  # fmt: skip
    if ids:
        conn.execute(t.update().where(t.c.id.in_(ids)).values(received_at=utcnow()))
    return [str(i) for i in ids]


def page(
    conn: sa.Connection,
    *,
    states: tuple[str, ...] | None = None,
    kind: str | None = CONFIRMATION,
    limit: int = 50,
) -> list[C2bRecord]:
    """The newest requests, optionally only those in `states` (and of `kind`)."""
    t = c2b_payments
    query = sa.select(t).order_by(t.c.received_at.desc(), t.c.id.desc()).limit(limit)
    if states:
        query = query.where(t.c.state.in_(states))
    if kind:
        query = query.where(t.c.kind == kind)
    return [C2bRecord.from_row(row) for row in conn.execute(query)]


def needing_operator(conn: sa.Connection, since: datetime, limit: int) -> list[C2bRecord]:
    """Confirmations since `since` whose money paid no order (for the alerts)."""
    t = c2b_payments
    query = (
        sa.select(t)
        .where(t.c.kind == CONFIRMATION, t.c.state.in_(NEEDS_OPERATOR), t.c.received_at >= since)
        .order_by(t.c.received_at.desc())
        .limit(limit)
    )
    return [C2bRecord.from_row(row) for row in conn.execute(query)]

"""Payments and their events: inserts, look-ups and compare-and-set transitions."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from domain.payment import FINAL, Change, Payment, Status
from plumbing import correlation
from store import exchanges, history
from store.db import is_unique_violation, utcnow
from store.inbox import PROCESSED, UNMATCHED, InboxRow
from store.inbox import from_row as inbox_row
from store.outbox import Job
from store.sealed import checkout_index, phone_index
from store.tables import (
    IN_FLIGHT,
    c2b_payments,
    callback_inbox,
    idempotency_keys,
    outbox,
    payment_events,
    payments,
)

#: `payment_events.data["analytics"]` of the `created` event.
ANALYTICS_INITIATED = "payment_initiated"
#: `payment_events.data["analytics"]` of the event that completes a payment.
ANALYTICS_COMPLETED = "payment_completed"
#: Event kinds that complete a payment (on time, or after we had given up).
COMPLETION_EVENTS = frozenset({"completed", "late_success"})


class PhoneBusy(Exception):
    """Another payment for this phone number is still in flight."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(payment_id)
        self.payment_id = payment_id


class OrderBusy(Exception):
    """Another payment for this order is still in flight."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(payment_id)
        self.payment_id = payment_id


class Conflict(Exception):
    """The payment changed under us; reload and decide again."""


@dataclass(frozen=True)
class NewPayment:
    amount: int
    phone_number: str  # normalised 2547…/2541…
    product_id: str
    product_name: str
    customer_name: str
    customer_email: str
    order_id: str | None


@dataclass(frozen=True)
class PaymentRecord:
    """One `payments` row."""

    id: str
    amount: int
    currency: str
    phone_number: str
    product_id: str
    product_name: str
    customer_name: str
    customer_email: str
    order_id: str | None
    status: str
    checkout_request_id: str | None
    merchant_request_id: str | None
    mpesa_receipt_number: str | None
    receipt_pending: bool
    transaction_date: datetime | None
    result_code: int | None
    result_desc: str | None
    failure_reason: str | None
    late_success: bool
    push_attempts: int
    callback_token: str
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_query_at: datetime | None
    query_attempts: int

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> PaymentRecord:
        m = row._mapping
        return cls(*[m[name] for name in _FIELDS])

    def to_domain(self) -> Payment:
        return Payment(
            id=self.id,
            amount=self.amount,
            status=Status(self.status),
            checkout_request_id=self.checkout_request_id,
            merchant_request_id=self.merchant_request_id,
            receipt=self.mpesa_receipt_number,
            receipt_pending=self.receipt_pending,
            transaction_date=self.transaction_date,
            result_code=self.result_code,
            result_desc=self.result_desc,
            failure_reason=self.failure_reason,
            late_success=self.late_success,
            push_attempts=self.push_attempts,
        )


def _bound(table: sa.Table, names: tuple[str, ...], prefix: str) -> dict[str, Any]:
    # Named apart from the columns: SQLAlchemy keeps a column's own name for its VALUES.
    return {name: sa.bindparam(prefix + name, type_=table.c[name].type) for name in names}


#: A new payment's rows as pre-built statements, bound by name: the payment, its
#: `created` event, its Idempotency-Key (if any) and the outbox job that pushes it. They
#: share the payment's id and time, so PostgreSQL runs them as one statement (`create`).
_PAYMENT_VALUES = _bound(payments, (
    "id", "amount", "phone_number", "phone_index", "product_id", "product_name",
    "customer_name", "customer_email", "order_id", "status", "callback_token", "created_at",
), "p_")  # fmt: skip
_PAYMENT = (
    payments.insert()
    .values({**_PAYMENT_VALUES, "updated_at": _PAYMENT_VALUES["created_at"]})
    .returning(*payments.c)
)
_SHARED = {"payment_id": _PAYMENT_VALUES["id"], "created_at": _PAYMENT_VALUES["created_at"]}
_EVENT = payment_events.insert().values({
    **_bound(payment_events, ("kind", "from_status", "to_status", "data"), "e_"), **_SHARED,
})  # fmt: skip
_KEY = idempotency_keys.insert().values({
    **_bound(idempotency_keys, ("key", "fingerprint"), "k_"), **_SHARED,
})  # fmt: skip
_JOB = (
    outbox.insert()
    .values({
        **_bound(outbox, ("queue", "actor", "args", "correlation_id"), "j_"),
        "created_at": _PAYMENT_VALUES["created_at"],
    })
    .returning(outbox.c.id.label("job_id"))
)  # fmt: skip


def _one_statement(with_key: bool) -> sa.Select[Any]:
    """The four inserts as data-modifying CTEs of one statement (PostgreSQL).

    PostgreSQL checks foreign keys at the end of a statement, so the event, key and job rows
    may name the payment a sibling CTE inserts; one statement in autocommit is atomic.
    """
    payment, job = _PAYMENT.cte("new_payment"), _JOB.cte("new_job")
    one_row_each = payment.join(job, sa.true())
    query = sa.select(payment, job.c.job_id).select_from(one_row_each)
    query = query.add_cte(_EVENT.cte("new_event"))
    return query.add_cte(_KEY.cte("new_key")) if with_key else query


_CREATE = {True: _one_statement(True), False: _one_statement(False)}


def _new_payment_params(new: NewPayment, payment_id: str) -> dict[str, Any]:
    """The bound values of a new payment's row (`p_…`) and of its `created` event (`e_…`)."""
    now = utcnow()
    return {
        **{f"p_{name}": value for name, value in new.__dict__.items()},
        "p_phone_index": phone_index(new.phone_number),
        "p_id": payment_id,
        "p_status": Status.CREATED.value,
        "p_callback_token": secrets.token_urlsafe(24),
        "p_created_at": now,
        **{f"e_{name}": value for name, value in _created_event(new, payment_id, now).items()},
    }


def create(
    conn: sa.Connection,
    new: NewPayment,
    job: tuple[str, str],
    key: tuple[str, str] | None = None,
) -> tuple[PaymentRecord, Job]:
    """Insert a `created` payment, its first event, its Idempotency-Key `key` (key,
    fingerprint) if any, and the outbox job `job` (queue, actor) with the payment's id.

    On PostgreSQL this is one statement, atomic by itself (in autocommit too); elsewhere
    the same statements run one by one, so call it inside a transaction.

    Raises:
        PhoneBusy: the phone has a payment in flight.
        OrderBusy: the order has a payment in flight.
        sa.exc.IntegrityError: another unique violation (the Idempotency-Key is taken).
    """
    payment_id, correlation_id = str(uuid.uuid4()), correlation.current()
    params: dict[str, Any] = {
        **_new_payment_params(new, payment_id),
        "j_queue": job[0], "j_actor": job[1], "j_args": [payment_id],
        "j_correlation_id": correlation_id,
    }  # fmt: skip
    if key is not None:
        params["k_key"], params["k_fingerprint"] = key
    try:
        if conn.dialect.name == "postgresql":
            row = conn.execute(_CREATE[key is not None], params).one()
            job_id = row.job_id
        else:
            row = conn.execute(_PAYMENT, params).one()
            conn.execute(_EVENT, params)
            if key is not None:
                conn.execute(_KEY, params)
            job_id = conn.execute(_JOB, params).scalar_one()
    except sa.exc.IntegrityError as exc:
        _raise_busy(exc)
        raise
    record = PaymentRecord.from_row(row)
    return record, Job(int(job_id), job[0], job[1], [payment_id], correlation_id)


#: PaymentRecord's fields in order, and the columns a look-up reads for them.
_FIELDS = tuple(f.name for f in fields(PaymentRecord))
_RECORD = sa.select(*(payments.c[name] for name in _FIELDS))
#: A look-up by each unique key, built once: a read neither builds nor keys a statement.
_BY = {
    key: _RECORD.where(payments.c[key] == sa.bindparam("key"))
    for key in ("id", "checkout_index", "callback_token", "mpesa_receipt_number")
}


def insert(conn: sa.Connection, new: NewPayment) -> PaymentRecord:
    """Insert a `created` payment and its first event; `PhoneBusy` if the phone is in flight."""
    params = _new_payment_params(new, str(uuid.uuid4()))
    try:
        row = conn.execute(_PAYMENT, params).one()
    except sa.exc.IntegrityError as exc:
        _raise_busy(exc)  # the transaction is spoilt now; the caller looks the other up
        raise
    conn.execute(_EVENT, params)
    return PaymentRecord.from_row(row)


def _raise_busy(exc: sa.exc.IntegrityError) -> None:
    if is_unique_violation(exc, "uq_payments_phone_in_flight"):
        raise PhoneBusy("") from exc
    if is_unique_violation(exc, "uq_payments_order_in_flight"):
        raise OrderBusy("") from exc


def _created_event(new: NewPayment, payment_id: str, at: datetime) -> dict[str, object]:
    values = history.row(
        payment_events.c.payment_id, payment_id, "created", None, Status.CREATED.value,
        _initiated(new), at,
    )  # fmt: skip
    return {k: v for k, v in values.items() if k not in _SHARED}


def _initiated(new: NewPayment) -> dict[str, object]:
    # The "payment initiated" analytics event: ids and amounts only, no personal data.
    return {
        "analytics": ANALYTICS_INITIATED, "amount": new.amount,
        "productId": new.product_id, "orderId": new.order_id,
    }  # fmt: skip


def in_flight_for(conn: sa.Connection, phone: str) -> str | None:
    """The id of the payment still in flight for `phone`, if any."""
    query = sa.select(payments.c.id).where(
        payments.c.phone_index == phone_index(phone),
        payments.c.status.in_(("created", "sending", "pushed", "unknown")),
    )
    return conn.execute(query).scalar()


def get(conn: sa.Connection, payment_id: str) -> PaymentRecord | None:
    try:
        uuid.UUID(payment_id)
    except ValueError:
        return None
    return _one(conn, "id", payment_id)


#: Longest paymentId or CheckoutRequestID (the column's width).
MAX_REF = 64


def find(conn: sa.Connection, ref: str) -> PaymentRecord | None:
    """The payment whose id or CheckoutRequestID is `ref`."""
    return get(conn, ref) or by_checkout(conn, ref)


def by_checkout(conn: sa.Connection, checkout_request_id: str) -> PaymentRecord | None:
    ref = checkout_request_id
    if not (ref.isascii() and ref.isprintable()) or len(ref) > MAX_REF:
        return None  # no id looks like this (and PostgreSQL refuses NUL in a parameter)
    return _one(conn, "checkout_index", checkout_index(ref))


#: The payment of a callback URL's token and the one holding a receipt, in one look-up.
_BY_TOKEN_OR_RECEIPT = _RECORD.where(
    sa.or_(
        payments.c.callback_token == sa.bindparam("token"),
        payments.c.mpesa_receipt_number == sa.bindparam("receipt"),
    )
)


def by_token_and_receipt(
    conn: sa.Connection, token: str, receipt: str | None
) -> tuple[PaymentRecord | None, PaymentRecord | None]:
    """`by_token(token)` and `by_receipt(receipt)` (None without a receipt), in one look-up."""
    if receipt is None:
        return by_token(conn, token), None
    rows = conn.execute(_BY_TOKEN_OR_RECEIPT, {"token": token, "receipt": receipt}).all()
    found = [PaymentRecord.from_row(row) for row in rows]
    owner = next((r for r in found if r.callback_token == token), None)
    holder = next((r for r in found if r.mpesa_receipt_number == receipt), None)
    return owner, holder


def by_token(conn: sa.Connection, token: str) -> PaymentRecord | None:
    return _one(conn, "callback_token", token)


def by_receipt(conn: sa.Connection, receipt: str) -> PaymentRecord | None:
    return _one(conn, "mpesa_receipt_number", receipt)


def in_flight_before(
    conn: sa.Connection, cutoff: datetime, limit: int
) -> tuple[int, list[PaymentRecord]]:
    """How many payments in flight were created before `cutoff`, and the oldest `limit`."""
    where = sa.and_(payments.c.status.in_(IN_FLIGHT), payments.c.created_at < cutoff)
    total = conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
    rows = conn.execute(
        sa.select(payments).where(where).order_by(payments.c.created_at).limit(limit)
    )
    return int(total), [PaymentRecord.from_row(row) for row in rows]


def _one(conn: sa.Connection, key: str, value: str) -> PaymentRecord | None:
    """The payment whose unique `key` column holds `value`."""
    row = conn.execute(_BY[key], {"key": value}).first()
    return PaymentRecord(*row) if row else None


def _prepared(
    record: PaymentRecord, change: Change, extra: dict[str, object]
) -> tuple[tuple[str, ...], dict[str, object], tuple[Any, ...]]:
    """The columns written by `change`, the statement's parameters and the event row."""
    after, now = change.after, utcnow()
    values: dict[str, object] = {
        "status": after.status.value,
        "checkout_request_id": after.checkout_request_id,
        "checkout_index": after.checkout_request_id and checkout_index(after.checkout_request_id),
        "merchant_request_id": after.merchant_request_id,
        "mpesa_receipt_number": after.receipt,
        "receipt_pending": after.receipt_pending,
        "transaction_date": after.transaction_date,
        "result_code": after.result_code,
        "result_desc": after.result_desc,
        "failure_reason": after.failure_reason,
        "late_success": after.late_success,
        "push_attempts": after.push_attempts,
        "version": record.version + 1,
        "updated_at": now,
        **extra,
    }
    if after.status in FINAL and change.before.status not in FINAL:
        values["finished_at"] = now
    if after.status in FINAL and after.failure_reason != "timeout":
        # Daraja told us how it ended: no more queries. An expiry is only our own patience
        # running out, so an expired payment keeps being asked about (late successes).
        values.setdefault("next_query_at", None)
    columns, params = tuple(values), _update_params(record, values)
    event = (
        change.event.kind, change.before.status.value, after.status.value,
        _event_data(record, change, now), now,
    )  # fmt: skip
    return columns, params, event


def apply(
    conn: sa.Connection, record: PaymentRecord, change: Change, **extra: object
) -> PaymentRecord:
    """Write `change` if the row is still at `record.version`, with its event row.

    Raises `Conflict` when another transaction got there first.
    """
    columns, params, event = _prepared(record, change, extra)
    if writes_in_one_statement(conn):
        # The compare-and-set and its event row in one statement: atomic on its own.
        params.update(history.event_params(*event))
        row = conn.execute(_update_with_event(columns), params).first()
        if row is None:
            raise Conflict(record.id)
        return _as_written(record, columns, params, row)
    row = conn.execute(_update_statement(columns), params).first()
    if row is None:
        raise Conflict(record.id)
    history.append(conn, payment_events.c.payment_id, record.id, *event)
    return _as_written(record, columns, params, row)


def apply_seeing_unmatched(
    conn: sa.Connection,
    record: PaymentRecord,
    change: Change,
    answer: dict[str, object] | None = None,
    **extra: object,
) -> tuple[PaymentRecord, bool]:
    """`apply` in one statement (only where `writes_in_one_statement`), also telling whether
    a callback naming the payment's CheckoutRequestID as written waits as `unmatched`.

    A push answer is recorded and its early callbacks looked for in one round trip; with
    `answer` (`exchanges.answer_params`), the same statement stores the raw answer the
    change acts on, whether or not the change is written.
    Raises `Conflict` when another transaction got there first.
    """
    assert writes_in_one_statement(conn)
    columns, params, event = _prepared(record, change, extra)
    params.update(history.event_params(*event))
    params.update(answer or {})
    stmt = _update_with_event(columns, seeing_unmatched=True, answering=answer is not None)
    row = conn.execute(stmt, params).first()
    if row is None:
        raise Conflict(record.id)
    return _as_written(record, columns, params, row), bool(row._mapping["unmatched_waits"])


def apply_requesting(
    conn: sa.Connection, record: PaymentRecord, change: Change, request: dict[str, object]
) -> tuple[PaymentRecord, int]:
    """`apply` in one statement (only where `writes_in_one_statement`) that also stores the
    Daraja request (`exchanges.request_params`) the change is made for, if it is written:
    the payment as written and the request's exchange id.

    Raises `Conflict` when another transaction got there first (nothing is stored then).
    """
    assert writes_in_one_statement(conn)
    columns, params, event = _prepared(record, change, {})
    params.update(history.event_params(*event))
    params.update(request)
    row = conn.execute(_update_with_event(columns, requesting=True), params).first()
    if row is None:
        raise Conflict(record.id)
    return _as_written(record, columns, params, row), int(row._mapping["request_id"])


def callback_and_payment(
    conn: sa.Connection, inbox_id: int
) -> tuple[InboxRow, PaymentRecord | None] | None:
    """Stored callback `inbox_id` and the payment of the token URL it came on, in one look-up;
    None when there is no such callback."""
    row = conn.execute(_CALLBACK_AND_PAYMENT, {"inbox_id": inbox_id}).first()
    if row is None:
        return None
    m = row._mapping
    owner = PaymentRecord(*[m[f"p_{name}"] for name in _FIELDS]) if m["p_id"] else None
    return inbox_row(row), owner


def apply_processing_callback(
    conn: sa.Connection,
    record: PaymentRecord,
    change: Change,
    inbox_id: int,
    reported_receipt: str | None,
) -> PaymentRecord:
    """`apply` in one statement (only where `writes_in_one_statement`) for a change the stored
    callback `inbox_id` brought, which that statement also marks `processed`.

    It writes nothing when a PayBill confirmation holds the receipt the change records (that
    money may be counted already: the caller takes the path that settles such twins), or
    when another payment holds the receipt the callback reported (`reported_receipt`: the
    caller's long way refuses that callback), and raises `Conflict` then, as when another
    transaction moved the payment first.
    """
    assert writes_in_one_statement(conn)
    columns, params, event = _prepared(record, change, {})
    params.update(history.event_params(*event))
    params.update(
        twin_receipt=change.after.receipt,
        reported_receipt=reported_receipt,
        inbox_id=inbox_id,
        f_state=PROCESSED,
        f_payment_id=record.id,
        f_at=utcnow(),
    )
    row = conn.execute(_processing_callback(columns), params).first()
    if row is None:
        raise Conflict(record.id)
    return _as_written(record, columns, params, row)


def writes_in_one_statement(conn: sa.Connection | sa.Engine) -> bool:
    """True when `apply` writes a payment and its event row in one statement, so it needs no
    transaction of its own (PostgreSQL: a data-modifying WITH; SQLite takes two)."""
    return conn.dialect.name == "postgresql"


#: The compare-and-set UPDATE per set of columns written, built once each (a handful).
_UPDATES: dict[tuple[str, ...], sa.Update] = {}


def _update_statement(columns: tuple[str, ...]) -> sa.Update:
    stmt = _UPDATES.get(columns)
    if stmt is None:
        c = payments.c
        stmt = (
            payments.update()
            .where(c.id == sa.bindparam("w_id"), c.version == sa.bindparam("w_version"))
            .values({name: sa.bindparam(f"v_{name}", type_=c[name].type) for name in columns})
            # What the statements built on it read, and the query schedule, which the
            # reconciliation pass moves without a new version; the rest of the row as
            # written is the record with the values written (`_as_written`), not read
            # back: a payment row is 27 columns, 4 of them sealed, and reading them back
            # cost a tenth of a job.
            .returning(c.id, c.checkout_index, *(c[name] for name in _SCHEDULE))
        )
        _UPDATES[columns] = stmt
    return stmt


#: `_update_statement` with the event row appended in the same statement, per column set
#: and companion (`_update_with_event`'s flags).
_UPDATES_WITH_EVENT: dict[tuple[tuple[str, ...], bool, bool, bool], sa.Select[Any]] = {}


def _update_with_event(
    columns: tuple[str, ...],
    *,
    seeing_unmatched: bool = False,
    answering: bool = False,
    requesting: bool = False,
) -> sa.Select[Any]:
    key = (columns, seeing_unmatched, answering, requesting)
    stmt = _UPDATES_WITH_EVENT.get(key)
    if stmt is None:
        moved = _update_statement(columns).cte("moved")
        appended = history.appended_after(payment_events.c.payment_id, moved)
        stmt = sa.select(moved).add_cte(appended)
        if seeing_unmatched:
            waiting = sa.exists().where(
                callback_inbox.c.checkout_index == moved.c.checkout_index,
                callback_inbox.c.state == UNMATCHED,
            )
            stmt = stmt.add_columns(waiting.label("unmatched_waits"))
        if answering:
            stmt = stmt.add_cte(exchanges.ANSWER.cte("answered"))
        if requesting:
            requested = exchanges.requested_after(moved)
            stmt = stmt.add_columns(sa.select(requested.c.id).scalar_subquery().label("request_id"))
        _UPDATES_WITH_EVENT[key] = stmt
    return stmt


#: A stored callback joined with the payment of its URL's token (columns `p_<name>`).
_CALLBACK_AND_PAYMENT = (
    sa.select(callback_inbox, *(payments.c[name].label(f"p_{name}") for name in _FIELDS))
    .select_from(
        callback_inbox.outerjoin(payments, payments.c.callback_token == callback_inbox.c.path_token)
    )
    .where(callback_inbox.c.id == sa.bindparam("inbox_id"))
)
#: `_update_with_event` that also finishes the callback, per column set.
_PROCESSING_CALLBACK: dict[tuple[str, ...], sa.Select[Any]] = {}


def _processing_callback(columns: tuple[str, ...]) -> sa.Select[Any]:
    stmt = _PROCESSING_CALLBACK.get(columns)
    if stmt is None:
        twin = sa.exists().where(c2b_payments.c.trans_id == sa.bindparam("twin_receipt"))
        # Also when the change does not write the receipt (a wrong amount, a failure).
        held = (
            sa.select(payments.c.id)
            .where(
                payments.c.mpesa_receipt_number == sa.bindparam("reported_receipt"),
                payments.c.id != sa.bindparam("w_id"),
            )
            .exists()
        )
        moved = _update_statement(columns).where(~twin, ~held).cte("moved")
        appended = history.appended_after(payment_events.c.payment_id, moved)
        i = callback_inbox.c
        finished = (
            callback_inbox.update()
            .where(i.id == sa.bindparam("inbox_id"), sa.exists(sa.select(moved.c.id)))
            .values(
                state=sa.bindparam("f_state"), reason=None,
                payment_id=sa.bindparam("f_payment_id", type_=i.payment_id.type),
                processed_at=sa.bindparam("f_at", type_=i.processed_at.type),
                attempts=i.attempts + 1,
            )
            .returning(i.id)
            .cte("finished")
        )  # fmt: skip
        stmt = sa.select(moved).add_cte(appended).add_cte(finished)
        _PROCESSING_CALLBACK[columns] = stmt
    return stmt


def _as_written(
    record: PaymentRecord, columns: tuple[str, ...], params: dict[str, object], row: sa.Row[Any]
) -> PaymentRecord:
    """`record` as the compare-and-set UPDATE (`_update_params`) wrote it, times in UTC as
    a read gives them back (`UtcDateTime`), with the query schedule its `row` returned."""
    m = row._mapping
    written: dict[str, Any] = {name: m[name] for name in _SCHEDULE}
    for name in columns:
        if name in _RECORD_FIELDS:  # not the blind indexes
            value = params[f"v_{name}"]
            written[name] = value.astimezone(UTC) if isinstance(value, datetime) else value
    return dataclasses.replace(record, **written)


_RECORD_FIELDS = frozenset(_FIELDS)
#: Columns another writer changes without a new version (`store.reconciliation`).
_SCHEDULE = ("next_query_at", "query_attempts")


def _update_params(record: PaymentRecord, values: dict[str, object]) -> dict[str, object]:
    params = {f"v_{name}": value for name, value in values.items()}
    params["w_id"], params["w_version"] = record.id, record.version
    return params


def _event_data(record: PaymentRecord, change: Change, now: datetime) -> dict[str, object]:
    data = dict(change.event.data)
    if change.event.kind in COMPLETION_EVENTS:
        # The "payment completed" analytics event, with how long the customer waited.
        elapsed_ms = (now - record.created_at).total_seconds() * 1000
        data.update(
            analytics=ANALYTICS_COMPLETED, amount=record.amount, processingMs=round(elapsed_ms)
        )
    return data


def stop_querying(conn: sa.Connection, payment_id: str) -> None:
    """Daraja gave a final answer that changed nothing: ask no more about this payment."""
    conn.execute(payments.update().where(payments.c.id == payment_id).values(next_query_at=None))


def events(conn: sa.Connection, payment_id: str) -> list[dict[str, Any]]:
    """The payment's events, oldest first."""
    return history.of(conn, payment_events.c.payment_id, payment_id)


def idempotency_key(conn: sa.Connection, key: str) -> tuple[str, str] | None:
    """(fingerprint, payment_id) stored for `key`, if any."""
    row = conn.execute(
        sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.payment_id).where(
            idempotency_keys.c.key == key
        )
    ).first()
    return (row[0], row[1]) if row else None

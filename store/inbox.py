"""The callback inbox: every callback that reached us, stored before we answer Safaricom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from plumbing import correlation
from store import outbox, raw
from store.db import autocommit, utcnow
from store.outbox import Job
from store.sealed import checkout_index
from store.tables import callback_inbox, payments
from store.tables import outbox as outbox_table

#: Inbox states. `received` waits for a worker; the others are where processing ended.
#: `untrusted`: readable, but not on its payment's own URL, so only an STK query may act.
RECEIVED, PROCESSED, UNMATCHED, IGNORED, REJECTED, UNTRUSTED = (
    "received", "processed", "unmatched", "ignored", "rejected", "untrusted",
)  # fmt: skip
#: States a callback never leaves: its raw row may be purged after RETENTION_DAYS.
FINAL_STATES = (PROCESSED, IGNORED, REJECTED, UNTRUSTED)
#: Widths of the columns a stranger's values go into.
REASON_WIDTH, TOKEN_WIDTH, HEADER_WIDTH = 255, 64, 256


@dataclass(frozen=True)
class InboxRow:
    id: int
    received_at: datetime
    source_ip: str | None
    path_token: str | None
    body: str
    checkout_request_id: str | None
    state: str
    reason: str | None
    payment_id: str | None
    attempts: int


def add(
    conn: sa.Connection,
    *,
    body: str,
    source_ip: str | None,
    path_token: str | None,
    headers: dict[str, str],
    checkout_request_id: str | None,
    state: str,
    reason: str | None = None,
    payment_id: str | None = None,
) -> int:
    """Store one raw callback; returns its inbox id. Strangers' values are made storable."""
    values = _row(body, source_ip, path_token, headers, checkout_request_id)
    result = conn.execute(
        callback_inbox.insert()
        .values(
            **values, state=state, reason=reason and raw.reason(reason, REASON_WIDTH),
            payment_id=payment_id,
        )
        .returning(callback_inbox.c.id)
    )  # fmt: skip
    return int(result.scalar_one())


def _row(
    body: str,
    source_ip: str | None,
    path_token: str | None,
    headers: dict[str, str],
    checkout_request_id: str | None,
) -> dict[str, object]:
    """The columns every stored callback has, made storable (`add`, `add_on_own_url`)."""
    kept = {raw.text(k, 64): raw.text(v, HEADER_WIDTH) for k, v in headers.items()}
    return {
        "received_at": utcnow(), "source_ip": source_ip and raw.text(source_ip, 64),
        "path_token": path_token and raw.text(path_token, TOKEN_WIDTH), "headers": kept,
        "body": raw.seal_personal(body), "checkout_request_id": checkout_request_id,
        "checkout_index": checkout_request_id and checkout_index(checkout_request_id),
    }  # fmt: skip


# --- A callback on its payment's own URL: stored and queued in one statement -----------------
#
# The webhook's common case: a callback on a payment's token URL that names that payment's
# CheckoutRequestID (or names none any payment has, when the push's answer is not stored
# yet). `add_on_own_url` stores it as `received` and queues its job only when that holds,
# in one transaction; otherwise it writes nothing and the caller screens it the long way.
# PostgreSQL runs it as one statement (the owner check, the inbox INSERT and the outbox
# INSERT as one data-modifying WITH), committed when it returns; SQLite runs the same inbox
# INSERT and then the outbox's own insert, in one transaction.

_other = payments.alias("other")
#: The payment whose token is `:token`, if the CheckoutRequestID (`:checkout_index`) is its
#: own, or one no payment has while it has none: the door's owner check, in SQL.
_OWNED = sa.exists().where(
    payments.c.callback_token == sa.bindparam("token", type_=payments.c.callback_token.type),
    sa.or_(
        payments.c.checkout_index == sa.bindparam("checkout_index"),
        sa.and_(
            payments.c.checkout_request_id.is_(None),
            ~sa.exists().where(_other.c.checkout_index == sa.bindparam("checkout_index")),
        ),
    ),
)
_ROW_COLUMNS = (
    "received_at", "source_ip", "path_token", "headers", "body", "checkout_request_id",
    "checkout_index",
)  # fmt: skip


def _bound(column: sa.Column[Any], key: str | None = None) -> sa.BindParameter[Any]:
    """A parameter of `column`'s type (so a sealed value is sealed, a time made UTC)."""
    return sa.bindparam(key or column.name, type_=column.type)


#: INSERT ... SELECT the bound row WHERE the owner check holds, RETURNING its id.
_INSERT_OWNED = (
    callback_inbox.insert()
    .from_select(
        [*_ROW_COLUMNS, "state"],
        sa.select(
            *(_bound(callback_inbox.c[name]) for name in _ROW_COLUMNS),
            sa.literal(RECEIVED, callback_inbox.c.state.type),
        ).where(_OWNED),
    )
    .returning(callback_inbox.c.id)
)


def _insert_owned_and_queue() -> sa.Select[int, int]:
    """PostgreSQL: `_INSERT_OWNED`, then the outbox row for its id, in one statement."""
    stored = _INSERT_OWNED.cte("stored")
    o = outbox_table
    queued = (
        o.insert()
        .from_select(
            ["queue", "actor", "args", "created_at", "correlation_id"],
            sa.select(
                _bound(o.c.queue, "job_queue"), _bound(o.c.actor, "job_actor"),
                sa.func.jsonb_build_array(stored.c.id), _bound(o.c.created_at, "job_created_at"),
                _bound(o.c.correlation_id, "job_correlation_id"),
            ),
        )
        .returning(o.c.id)
        .cte("queued")
    )  # fmt: skip
    return sa.select(stored.c.id, queued.c.id).select_from(stored.join(queued, sa.true()))


_STORE_AND_QUEUE = _insert_owned_and_queue()


def add_on_own_url(
    engine: Engine,
    *,
    body: str,
    source_ip: str | None,
    token: str,
    headers: dict[str, str],
    checkout_request_id: str,
    job: tuple[str, str],
) -> tuple[int, Job] | None:
    """Store a callback on its payment's own URL as `received` and queue `job(inbox id)`.

    Only when `token` is the callback token of the payment `checkout_request_id` belongs to,
    or of a payment with no CheckoutRequestID yet when no payment has this one. Committed
    when this returns (inbox id, job); None when the check fails, and nothing is written.
    """
    values = _row(body, source_ip, token, headers, checkout_request_id)
    params = {**values, "token": token}
    queue, actor = job
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            inbox_id = conn.execute(_INSERT_OWNED, params).scalar()
            if inbox_id is None:
                return None
            return int(inbox_id), outbox.add_job(conn, queue, actor, int(inbox_id))
    correlation_id = correlation.current()
    params.update(
        job_queue=queue, job_actor=actor, job_created_at=values["received_at"],
        job_correlation_id=correlation_id,
    )  # fmt: skip
    with autocommit(engine).connect() as conn:
        row = conn.execute(_STORE_AND_QUEUE, params).first()
    if row is None:
        return None
    inbox_id, job_id = int(row[0]), int(row[1])
    return inbox_id, Job(job_id, queue, actor, [inbox_id], correlation_id)


#: The statements a worker runs per callback, built once.
_GET = sa.select(callback_inbox).where(callback_inbox.c.id == sa.bindparam("inbox_id"))
_FINISH = (
    callback_inbox.update()
    .where(callback_inbox.c.id == sa.bindparam("inbox_id"))
    .values(
        state=sa.bindparam("f_state"), reason=sa.bindparam("f_reason"),
        payment_id=sa.bindparam("f_payment_id", type_=callback_inbox.c.payment_id.type),
        processed_at=sa.bindparam("f_at", type_=callback_inbox.c.processed_at.type),
        attempts=callback_inbox.c.attempts + 1,
    )
)  # fmt: skip


def get(conn: sa.Connection, inbox_id: int) -> InboxRow | None:
    row = conn.execute(_GET, {"inbox_id": inbox_id}).first()
    return None if row is None else from_row(row)


def from_row(row: sa.Row[Any]) -> InboxRow:
    """The callback a row of `callback_inbox`'s columns holds, its body opened."""
    m: Any = row._mapping
    return InboxRow(
        id=m["id"], received_at=m["received_at"], source_ip=m["source_ip"],
        path_token=m["path_token"], body=raw.open_personal(m["body"]),
        checkout_request_id=m["checkout_request_id"],
        state=m["state"], reason=m["reason"], payment_id=m["payment_id"], attempts=m["attempts"],
    )  # fmt: skip


def finish(
    conn: sa.Connection, inbox_id: int, state: str, *, reason: str | None, payment_id: str | None
) -> None:
    """Record where processing of a callback ended."""
    conn.execute(_FINISH, {
        "inbox_id": inbox_id, "f_state": state,
        "f_reason": reason and raw.reason(reason, REASON_WIDTH), "f_payment_id": payment_id,
        "f_at": utcnow(),
    })  # fmt: skip


def distrusted_since(conn: sa.Connection, payment_id: str, since: datetime) -> bool:
    """True when an untrusted or rejected callback naming `payment_id` came after `since`."""
    t = callback_inbox
    query = (
        sa.select(t.c.id)
        .where(
            t.c.payment_id == payment_id,
            t.c.received_at >= since,
            t.c.state.in_((UNTRUSTED, REJECTED)),
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


_HAS_UNMATCHED = (
    sa.select(callback_inbox.c.id)
    .where(
        callback_inbox.c.checkout_index == sa.bindparam("index"),
        callback_inbox.c.state == UNMATCHED,
    )
    .limit(1)
)


def has_unmatched(conn: sa.Connection, checkout_request_id: str) -> bool:
    """True when a callback naming `checkout_request_id` waits as `unmatched`."""
    found = conn.execute(_HAS_UNMATCHED, {"index": checkout_index(checkout_request_id)})
    return found.first() is not None


def reopen_unmatched(conn: sa.Connection, checkout_request_id: str) -> list[int]:
    """Put callbacks that arrived before their payment was known back in line."""
    query = (
        callback_inbox.update()
        .where(
            callback_inbox.c.checkout_index == checkout_index(checkout_request_id),
            callback_inbox.c.state == UNMATCHED,
        )
        .values(state=RECEIVED)
        .returning(callback_inbox.c.id)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def for_payment(
    conn: sa.Connection, payment_id: str, callback_token: str, checkout_request_id: str | None
) -> list[dict[str, Any]]:
    """The callbacks stored for a payment: named by it, on its URL, or with its id (no bodies)."""
    t = callback_inbox
    matches = [t.c.payment_id == payment_id, t.c.path_token == callback_token]
    if checkout_request_id:
        matches.append(t.c.checkout_index == checkout_index(checkout_request_id))
    columns = (t.c.id, t.c.received_at, t.c.state, t.c.reason, t.c.attempts, t.c.processed_at)
    query = sa.select(*columns).where(sa.or_(*matches)).order_by(t.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]

"""The callback inbox: every callback that reached us, stored before we answer Safaricom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from store import raw
from store.db import utcnow
from store.sealed import checkout_index
from store.tables import callback_inbox

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
    kept = {raw.text(k, 64): raw.text(v, HEADER_WIDTH) for k, v in headers.items()}
    result = conn.execute(
        callback_inbox.insert()
        .values(
            received_at=utcnow(), source_ip=source_ip and raw.text(source_ip, 64),
            path_token=path_token and raw.text(path_token, TOKEN_WIDTH), headers=kept,
            body=raw.seal_personal(body), checkout_request_id=checkout_request_id,
            checkout_index=checkout_request_id and checkout_index(checkout_request_id), state=state,
            reason=reason and raw.reason(reason, REASON_WIDTH), payment_id=payment_id,
        )
        .returning(callback_inbox.c.id)
    )  # fmt: skip
    return int(result.scalar_one())


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
    if row is None:
        return None
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

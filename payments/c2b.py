"""PayBill (C2B) payments: stored at the door (API), matched to their order (worker).

When an STK prompt never reaches the customer, they pay the shop's PayBill by hand with
the order's account reference (`domain.paybill`). Safaricom then POSTs a validation request
(if validation is enabled for the shortcode) and a confirmation to the registered URLs.

Trust, as for STK callbacks: a request must come from an allowed source address
(MPESA_CALLBACK_ALLOWED_IPS, through TRUSTED_PROXIES), be signed when
MPESA_CALLBACK_SIGNATURE=required, and, when C2B_URL_SECRET is set, arrive on the secret
URL. Every request is stored before it is answered; refused ones as `rejected` (403, as is a
validation on the bare URL while a secret is set: its answer would tell a stranger about
orders), and a confirmation on the bare URL while a secret is set as `untrusted` (answered,
kept, alerted, never applied: Daraja has no query to ask about it).

Matching (in a worker, idempotent): a confirmation counts once per receipt (TransID). A
receipt an STK payment already recorded is that payment's money (`duplicate`). Otherwise
its BillRefNumber must name exactly one order, and the order decides (`domain.order`): a
pending order of that total is confirmed (`matched`); an order paid, cancelled or of
another total makes the money a refund due (`refund_due`); no order is `unmatched`. The
last two are alerted to operators (`operations.alerts`), never dropped.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa

from daraja.c2b import ACCEPTED, MalformedNotification, Notification, parse_notification
from domain import order, paybill
from domain.order import Status
from payments import shop_webhooks
from payments.callbacks import KEPT_HEADERS, signed
from payments.container import Container
from payments.jobs import PROCESS_C2B
from payments.relay import relay
from payments.transitions import in_races
from plumbing.settings import Settings
from store import c2b, orders, outbox, payments, raw
from store.c2b import C2bRecord
from store.db import retrying

log = logging.getLogger(__name__)

VALIDATION, CONFIRMATION = c2b.VALIDATION, c2b.CONFIRMATION
#: The request kinds, as the URL names them.
KINDS = (VALIDATION, CONFIRMATION)
#: Where the API takes them (and, with C2B_URL_SECRET, `<path>/<secret>`).
PATHS = {kind: f"/api/payments/c2b/{kind}" for kind in KINDS}
#: What a refused validation is answered with (`ResultCode` is Daraja's C2B code).
DECLINED_DESC = "Rejected"


@dataclass(frozen=True)
class Answer:
    """How to answer Safaricom: 200 with `body`, or 400/403 with `reason`."""

    status_code: int
    record_id: str
    body: dict[str, object]
    reason: str | None = None


def urls(settings: Settings, base_url: str | None = None) -> dict[str, str]:
    """The confirmation and validation URLs to register, on the origin of `base_url`
    (default MPESA_CALLBACK_URL's), with the secret segment when C2B_URL_SECRET is set."""
    parts = urlsplit(base_url or settings.mpesa_callback_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    tail = f"/{settings.c2b_url_secret}" if settings.c2b_url_secret else ""
    return {kind: f"{origin}{PATHS[kind]}{tail}" for kind in KINDS}


def receive(
    c: Container,
    kind: str,
    body: bytes,
    *,
    source_ip: str | None,
    token: str | None,
    headers: dict[str, str],
) -> Answer:
    """Store one C2B request durably, whatever it holds, then say how to answer it.

    A trusted confirmation is queued for matching; a trusted validation is answered from
    the order its reference names (see `validate`).
    """
    kept = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    refusal = _door_refusal(c, body, headers, source_ip, token)
    notification, malformed = _read(body, kind)
    door = _Arrival(kind, body, source_ip, kept, notification)

    def store() -> tuple[Answer, list[int]]:
        with c.engine.begin() as conn:
            if refusal or malformed:
                status = 403 if refusal else 400
                reason = refusal or f"not a C2B {kind}: {malformed}"
                row = door.add(conn, c2b.REJECTED, reason=reason, limit=raw.REFUSED_BODY_BYTES)
                return Answer(status, row, {}, reason), []
            bare = token is None and bool(c.settings.c2b_url_secret)
            if kind == c2b.VALIDATION and bare:  # it would tell a stranger about our orders
                reason = "not on the secret C2B URL"
                row = door.add(conn, c2b.REJECTED, reason=reason, limit=raw.REFUSED_BODY_BYTES)
                return Answer(403, row, {}, reason), []
            if kind == c2b.VALIDATION:
                return _validation(conn, door), []
            if bare:
                reason = "not on the secret C2B URL: kept for an operator, never applied"
                row = door.add(conn, c2b.UNTRUSTED, reason=reason, limit=raw.REFUSED_BODY_BYTES)
                return Answer(200, row, dict(ACCEPTED), reason), []
            row = door.add(conn, c2b.RECEIVED)
            return Answer(200, row, dict(ACCEPTED)), [outbox.add(conn, *PROCESS_C2B, row)]

    # Safaricom does not send a confirmation again: ride out a database blip first.
    answer, jobs = retrying(store, attempts=4)
    if answer.reason:
        log.warning("c2b %s %s answered %s: %s", kind, answer.record_id, answer.status_code,
                    answer.reason)  # fmt: skip
    relay(c, jobs)
    return answer


def _door_refusal(
    c: Container, body: bytes, headers: dict[str, str], source_ip: str | None, token: str | None
) -> str | None:
    """Why the sender is not who it should be (answered 403), or None."""
    s = c.settings
    if not s.callback_ip_allowed(source_ip or ""):
        return f"source address {source_ip} is not on the allow-list"
    if s.mpesa_callback_signature == "required" and not signed(c, body, headers):
        return "missing or bad X-Mpesa-Signature"
    if token is not None and not (
        s.c2b_url_secret
        # A path may decode to anything, lone surrogates included: never fail on it.
        and hmac.compare_digest(token.encode("utf-8", "replace"), s.c2b_url_secret.encode())
    ):
        return "unknown secret in the C2B URL path"
    return None


def _read(body: bytes, kind: str) -> tuple[Notification | None, str | None]:
    try:
        return parse_notification(body, needs_trans_id=kind == c2b.CONFIRMATION), None
    except MalformedNotification as exc:
        return None, str(exc)
    except Exception as exc:  # a parser bug must not lose the request: keep it, refused
        log.exception("c2b parser failed on a body; storing it as rejected")
        return None, f"unreadable ({type(exc).__name__})"


@dataclass(frozen=True)
class _Arrival:
    """One C2B request as it reached the door."""

    kind: str
    body: bytes
    source_ip: str | None
    headers: dict[str, str]
    notification: Notification | None

    def add(
        self, conn: sa.Connection, state: str, *, reason: str | None = None,
        limit: int | None = None, result_code: str | None = None, order_id: str | None = None,
    ) -> str:  # fmt: skip
        """Store it in `state`; returns its id."""
        n = self.notification
        return c2b.add(
            conn, kind=self.kind, body=raw.body_text(self.body, limit=limit),
            source_ip=self.source_ip, headers=self.headers, state=state,
            trans_id=n.trans_id if n else None, bill_ref_number=n.bill_ref_number if n else None,
            amount=n.amount if n else None, reason=reason, result_code=result_code,
            order_id=order_id,
        )  # fmt: skip


# Validation -----------------------------------------------------------------------------


def _validation(conn: sa.Connection, door: _Arrival) -> Answer:
    assert door.notification is not None
    order_id, refusal = validate(conn, door.notification)
    if refusal is None:
        row = door.add(conn, c2b.ACCEPTED, result_code="0", order_id=order_id)
        return Answer(200, row, dict(ACCEPTED))
    row = door.add(conn, c2b.DECLINED, reason=refusal.value, result_code=refusal.c2b_code,
                   order_id=order_id)  # fmt: skip
    return Answer(200, row, {"ResultCode": refusal.c2b_code, "ResultDesc": DECLINED_DESC})


def validate(conn: sa.Connection, n: Notification) -> tuple[str | None, paybill.Refusal | None]:
    """The order a payment names and why it cannot pay it, before any money moves.

    Only references that are order references are judged: the shop's PayBill may serve
    other payments, which are accepted (and, if they confirm, kept as unmatched). An order
    reference naming no order, a paid or cancelled order, or another amount than the
    order's total is declined, so the customer's money never leaves their account.
    """
    bounds = paybill.order_id_bounds(n.bill_ref_number)
    found = c2b.order_ids_between(conn, *bounds) if bounds else []
    if bounds is None or len(found) > 1:
        return None, None  # not ours to judge, or two orders share the digits
    if not found:
        return None, paybill.Refusal.UNKNOWN_REFERENCE
    record = orders.get(conn, found[0])
    assert record is not None
    return record.id, _refusal(Status(record.status), record.total_amount, n.amount)


def _refusal(status: Status, total: int, amount: int | None) -> paybill.Refusal | None:
    if status is Status.CANCELLED:
        return paybill.Refusal.ORDER_CANCELLED
    if status in order.PAID:
        return paybill.Refusal.ORDER_PAID
    return paybill.Refusal.AMOUNT_DIFFERS if amount != total else None


# Confirmation ---------------------------------------------------------------------------


def process(c: Container, record_id: str) -> None:
    """Match stored confirmation `record_id` to its order (worker job; safe to run twice)."""
    settled = in_races(
        c.engine, lambda conn: _process(conn, c.settings, record_id),
        f"c2b confirmation {record_id}",
    )  # fmt: skip
    if settled is not None:
        state, reason = settled
        log.log(logging.INFO if state == c2b.MATCHED else logging.WARNING,
                "c2b confirmation %s %s%s", record_id, state,
                f": {reason}" if reason else "")  # fmt: skip


def _process(
    conn: sa.Connection, settings: Settings, record_id: str
) -> tuple[str, str | None] | None:
    """Settle the confirmation; returns (state, reason), or None when it was settled before."""
    record = c2b.get(conn, record_id)
    if record is None or record.state != c2b.RECEIVED or record.trans_id is None:
        return None  # already settled: this job ran before
    if (duplicate := _duplicate(conn, record)) is not None:
        return duplicate
    order_id, why_not = _order_for(conn, record)
    if order_id is None:
        return _settle(conn, record, c2b.UNMATCHED, why_not)
    if record.amount is None:
        cents = "TransAmount is not whole shillings"
        return _settle(conn, record, c2b.UNMATCHED, cents, order_id=order_id)
    return _pay_order(conn, settings, record, order_id, record.amount)


def _duplicate(conn: sa.Connection, record: C2bRecord) -> tuple[str, str | None] | None:
    """Settle `record` as a duplicate if its receipt is already counted elsewhere."""
    receipt = record.trans_id or ""
    earlier = c2b.counted(conn, receipt)
    if earlier is not None and earlier.id != record.id:
        reason = f"receipt {receipt} was already counted by PayBill payment {earlier.id}"
        return _settle(conn, record, c2b.DUPLICATE, reason, order_id=earlier.order_id)
    if (stk := payments.by_receipt(conn, receipt)) is not None:
        reason = f"receipt {receipt} is STK payment {stk.id}'s: the same money, counted there"
        return _settle(conn, record, c2b.DUPLICATE, reason, order_id=stk.order_id,
                       payment_id=stk.id)  # fmt: skip
    return None


def _order_for(conn: sa.Connection, record: C2bRecord) -> tuple[str | None, str | None]:
    """The one order the confirmation's reference names, or why there is none."""
    bounds = paybill.order_id_bounds(record.bill_ref_number or "")
    if bounds is None:
        return None, "BillRefNumber is not an order's account reference"
    found = c2b.order_ids_between(conn, *bounds)
    if not found:
        return None, "no order has this account reference"
    if len(found) > 1:
        return None, f"{len(found)} orders share this account reference"
    return found[0], None


def _pay_order(
    conn: sa.Connection, settings: Settings, record: C2bRecord, order_id: str, amount: int, *,
    note: str | None = None,
) -> tuple[str, str | None]:  # fmt: skip
    # Lock the order first, as an STK payment settling it does: one waits, neither deadlocks.
    current = orders.get(conn, order_id, for_update=True)
    assert current is not None
    fact = order.PaymentCompleted(record.id, amount, via="paybill", receipt=record.trans_id)
    change = order.decide(current.to_domain(), fact)
    if change is None:  # this money is already on the order (cannot happen: a fresh id)
        reason = "already counted by its order"
        return _settle(conn, record, c2b.DUPLICATE, reason, order_id=order_id)
    updated = orders.apply(conn, current, change)
    shop_webhooks.order_changed(conn, settings, updated, change)
    if updated.paid_by_payment_id == record.id:
        return _settle(conn, record, c2b.MATCHED, note, order_id=order_id)
    reason = str(change.event.data.get("reason") or "refund due")
    reason = f"{reason} ({note})" if note else reason
    return _settle(conn, record, c2b.REFUND_DUE, reason, order_id=order_id)


# An operator's hand -----------------------------------------------------------------------


class NotAssignable(Exception):
    """The PayBill payment cannot be assigned to that order; the message says why."""


#: What an operator may assign to an order: money kept for a person.
ASSIGNABLE = (c2b.UNMATCHED, c2b.UNTRUSTED)
ASSIGNED = "assigned by an operator"


def assign(c: Container, record_id: str, order_id: str) -> tuple[str, str | None]:
    """Apply a PayBill payment kept for a person to order `order_id` (`khalex-pay c2b assign`).

    For an `unmatched` payment (the customer mistyped the reference) or an `untrusted` one
    the operator has found in the M-Pesa portal. The order decides as for any confirmation:
    confirmed when pending and of that total, else a refund due. Returns (state, reason).

    Raises:
        NotAssignable: no such confirmation, not in an assignable state, an amount with
            cents, or no such order.
    """

    def attempt(conn: sa.Connection) -> tuple[str, str | None]:
        record = c2b.get(conn, record_id)
        if record is None or record.kind != c2b.CONFIRMATION:
            raise NotAssignable(f"no PayBill confirmation {record_id}")
        if record.state not in ASSIGNABLE or record.amount is None:
            raise NotAssignable(_not_assignable(record))
        if orders.get(conn, order_id) is None:
            raise NotAssignable(f"no order {order_id}")
        return _duplicate(conn, record) or _pay_order(
            conn, c.settings, record, order_id, record.amount, note=ASSIGNED
        )

    settled = in_races(c.engine, attempt, f"c2b confirmation {record_id}")
    log.warning("c2b confirmation %s assigned to order %s by an operator: %s", record_id,
                order_id, settled[0])  # fmt: skip
    return settled


def _not_assignable(record: C2bRecord) -> str:
    if record.amount is None:
        return "its amount has cents: refund it by hand"
    return f"it is {record.state}; only {' or '.join(ASSIGNABLE)} payments can be assigned"


def _settle(
    conn: sa.Connection, record: C2bRecord, state: str, reason: str | None, *,
    order_id: str | None = None, payment_id: str | None = None,
) -> tuple[str, str | None]:  # fmt: skip
    c2b.settle(conn, record, state, reason=reason, order_id=order_id, payment_id=payment_id)
    return state, reason

"""Safaricom's STK callbacks: stored at the door (API), applied from the inbox (worker)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from daraja.callbacks import MalformedCallback, StkCallback, parse_stk_callback
from domain.payment import Change, ResultReported, Source, Status, decide
from payments import shop_webhooks
from payments.container import Container
from payments.jobs import PROCESS_CALLBACK, QUERY_PAYMENT
from payments.reconciliation import stored_push_answer, wants_query
from payments.relay import relay, relay_committed
from payments.transitions import apply_fact, in_races
from plumbing.settings import Settings
from store import inbox, outbox, payments, raw
from store.db import autocommit, retrying, utcnow
from store.outbox import Job
from store.payments import Conflict, PaymentRecord

log = logging.getLogger(__name__)

#: The answer Safaricom expects once a callback is safely stored.
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
#: Request headers worth keeping with a callback (no cookies or auth headers).
KEPT_HEADERS = (
    "content-type", "user-agent", "businessshortcode", "x-forwarded-for", "x-mpesa-signature",
)  # fmt: skip
#: The header a signing relay puts in front of Daraja's callbacks (CONTRACT.md §4, Trust).
SIGNATURE_HEADER = "x-mpesa-signature"
#: Untrusted callbacks naming one payment within this many seconds queue one STK query.
QUERY_DEBOUNCE_S = 10
#: What our callback tokens look like (`secrets.token_urlsafe`); anything else is unknown.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Received:
    """How the webhook should answer: 200 stored, 400 malformed, 403 refused at the door.

    `state` is where the stored callback starts: `received` (trusted, a worker applies it),
    `untrusted` (only an STK query may act) or `rejected`.
    """

    status_code: int
    inbox_id: int
    reason: str | None
    state: str = inbox.RECEIVED


@dataclass(frozen=True)
class _Verdict:
    status_code: int
    state: str
    reason: str | None
    checkout_request_id: str | None
    #: The payment the callback names, which Daraja is asked about when it is not trusted.
    suspect: PaymentRecord | None


def receive(
    c: Container, body: bytes, *, source_ip: str | None, token: str | None, headers: dict[str, str]
) -> Received:
    """Store a callback durably (whatever it holds), then act on it as far as it is trusted.

    Only a callback on its payment's own token URL, from an allowed source (and signed, when
    MPESA_CALLBACK_SIGNATURE=required) is queued to move its payment. Any other that names a
    known payment only queues an STK query for it: Daraja's answer decides.
    """
    arrival = _Arrival(body, headers, source_ip, token, *_read(body))
    kept = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    if token is not None and _sender_refusal(c, arrival) is None:
        owned = _store_on_own_url(c, arrival, token, kept)
        if owned is not None:
            return owned
        # Not its payment's own callback: screened (and stored) the long way below.

    def store() -> tuple[_Verdict, int, list[Job]]:
        # Safaricom never sends a callback again: ride out a database blip before giving up.
        with c.engine.begin() as conn:
            verdict = _screen(c, conn, arrival)
            trusted = verdict.state == inbox.RECEIVED
            suspect = None if trusted else verdict.suspect
            ask = suspect is not None and _should_ask(conn, suspect)
            inbox_id = inbox.add(
                conn,
                body=raw.body_text(body, limit=None if trusted else raw.REFUSED_BODY_BYTES),
                source_ip=source_ip, path_token=token, headers=kept,
                checkout_request_id=verdict.checkout_request_id, state=verdict.state,
                reason=verdict.reason, payment_id=suspect.id if suspect else None,
            )  # fmt: skip
            jobs = [outbox.add_job(conn, *PROCESS_CALLBACK, inbox_id)] if trusted else []
            if ask and suspect is not None:
                jobs.append(outbox.add_job(conn, *QUERY_PAYMENT, suspect.id))
            return verdict, inbox_id, jobs

    verdict, inbox_id, jobs = retrying(store, attempts=4)
    if verdict.reason:
        log.warning("callback %s %s (%s): %s", inbox_id, verdict.state, verdict.status_code,
                    verdict.reason)  # fmt: skip
    relay_committed(c, jobs)
    return Received(verdict.status_code, inbox_id, verdict.reason, verdict.state)


def _store_on_own_url(
    c: Container, a: _Arrival, token: str, kept: dict[str, str]
) -> Received | None:
    """The common case at the door, in one statement: a readable callback from an allowed
    sender on its own payment's URL is stored as `received` and its job queued; None (and
    nothing stored) when the URL's payment is not the one the callback names."""
    if a.parsed is None or not TOKEN.fullmatch(token):
        return None
    checkout = a.parsed.checkout_request_id
    stored = retrying(
        lambda: inbox.add_on_own_url(
            c.engine, body=raw.body_text(a.body), source_ip=a.source_ip, token=token,
            headers=kept, checkout_request_id=checkout, job=PROCESS_CALLBACK,
        ),
        attempts=4,
    )  # fmt: skip
    if stored is None:
        return None
    inbox_id, job = stored
    relay_committed(c, [job])
    return Received(200, inbox_id, None, inbox.RECEIVED)


def _should_ask(conn: sa.Connection, suspect: PaymentRecord) -> bool:
    """Ask Daraja about `suspect`, unless an untrusted callback already did so just now.

    A flood of forgeries naming one payment then costs Daraja one query per few seconds.
    """
    if not wants_query(suspect):
        return False
    since = utcnow() - timedelta(seconds=QUERY_DEBOUNCE_S)
    return not inbox.distrusted_since(conn, suspect.id, since)


def _read(body: bytes) -> tuple[StkCallback | None, MalformedCallback | None]:
    try:
        return parse_stk_callback(body), None
    except MalformedCallback as exc:
        return None, exc
    except Exception as exc:  # a parser bug must not lose the callback: keep it, refused
        log.exception("callback parser failed on a body; storing it as rejected")
        return None, MalformedCallback(f"unreadable ({type(exc).__name__})")


@dataclass(frozen=True)
class _Arrival:
    """One callback as it reached the door."""

    body: bytes
    headers: dict[str, str]
    source_ip: str | None
    token: str | None
    parsed: StkCallback | None
    malformed: MalformedCallback | None

    @property
    def checkout_request_id(self) -> str | None:
        if self.malformed is not None:
            return self.malformed.checkout_request_id
        return self.parsed.checkout_request_id if self.parsed else None


def _screen(c: Container, conn: sa.Connection, a: _Arrival) -> _Verdict:
    checkout = a.checkout_request_id
    named = payments.by_checkout(conn, checkout) if checkout else None
    owner = payments.by_token(conn, a.token) if a.token and TOKEN.fullmatch(a.token) else None
    suspect = named or owner
    refusal = _source_refusal(c, a, owner) or _owner_refusal(owner, named, checkout)
    if refusal:
        return _Verdict(403, inbox.REJECTED, refusal, checkout, suspect)
    if a.malformed or a.parsed is None:
        return _Verdict(400, inbox.REJECTED, f"not an STK callback: {a.malformed}", None, suspect)
    if owner is None:
        reason = "not on its payment's own callback URL"
        return _Verdict(200, inbox.UNTRUSTED, reason, checkout, suspect)
    return _Verdict(200, inbox.RECEIVED, None, checkout, suspect)


def _source_refusal(c: Container, a: _Arrival, owner: PaymentRecord | None) -> str | None:
    """Why the sender is not who it should be (answered 403), or None."""
    refusal = _sender_refusal(c, a)
    if refusal is None and a.token is not None and owner is None:
        return "unknown callback token in the URL path"
    return refusal


def _sender_refusal(c: Container, a: _Arrival) -> str | None:
    """Why the sender's address or signature is refused, or None."""
    if not c.settings.callback_ip_allowed(a.source_ip or ""):
        return f"source address {a.source_ip} is not on the allow-list"
    if c.settings.mpesa_callback_signature == "required" and not signed(c, a.body, a.headers):
        return "missing or bad X-Mpesa-Signature"
    return None


def _owner_refusal(
    owner: PaymentRecord | None, named: PaymentRecord | None, checkout: str | None
) -> str | None:
    """Why a token URL's callback is about another payment (answered 403), or None."""
    if owner is None or checkout is None:
        return None
    if owner.checkout_request_id not in (None, checkout) or (named and named.id != owner.id):
        return "CheckoutRequestID does not belong to the payment of this URL"
    return None


def signed(c: Container, body: bytes, headers: dict[str, str]) -> bool:
    """True when X-Mpesa-Signature is the hex HMAC-SHA256 of `body` with WEBHOOK_SECRET."""
    given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), "")
    expected = hmac.new(c.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def process(c: Container, inbox_id: int) -> None:
    """Apply stored callback `inbox_id` to its payment (worker job; safe to run twice)."""
    if payments.writes_in_one_statement(c.engine) and retrying(
        lambda: _processed_in_one_statement(c, inbox_id)
    ):
        return
    jobs = in_races(
        c.engine, lambda conn: _process(conn, c.settings, inbox_id), f"callback {inbox_id}"
    )
    if jobs:  # usually none: a relay of nothing would still cost a transaction
        relay(c, jobs)


def _processed_in_one_statement(c: Container, inbox_id: int) -> bool:
    """The usual callback, in two round trips and no transaction: one look-up of it with its
    payment, one statement that moves the payment, appends the event and marks the callback
    `processed`. False (nothing written) for anything else, which `_process` then handles:
    a refusal, a change that changes nothing or that settles an order or tells the shop, a
    PayBill twin, a race lost.
    """
    with autocommit(c.engine).connect() as conn:
        found = payments.callback_and_payment(conn, inbox_id)
        if found is None:
            return False
        row, record = found
        if row.state != inbox.RECEIVED:
            return True  # already handled: this job ran before
        usual = _usual_change(c.settings, row, record)
        if record is None or usual is None:
            return False
        change, receipt = usual
        try:
            payments.apply_processing_callback(conn, record, change, inbox_id, receipt)
        except (Conflict, sa.exc.IntegrityError):
            return False  # moved since, a PayBill twin, or a receipt another payment holds
    return True


def _usual_change(
    settings: Settings, row: inbox.InboxRow, record: PaymentRecord | None
) -> tuple[Change, str | None] | None:
    """What a trusted callback for its own payment's push changes, and the receipt it
    reports, when that writes only the payment and its event; None for any other callback
    (the long way decides)."""
    if row.path_token is None or record is None or record.order_id is not None:
        return None
    try:
        cb = parse_stk_callback(row.body.encode("utf-8"))
    except MalformedCallback:
        return None
    same_push = record.checkout_request_id == cb.checkout_request_id  # None: not yet known
    new_receipt = not cb.receipt or record.mpesa_receipt_number in (None, cb.receipt)
    if not (same_push and new_receipt):
        return None
    change = decide(record.to_domain(), _reported(cb))
    if change is None or shop_webhooks.tells_shop(settings, change):
        return None
    return change, cb.receipt


def _reported(cb: StkCallback) -> ResultReported:
    return ResultReported(
        source=Source.CALLBACK, result_code=cb.result_code, result_desc=cb.result_desc,
        checkout_request_id=cb.checkout_request_id, amount=cb.amount, receipt=cb.receipt,
        transaction_date=cb.transaction_date,
    )  # fmt: skip


def _process(conn: sa.Connection, settings: Settings, inbox_id: int) -> list[int]:
    """Apply the callback; returns the ids of the jobs it queued."""
    row = inbox.get(conn, inbox_id)
    if row is None or row.state != inbox.RECEIVED:
        return []  # already handled: this job ran before
    if row.path_token is None:
        # Stored before callbacks were screened at the door: not on a payment's own URL.
        return _distrust(conn, row)
    _apply(conn, settings, row.id, row.body, row.path_token)
    return []


def _apply(conn: sa.Connection, settings: Settings, inbox_id: int, body: str, token: str) -> None:
    try:
        cb = parse_stk_callback(body.encode("utf-8"))
    except MalformedCallback as exc:
        inbox.finish(conn, inbox_id, inbox.REJECTED, reason=str(exc), payment_id=None)
        return
    # The payment of this URL, and whichever already holds the receipt (one look-up).
    record, holder = payments.by_token_and_receipt(conn, token, cb.receipt)
    if record is None:
        # Checked at the door, so this is only a token of a payment since removed: keep it.
        inbox.finish(conn, inbox_id, inbox.UNMATCHED, reason="no payment yet", payment_id=None)
        return
    refusal = _refusal(conn, record, cb, holder)
    if refusal:
        inbox.finish(conn, inbox_id, inbox.REJECTED, reason=refusal, payment_id=record.id)
        log.warning("callback %s for payment %s refused: %s", inbox_id, record.id, refusal)
        return
    _, change = apply_fact(conn, settings, record, _reported(cb))
    state = inbox.PROCESSED if change else inbox.IGNORED
    reason = None if change else "changed nothing (a duplicate, or the payment had moved on)"
    inbox.finish(conn, inbox_id, state, reason=reason, payment_id=record.id)


def _distrust(conn: sa.Connection, row: inbox.InboxRow) -> list[int]:
    named = payments.by_checkout(conn, row.checkout_request_id) if row.checkout_request_id else None
    reason = "not on its payment's own callback URL"
    payment_id = named.id if named else None
    inbox.finish(conn, row.id, inbox.UNTRUSTED, reason=reason, payment_id=payment_id)
    if named and wants_query(named):
        return [outbox.add(conn, *QUERY_PAYMENT, named.id)]
    return []


def _refusal(
    conn: sa.Connection, record: PaymentRecord, cb: StkCallback, holder: PaymentRecord | None
) -> str | None:
    """Why `cb` may not move `record`; `holder` is the payment holding its receipt, if any."""
    if record.checkout_request_id not in (None, cb.checkout_request_id):
        return "CheckoutRequestID does not belong to the payment of this callback URL"
    if record.checkout_request_id is None and record.status == Status.SENDING.value:
        # The push job may have died after storing Daraja's answer, before applying it:
        # the callback proves the push went out, but it must name the push we stored.
        stored = stored_push_answer(conn, record.id)
        if stored is not None and stored.checkout_request_id != cb.checkout_request_id:
            return "CheckoutRequestID is not the one Daraja answered this payment's push with"
    if cb.receipt and holder is not None and holder.id != record.id:
        return f"receipt {cb.receipt} is already recorded for payment {holder.id}"
    return None

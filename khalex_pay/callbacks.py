"""Safaricom's STK callbacks: stored at the door (API), applied from the inbox (worker)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from daraja.callbacks import MalformedCallback, StkCallback, parse_stk_callback
from domain.payment import ResultReported, Source
from khalex_pay.container import Container
from khalex_pay.jobs import PROCESS_CALLBACK
from khalex_pay.relay import relay
from khalex_pay.settings import Settings
from khalex_pay.transitions import MAX_RACES, apply_fact
from store import inbox, outbox, payments
from store.db import retrying
from store.payments import Conflict, PaymentRecord

log = logging.getLogger(__name__)

#: The answer Safaricom expects once a callback is safely stored.
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
#: Request headers worth keeping with a callback (no cookies or auth headers).
KEPT_HEADERS = ("content-type", "user-agent", "businessshortcode", "x-forwarded-for")


@dataclass(frozen=True)
class Received:
    """How the webhook should answer: 200 stored, 400 malformed, 403 refused at the door."""

    status_code: int
    inbox_id: int
    reason: str | None


def receive(
    c: Container, body: bytes, *, source_ip: str | None, token: str | None, headers: dict[str, str]
) -> Received:
    """Store a callback durably (whatever it holds) and queue it if it is worth processing."""
    status, reason, parsed = _screen(c, body, source_ip, token)
    kept = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}

    def store() -> tuple[int, list[int]]:
        # Safaricom never sends a callback again: ride out a database blip before giving up.
        with c.engine.begin() as conn:
            inbox_id = inbox.add(
                conn,
                body=body.decode("utf-8", "backslashreplace"),
                source_ip=source_ip,
                path_token=token,
                headers=kept,
                checkout_request_id=parsed.checkout_request_id if parsed else None,
                state=inbox.RECEIVED if status == 200 else inbox.REJECTED,
                reason=reason,
            )
            jobs = [outbox.add(conn, *PROCESS_CALLBACK, inbox_id)] if status == 200 else []
            return inbox_id, jobs

    inbox_id, job_ids = retrying(store, attempts=4)
    if reason:
        log.warning("callback %s refused (%s): %s", inbox_id, status, reason)
    relay(c, job_ids)
    return Received(status, inbox_id, reason)


def _screen(
    c: Container, body: bytes, source_ip: str | None, token: str | None
) -> tuple[int, str | None, StkCallback | None]:
    parsed: StkCallback | None = None
    malformed: str | None = None
    try:
        parsed = parse_stk_callback(body)
    except MalformedCallback as exc:
        malformed = str(exc)
    if not c.settings.callback_ip_allowed(source_ip or ""):
        return 403, f"source address {source_ip} is not on the allow-list", parsed
    if token is not None and not _token_known(c, token):
        return 403, "unknown callback token in the URL path", parsed
    if malformed:
        return 400, f"not an STK callback: {malformed}", None
    return 200, None, parsed


def _token_known(c: Container, token: str) -> bool:
    def look_up() -> bool:
        with c.engine.connect() as conn:
            return payments.by_token(conn, token) is not None

    return retrying(look_up, attempts=4)


def process(c: Container, inbox_id: int) -> None:
    """Apply stored callback `inbox_id` to its payment (worker job; safe to run twice)."""
    for _ in range(MAX_RACES):
        try:
            with c.engine.begin() as conn:
                _process(conn, c.settings, inbox_id)
                return
        except Conflict:
            continue
    raise Conflict(f"callback {inbox_id}")


def _process(conn: sa.Connection, settings: Settings, inbox_id: int) -> None:
    row = inbox.get(conn, inbox_id)
    if row is None or row.state != inbox.RECEIVED:
        return  # already handled: this job ran before
    try:
        cb = parse_stk_callback(row.body.encode("utf-8"))
    except MalformedCallback as exc:
        inbox.finish(conn, inbox_id, inbox.REJECTED, reason=str(exc), payment_id=None)
        return
    record = _payment_for(conn, row.path_token, cb)
    if record is None:
        # Known to nobody yet (the push's answer may still be on its way): keep it.
        inbox.finish(conn, inbox_id, inbox.UNMATCHED, reason="no payment yet", payment_id=None)
        return
    refusal = _refusal(conn, record, cb)
    if refusal:
        inbox.finish(conn, inbox_id, inbox.REJECTED, reason=refusal, payment_id=record.id)
        log.warning("callback %s for payment %s refused: %s", inbox_id, record.id, refusal)
        return
    fact = ResultReported(
        source=Source.CALLBACK, result_code=cb.result_code, result_desc=cb.result_desc,
        checkout_request_id=cb.checkout_request_id, amount=cb.amount, receipt=cb.receipt,
        transaction_date=cb.transaction_date,
    )  # fmt: skip
    _, change = apply_fact(conn, settings, record, fact)
    state = inbox.PROCESSED if change else inbox.IGNORED
    reason = None if change else "changed nothing (a duplicate, or the payment had moved on)"
    inbox.finish(conn, inbox_id, state, reason=reason, payment_id=record.id)


def _payment_for(conn: sa.Connection, token: str | None, cb: StkCallback) -> PaymentRecord | None:
    if token:
        return payments.by_token(conn, token)
    return payments.by_checkout(conn, cb.checkout_request_id)


def _refusal(conn: sa.Connection, record: PaymentRecord, cb: StkCallback) -> str | None:
    if record.checkout_request_id not in (None, cb.checkout_request_id):
        return "CheckoutRequestID does not belong to the payment of this callback URL"
    if cb.receipt:
        holder = payments.by_receipt(conn, cb.receipt)
        if holder is not None and holder.id != record.id:
            return f"receipt {cb.receipt} is already recorded for payment {holder.id}"
    return None

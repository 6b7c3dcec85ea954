"""Shop webhooks: payment and order events POSTed to SHOP_WEBHOOK_URL, Standard Webhooks style.

`enqueue()` writes the event in the transaction of the change it reports, with an outbox job
that delivers it on the `webhooks` queue: a shop that is down or slow never holds up a payment.
Each attempt is kept (`webhook_attempts`). A refused attempt is tried again after the next
step of SHOP_WEBHOOK_RETRY_S (about 3 days in all), re-driven by the scheduler (`redrive()`);
then the event is `failed` and operators are alerted. Every attempt carries the event id as
`webhook-id`, so the shop can drop a repeat: delivery is at least once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from domain import order
from domain.payment import Change, Status
from domain.phone import mask_msisdn
from payments import webhook_sender
from payments.container import Container
from payments.jobs import DELIVER_WEBHOOK
from payments.relay import relay
from plumbing import alerting
from plumbing.settings import Settings, webhook_secret_bytes
from store import alerts as alert_claims
from store import outbox, webhooks
from store.db import utcnow
from store.orders import OrderRecord
from store.payments import PaymentRecord
from store.webhooks import DELIVERED, FAILED, PENDING, Attempt, WebhookEvent

log = logging.getLogger(__name__)

#: A queued delivery job that has not run this long is queued again by the scheduler.
REQUEUE_AFTER = timedelta(seconds=60)
#: How long one attempt holds its event: longer than the POST may take, so a worker that
#: dies mid-attempt only delays the event by this much.
SENDING_LEASE = timedelta(seconds=webhook_sender.TOTAL_S + 20)
#: How soon an event whose job found no free webhook thread is queued again.
POSTPONE = timedelta(seconds=5)
#: Most events one scheduler pass queues again.
BATCH = 200
#: The alert raised when the shop refused an event for its whole retry schedule.
WEBHOOK_FAILED = "webhook_failed"

#: The final payment statuses the shop hears about, and the event each one sends.
PAYMENT_EVENTS = {
    Status.COMPLETED: "payment.completed",
    Status.FAILED: "payment.failed",
    Status.CANCELLED: "payment.cancelled",
}


class Busy(Exception):
    """Another attempt at this event is under way."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, and the event's state after it."""

    event_id: str
    answer: webhook_sender.Answer
    state: str
    next_attempt_at: datetime | None


# Writing events -----------------------------------------------------------------------------


def enqueue(
    conn: sa.Connection, settings: Settings, event_type: str, data: dict[str, object]
) -> str | None:
    """Queue `event_type` with `data` for the shop, inside the caller's transaction.

    Returns the event id (the `webhook-id`), or None when SHOP_WEBHOOK_URL is not set.
    `data` holds ids, amounts, statuses and masked phone numbers only, never personal data.
    """
    if not settings.shop_webhook_url:
        return None
    now = utcnow()
    event_id = new_event_id()
    payload = {"type": event_type, "timestamp": _iso(now), "data": data}
    webhooks.insert(
        conn, event_id, event_type, payload, now=now, next_attempt_at=now + REQUEUE_AFTER
    )
    outbox.add(conn, *DELIVER_WEBHOOK, event_id)
    return event_id


def new_event_id() -> str:
    """`msg_` and 32 hex digits: the `webhook-id` Standard Webhooks receivers dedupe on."""
    return f"msg_{uuid.uuid4().hex}"


def shop_event(change: Change) -> str | None:
    """The event type a payment's `change` means to the shop (a move into a final status),
    or None; sent only where SHOP_WEBHOOK_URL is set."""
    status = change.after.status
    return PAYMENT_EVENTS.get(status) if change.before.status is not status else None


def tells_shop(settings: Settings, change: Change) -> bool:
    """True when `change` queues an event for the shop (`payment_changed` writes one)."""
    return bool(settings.shop_webhook_url) and shop_event(change) is not None


def payment_changed(
    conn: sa.Connection, settings: Settings, record: PaymentRecord, change: Change
) -> str | None:
    """Queue the event a payment's change means to the shop: a move into a final status.

    `record` is the payment as written by the change. A late success (failed or cancelled,
    then paid) is a `payment.completed` with `lateSuccess: true`.
    """
    event_type = shop_event(change)
    if event_type is None:
        return None
    return enqueue(conn, settings, event_type, payment_data(record))


def order_changed(
    conn: sa.Connection, settings: Settings, record: OrderRecord, change: order.Change
) -> list[str]:
    """Queue the events an order's change means to the shop (`order.confirmed|cancelled|
    refund_due`); `record` is the order as written by the change."""
    data = order_data(record)
    if change.event.data.get("via") == "paybill":  # the money came by PayBill: its receipt
        data |= {"paidVia": "paybill", "receipt": change.event.data.get("receipt")}
    found = (enqueue(conn, settings, kind, data) for kind in order.shop_events(change))
    return [event_id for event_id in found if event_id]


def order_data(record: OrderRecord) -> dict[str, object]:
    """An order as the shop's webhook shows it: ids, amounts and statuses, nothing personal."""
    return {
        "orderId": record.id, "status": record.status, "totalAmount": record.total_amount,
        "currency": record.currency, "paymentId": record.paid_by_payment_id,
        "refundDue": record.refund_due, "refundPaymentIds": list(record.refund_payment_ids),
    }  # fmt: skip


def payment_data(record: PaymentRecord) -> dict[str, object]:
    """A payment as the shop's webhook shows it: ids, amounts, statuses and the masked phone."""
    return {
        "paymentId": record.id, "orderId": record.order_id, "productId": record.product_id,
        "status": record.status, "amount": record.amount, "currency": record.currency,
        "phoneNumber": mask_msisdn(record.phone_number),
        "mpesaReceiptNumber": record.mpesa_receipt_number,
        "transactionDate": _iso(record.transaction_date), "resultCode": record.result_code,
        "failureReason": record.failure_reason, "lateSuccess": record.late_success,
    }  # fmt: skip


def body(payload: dict[str, Any]) -> str:
    """The JSON body sent: `{"type", "timestamp", "data"}`, the same on every attempt."""
    ordered = {"type": payload["type"], "timestamp": payload["timestamp"], "data": payload["data"]}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


# Delivering them ----------------------------------------------------------------------------


def next_delay_s(schedule: tuple[float, ...], attempts: int) -> float | None:
    """Seconds to wait after attempt number `attempts` failed; None when none are left."""
    return schedule[attempts - 1] if 1 <= attempts <= len(schedule) else None


def deliver(c: Container, event_id: str) -> Outcome | None:
    """Make the event's due attempt (worker job); None when there is nothing to do.

    A repeated or late job finds the event delivered, failed, being sent, or not due yet,
    and does nothing.
    """
    if not c.settings.shop_webhook_url:
        log.warning("webhook event %s waits: SHOP_WEBHOOK_URL is not set", event_id)
        return None
    try:
        return _attempt(c, event_id, manual=False)
    except Busy:
        return None


def redeliver(c: Container, event_id: str) -> Outcome | None:
    """Send the event once more now, whatever its state (operators); None if unknown.

    Raises `Busy` when an attempt is under way. A failed attempt leaves a delivered or
    failed event as it was; a pending one keeps its retry schedule.
    """
    return _attempt(c, event_id, manual=True)


def postpone(c: Container, event_id: str) -> bool:
    """Let the scheduler queue a due event again in POSTPONE (its job could not run now)."""
    now = utcnow()
    with c.engine.begin() as conn:
        event = webhooks.get(conn, event_id, lock=True)
        if event is None or not _may_send(event, now, manual=False):
            return False  # not due: a later attempt is already scheduled
        webhooks.update(conn, event_id, next_attempt_at=now + POSTPONE)
    return True


def _attempt(c: Container, event_id: str, *, manual: bool) -> Outcome | None:
    started = utcnow()
    with c.engine.begin() as conn:
        event = webhooks.get(conn, event_id, lock=True)
        if event is None or not _may_send(event, started, manual=manual):
            return None
        held = {"sending_until": started + SENDING_LEASE}
        if event.state == PENDING:
            # If this worker dies, the scheduler queues the event again after the lease.
            held["next_attempt_at"] = started + SENDING_LEASE
        webhooks.update(conn, event_id, **held)
    answer = _post(c.settings, event)
    return _settle(c, event_id, answer, started, manual=manual)


def _may_send(event: WebhookEvent, now: datetime, *, manual: bool) -> bool:
    if event.sending_until is not None and event.sending_until > now:
        if manual:
            raise Busy(event.id)
        return False
    if manual:
        return True
    due = event.next_attempt_at is None or event.next_attempt_at <= now + REQUEUE_AFTER
    return event.state == PENDING and due


def _post(settings: Settings, event: WebhookEvent) -> webhook_sender.Answer:
    sent = body(event.payload)
    key = webhook_secret_bytes(settings.shop_webhook_secret)
    sent_headers = webhook_sender.headers(key, event.id, sent, time.time())
    return webhook_sender.send(settings.shop_webhook_url, sent, sent_headers)


def _settle(
    c: Container, event_id: str, answer: webhook_sender.Answer, started: datetime, *, manual: bool
) -> Outcome:
    now = utcnow()
    alert = None
    with c.engine.begin() as conn:
        event = webhooks.get(conn, event_id, lock=True)
        assert event is not None
        attempt = Attempt(started, answer.http_status, answer.latency_ms, answer.excerpt,
                          answer.error, manual)  # fmt: skip
        webhooks.add_attempt(conn, event_id, attempt)
        values = after_attempt(event, answer, c.settings.shop_webhook_retry_s, now)
        webhooks.update(conn, event_id, **values)
        if values["state"] == FAILED and event.state == PENDING:
            alert = _failed_alert(conn, event, answer, now)
    _log(event, answer, values)
    if alert is not None:
        alerting.notify(c.settings, alert, now)
    next_at = values.get("next_attempt_at")
    return Outcome(
        event_id, answer, str(values["state"]), next_at if isinstance(next_at, datetime) else None
    )


def after_attempt(
    event: WebhookEvent, answer: webhook_sender.Answer, schedule: tuple[float, ...], now: datetime
) -> dict[str, object]:
    """The event's columns after this attempt."""
    attempts = event.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "sending_until": None}
    if answer.delivered:
        return {**values, "state": DELIVERED, "delivered_at": event.delivered_at or now,
                "next_attempt_at": None}  # fmt: skip
    if event.state != PENDING:
        return {**values, "state": event.state, "next_attempt_at": None}
    delay = next_delay_s(schedule, attempts)
    if delay is None:
        return {**values, "state": FAILED, "next_attempt_at": None}
    return {**values, "state": PENDING, "next_attempt_at": now + timedelta(seconds=delay)}


def _failed_alert(
    conn: sa.Connection, event: WebhookEvent, answer: webhook_sender.Answer, now: datetime
) -> alerting.Alert | None:
    key = f"{WEBHOOK_FAILED}:{event.id}"
    if not alert_claims.claim_once(conn, WEBHOOK_FAILED, [key], now):
        return None
    last = f"HTTP {answer.http_status}" if answer.http_status else answer.error or "no answer"
    return alerting.Alert(
        WEBHOOK_FAILED,
        f"the shop's webhook refused event {event.id} ({event.type}) {event.attempts + 1} "
        f"times since {_iso(event.created_at)} (last: {last}); it will not be sent again by "
        f"itself: fix the shop's receiver, then `khalex-pay webhooks redeliver {event.id}`",
        {"eventId": event.id, "type": event.type, "attempts": event.attempts + 1,
         "lastStatus": answer.http_status, "lastError": answer.error,
         "createdAt": _iso(event.created_at)},
    )  # fmt: skip


def _log(event: WebhookEvent, answer: webhook_sender.Answer, values: dict[str, object]) -> None:
    what = f"HTTP {answer.http_status}" if answer.http_status else answer.error
    level = logging.INFO if answer.delivered else logging.WARNING
    log.log(
        level, "webhook %s (%s) attempt %s: %s in %s ms; now %s", event.id, event.type,
        values["attempts"], what, answer.latency_ms, values["state"],
        extra={"webhook_id": event.id},
    )  # fmt: skip


# Re-driving ---------------------------------------------------------------------------------


def redrive(c: Container, now: datetime | None = None) -> int:
    """Queue a delivery job for each pending event that is due (scheduler; any host)."""
    if not c.settings.shop_webhook_url:
        return 0
    now = now or utcnow()
    with c.engine.begin() as conn:
        ids = webhooks.claim_due(conn, now, now + REQUEUE_AFTER, BATCH)
        job_ids = [outbox.add(conn, *DELIVER_WEBHOOK, event_id) for event_id in ids]
    if job_ids:
        relay(c, job_ids)
    return len(ids)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None

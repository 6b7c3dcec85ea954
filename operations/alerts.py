"""Alerts for operators: what needs a person now, raised once, not once per tick.

The scheduler's leader runs `run()` every ALERT_INTERVAL_S. It raises:

- `low_success_rate`: fewer than ALERT_SUCCESS_RATE_MIN of the payments that ended in the
  last ALERT_SUCCESS_WINDOW_S completed (once at least ALERT_MIN_PAYMENTS ended);
- `queue_stuck`: a queue's oldest ready message has waited more than ALERT_QUEUE_AGE_S;
- `dead_letters`: jobs were dead-lettered (Dramatiq's `.XQ` sets, or our poison guard);
- `late_success`: money arrived for a payment we had already failed (fulfil or refund it);
- `refund_due`: money arrived for an order that was cancelled or already paid (refund it),
  by STK or by PayBill (then with its receipt);
- `outcome_unknown`: a payment ended `timeout` with no CheckoutRequestID although its push
  was started: the push's answer and its callback were both lost (or the job died before
  the request left), so no Daraja API can tell whether the customer paid: look for the
  money on the M-Pesa statement (README, "Limits");
- `paybill_unmatched`: a PayBill (C2B) payment that names no order, or that came on the bare
  C2B URL while C2B_URL_SECRET is set: find its order or refund it.

`payments.shop_webhooks` raises `webhook_failed` itself (through `plumbing.alerting.notify`,
claimed in `store.alerts`) when the shop's webhook refused an event for its whole schedule.

Each alert is an ERROR log line, a Sentry event (with SENTRY_DSN) and a JSON POST to
ALERT_WEBHOOK_URL (when set). What was alerted is claimed first in the `alerts` table:
one-off occurrences (a late success, a dead letter) never alert twice, and conditions that
stay true (a low success rate, a stuck queue) alert again only after ALERT_REPEAT_S.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa

from domain.payment import Status
from operations.dlq import BrokerUnavailable, NoQueues, QueueReader
from operations.paybill import account_reference
from payments.container import Container
from plumbing.alerting import Alert, Post, notify
from plumbing.settings import Settings
from store import alerts as claims
from store import c2b, deliveries
from store.alerts import claim_once, claim_repeating
from store.db import utcnow

log = logging.getLogger(__name__)

#: How far back dead letters and late successes are looked for (Dramatiq keeps dead
#: letters 7 days).
LOOKBACK = timedelta(days=7)
#: Alert rows are forgotten after this; longer than LOOKBACK, so nothing alerts twice.
RETENTION = timedelta(days=30)
#: Most dead letters (per queue) or late successes one pass reads.
BATCH = 500
#: Dead letters named one by one in an alert; the rest are counted.
LISTED = 20

LOW_SUCCESS_RATE = "low_success_rate"
QUEUE_STUCK = "queue_stuck"
DEAD_LETTERS = "dead_letters"
LATE_SUCCESS = "late_success"
REFUND_DUE = "refund_due"
PAYBILL_UNMATCHED = "paybill_unmatched"
OUTCOME_UNKNOWN = "outcome_unknown"


@dataclass(frozen=True)
class DeadJob:
    """A dead-lettered job, as an alert names it (from the broker or our poison guard)."""

    message_id: str
    queue: str
    actor: str


def run(
    c: Container, *, queues: QueueReader | None = None, now: datetime | None = None,
    post: Post = httpx.post,
) -> list[Alert]:  # fmt: skip
    """One pass: find what is wrong, claim what was not alerted yet, send it; returns it.

    Parameters:
        queues: the broker's queues (`operations.dlq.queue_reader`, the one reader of
            Dramatiq's Redis keys); without them, queues are not checked.
    """
    now = now or utcnow()
    ages, dead = _read_queues(queues or NoQueues(), now)
    with c.engine.begin() as conn:
        raised = [
            *success_rate_alerts(conn, c.settings, now),
            *queue_alerts(conn, c.settings, ages, now),
            *dead_letter_alerts(conn, [*dead, *_poisoned(conn, now)], now),
            *late_success_alerts(conn, now),
            *unknown_outcome_alerts(conn, now),
            *refund_due_alerts(conn, now),
            *paybill_alerts(conn, now),
        ]
        claims.forget_before(conn, now - RETENTION)
    for alert in raised:
        notify(c.settings, alert, now, post=post)
    return raised


# What is wrong ---------------------------------------------------------------------------


def success_rate_alerts(conn: sa.Connection, s: Settings, now: datetime) -> list[Alert]:
    """`low_success_rate` when too few of the payments that ended lately completed."""
    counts = claims.ended_by_status(conn, now - timedelta(seconds=s.alert_success_window_s))
    ended, completed = sum(counts.values()), counts.get(Status.COMPLETED.value, 0)
    if ended < s.alert_min_payments or completed / ended >= s.alert_success_rate_min:
        return []
    if not claim_repeating(conn, LOW_SUCCESS_RATE, LOW_SUCCESS_RATE, now, s.alert_repeat_s):
        return []
    rate = completed / ended
    minutes = s.alert_success_window_s // 60
    return [
        Alert(
            LOW_SUCCESS_RATE,
            f"only {completed} of the {ended} payments that ended in the last {minutes} min "
            f"completed ({rate:.0%}; the alert is below {s.alert_success_rate_min:.0%})",
            {
                "successRate": round(rate, 3), "completed": completed, "ended": ended,
                "byStatus": counts, "windowSeconds": s.alert_success_window_s,
                "threshold": s.alert_success_rate_min,
            },
        )
    ]  # fmt: skip


def queue_alerts(
    conn: sa.Connection, s: Settings, ages: dict[str, float], now: datetime
) -> list[Alert]:
    """`queue_stuck` for each queue whose oldest ready message waited too long."""
    raised = []
    for queue, age in sorted(ages.items()):
        if age <= s.alert_queue_age_s:
            continue
        if not claim_repeating(conn, QUEUE_STUCK, f"queue_age:{queue}", now, s.alert_repeat_s):
            continue
        raised.append(
            Alert(
                QUEUE_STUCK,
                f"queue {queue}: the oldest waiting job has waited {age:.0f} s "
                f"(the alert is over {s.alert_queue_age_s:.0f} s); are the workers running?",
                {"queue": queue, "oldestAgeSeconds": round(age, 1),
                 "threshold": s.alert_queue_age_s},
            )
        )  # fmt: skip
    return raised


def dead_letter_alerts(conn: sa.Connection, dead: Iterable[DeadJob], now: datetime) -> list[Alert]:
    """One `dead_letters` alert per queue for the dead letters never alerted before."""
    by_key = {f"dead_letter:{d.message_id}": d for d in dead}
    new = [by_key[key] for key in claim_once(conn, DEAD_LETTERS, list(by_key), now)]
    raised = []
    for queue in sorted({d.queue for d in new}):
        letters = [d for d in new if d.queue == queue]
        actors = sorted({d.actor for d in letters})
        raised.append(
            Alert(
                DEAD_LETTERS,
                f"{len(letters)} job(s) on queue {queue} were dead-lettered "
                f"({', '.join(actors)}); they will not run again by themselves",
                {"queue": queue, "count": len(letters),
                 "messages": [{"messageId": d.message_id, "actor": d.actor}
                              for d in letters[:LISTED]]},
            )
        )  # fmt: skip
    return raised


def late_success_alerts(conn: sa.Connection, now: datetime) -> list[Alert]:
    """One `late_success` alert for each late success never alerted before."""
    rows = claims.late_successes(conn, now - LOOKBACK, BATCH)
    by_key = {f"late_success:{row['payment_id']}": row for row in rows}
    return [_late_success(by_key[key]) for key in claim_once(conn, LATE_SUCCESS, list(by_key), now)]


def _late_success(row: sa.RowMapping) -> Alert:
    data = row["data"] or {}
    reason = data.get("previousReason") or "failed"
    return Alert(
        LATE_SUCCESS,
        f"payment {row['payment_id']} was paid (KES {row['amount']}) after we had failed it "
        f"({reason}): fulfil the order or refund the customer",
        {"paymentId": row["payment_id"], "amount": row["amount"],
         "receipt": row["mpesa_receipt_number"], "previousReason": data.get("previousReason"),
         "processingMs": data.get("processingMs"), "paidAt": row["created_at"].isoformat()},
    )  # fmt: skip


def unknown_outcome_alerts(conn: sa.Connection, now: datetime) -> list[Alert]:
    """One `outcome_unknown` alert for each payment whose outcome no one can tell us."""
    rows = claims.unknown_outcomes(conn, now - LOOKBACK, BATCH)
    by_key = {f"outcome_unknown:{row['id']}": row for row in rows}
    claimed = claim_once(conn, OUTCOME_UNKNOWN, list(by_key), now)
    return [_unknown_outcome(by_key[key]) for key in claimed]


def _unknown_outcome(row: sa.RowMapping) -> Alert:
    return Alert(
        OUTCOME_UNKNOWN,
        f"payment {row['id']} (KES {row['amount']}) timed out without a CheckoutRequestID: "
        "its prompt may have been paid; check the M-Pesa statement, then fulfil or refund",
        {"paymentId": row["id"], "amount": row["amount"],
         "endedAt": row["finished_at"].isoformat()},
    )  # fmt: skip


def refund_due_alerts(conn: sa.Connection, now: datetime) -> list[Alert]:
    """One `refund_due` alert for each payment an order owes back, never alerted before.

    Money came for an order that was cancelled or already paid (or the shop cancelled a
    paid order): the shop must give it back.
    """
    by_key = {
        f"refund_due:{row['order_id']}:{row['data']['paymentId']}": row
        for row in claims.refund_events(conn, now - LOOKBACK, BATCH)
        if row["kind"] == "refund_due" or (row["data"] or {}).get("refundDue")
    }
    return [_refund_due(by_key[key]) for key in claim_once(conn, REFUND_DUE, list(by_key), now)]


def _refund_due(row: sa.RowMapping) -> Alert:
    data = row["data"]
    reason = data.get("reason") or "order_cancelled_after_payment"
    return Alert(
        REFUND_DUE,
        f"order {row['order_id']} owes payment {data['paymentId']} back ({reason}): "
        "refund the customer",
        {"orderId": row["order_id"], "paymentId": data["paymentId"], "reason": reason,
         "amount": data.get("amount"), "orderStatus": row["to_status"],
         "via": data.get("via"), "receipt": data.get("receipt"),
         "at": row["created_at"].isoformat()},
    )  # fmt: skip


def paybill_alerts(conn: sa.Connection, now: datetime) -> list[Alert]:
    """One `paybill_unmatched` alert for each PayBill payment that paid no order.

    Refunds due on a known order are `refund_due` alerts (their order's event names them).
    """
    found = c2b.needing_operator(conn, now - LOOKBACK, BATCH)
    by_key = {f"paybill:{r.id}": r for r in found if r.state != c2b.REFUND_DUE}
    claimed = claim_once(conn, PAYBILL_UNMATCHED, list(by_key), now)
    return [_paybill(by_key[key]) for key in claimed]


def _paybill(r: c2b.C2bRecord) -> Alert:
    amount = f"KES {r.amount}" if r.amount is not None else "an amount that is not whole shillings"
    reference = account_reference(r)
    return Alert(
        PAYBILL_UNMATCHED,
        f"PayBill payment {r.trans_id} ({amount}, account {reference!r}) paid no "
        f"order ({r.state}: {r.reason}): find its order or refund the customer",
        {"c2bId": r.id, "receipt": r.trans_id, "amount": r.amount,
         "accountReference": reference, "state": r.state, "reason": r.reason,
         "orderId": r.order_id, "at": r.received_at.isoformat()},
    )  # fmt: skip


def _poisoned(conn: sa.Connection, now: datetime) -> list[DeadJob]:
    """Messages our poison guard dead-lettered (also in `.XQ` when Redis is the broker)."""
    return [DeadJob(*row) for row in deliveries.dead_since(conn, now - LOOKBACK, BATCH)]


def _read_queues(queues: QueueReader, now: datetime) -> tuple[dict[str, float], list[DeadJob]]:
    """Each queue's oldest wait, and the broker's dead letters of the last LOOKBACK."""
    try:
        ages = {q.name: q.oldest_age_s for q in queues.stats() if q.oldest_age_s > 0}
        letters = queues.dead_letters(limit=BATCH)
    except (BrokerUnavailable, ValueError, KeyError) as exc:
        log.warning("could not read the queues in Redis for alerts: %s", exc)
        return {}, []
    since = now - LOOKBACK
    return ages, [
        DeadJob(d.message_id, d.queue, d.actor)
        for d in letters
        if d.dead_lettered_at is None or d.dead_lettered_at >= since
    ]

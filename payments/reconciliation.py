"""Never stuck: query payments whose callback is late, expire the silent ones, re-drive work.

The scheduler calls `tick()` every few seconds; `query_payment()` is a worker job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from daraja import wire
from daraja.errors import DarajaError
from domain.outcomes import Kind, outcome_of
from domain.payment import (
    PENDING,
    Change,
    Expired,
    PushAccepted,
    PushOutcomeUnknown,
    ResultReported,
    Source,
    Status,
)
from payments.container import Container
from payments.jobs import PROCESS_C2B, PROCESS_CALLBACK, QUERY_PAYMENT, SEND_PUSH
from payments.relay import relay, relay_committed
from payments.transitions import transition
from store import c2b, exchanges, outbox, payments
from store import reconciliation as due
from store.db import utcnow
from store.exchanges import StoreRecorder
from store.outbox import Job

log = logging.getLogger(__name__)

#: Longest wait between two queries of one payment while its customer waits.
MAX_QUERY_GAP_S = 80
#: Longest wait between two queries of an expired payment.
MAX_LATE_QUERY_GAP_S = 600
#: How long after its creation we still ask Daraja about an expired payment.
LATE_QUERY_WINDOW = timedelta(hours=24)
#: A stored callback not processed this long is queued again.
INBOX_STALE_S = 60
#: A `created` payment whose push job has not started this long is queued again.
CREATED_STALE_S = 30
#: Failures a query's success may still turn into a late success (see domain/payment.py).
QUERY_AFTER_FAILURE = ("timeout",)
#: A `sending` payment untouched this long lost its push job (whose time limit is 60 s).
SENDING_STALE_S = 90
#: Most rows one tick touches per kind of work (the rest wait for the next tick).
BATCH = 200


def query_gap(attempts: int, first_s: int, *, late: bool = False) -> timedelta:
    """The wait before query number `attempts + 1`: first_s, then doubling, capped.

    After expiry (`late`) the cap is longer: we keep asking so that a success nobody told us
    about is still found, but there is no customer waiting any more.
    """
    cap = MAX_LATE_QUERY_GAP_S if late else max(MAX_QUERY_GAP_S, first_s)
    return timedelta(seconds=min(first_s * 2**attempts, cap))


def query_payment(c: Container, payment_id: str) -> None:
    """Ask Daraja how payment `payment_id` ended, and apply a final answer (worker job)."""
    with c.engine.connect() as conn:
        record = payments.get(conn, payment_id)
    if record is None or record.checkout_request_id is None or not wants_query(record):
        return  # the callback (or an earlier query) already settled it
    try:
        answer = c.daraja.stk_query(
            record.checkout_request_id, recorder=StoreRecorder(c.engine, payment_id)
        )
    except DarajaError as exc:
        log.info("query for payment %s not answered yet: %s", payment_id, exc)
        return
    fact = ResultReported(
        source=Source.QUERY,
        result_code=answer.result_code,
        result_desc=answer.result_desc,
        checkout_request_id=record.checkout_request_id,
    )
    change = transition(c.engine, c.settings, payment_id, fact)
    if change is None and _is_final(answer.result_code):
        # e.g. an expired payment that Daraja says was cancelled: it stays failed (timeout).
        with c.engine.begin() as conn:
            payments.stop_querying(conn, payment_id)


def wants_query(record: payments.PaymentRecord) -> bool:
    """True while Daraja's answer about `record` could still change it."""
    if record.checkout_request_id is None:
        return False
    status = Status(record.status)
    return status in PENDING or (
        status is Status.FAILED and record.failure_reason in QUERY_AFTER_FAILURE
    )


def query_schedule(change: Change, at: datetime) -> dict[str, object]:
    """`next_query_at` for a change that gave a payment its CheckoutRequestID, if it may
    still be asked about (pending, or expired: a late success must still be found)."""
    after = change.after
    if after.checkout_request_id is None:
        return {}
    if after.status in PENDING or after.failure_reason in QUERY_AFTER_FAILURE:
        return {"next_query_at": at}
    return {}


def stored_push_answer(conn: sa.Connection, payment_id: str) -> wire.PushAccepted | None:
    """Daraja's acceptance of the payment's push as stored in its exchanges, if any."""
    for text in exchanges.push_answers(conn, payment_id):
        answer = wire.read_answer("application/json", text.encode("utf-8", "replace"))
        if not isinstance(answer, dict):
            continue
        try:
            return wire.parse_push_accepted(answer)
        except wire.WireError:
            continue
    return None


def _is_final(result_code: int) -> bool:
    outcome = outcome_of(result_code)
    return outcome.kind is Kind.SUCCESS or (
        outcome.kind is not Kind.NOT_YET and outcome.final_in_query
    )


@dataclass
class TickReport:
    relayed: int = 0
    queries: int = 0
    expired: int = 0
    callbacks_requeued: int = 0
    pushes_requeued: int = 0
    pushes_recovered: int = 0


def tick(c: Container, now: datetime | None = None) -> TickReport:
    """One pass of the reconciliation loop; each step is safe to run on several hosts."""
    now = now or utcnow()
    report = TickReport()
    report.pushes_recovered = _recover_sending(c, now)
    report.expired = _expire(c, now)
    # Jobs left unsent earlier (a broker refusal, a writer that died after its commit) go
    # first; this pass's own jobs are published right after their commit, below.
    report.relayed = relay(c, limit=BATCH * 3)
    with c.engine.begin() as conn:
        queries = _queue_due_queries(c, conn, now)
        callbacks = _requeue_stale_callbacks(conn, now)
        callbacks += _rematch_unmatched_callbacks(conn)
        callbacks += _requeue_stale_c2b(conn, now)
        pushes = _requeue_stale_pushes(conn, now)
    report.queries, report.callbacks_requeued = len(queries), len(callbacks)
    report.pushes_requeued = len(pushes)
    # Published after the commit, never inside it: a batch in one round trip, marked sent
    # off this pass's path (a refused batch stays unsent, for the next pass's relay).
    relay_committed(c, queries + callbacks + pushes)
    return report


def _recover_sending(c: Container, now: datetime) -> int:
    """Settle `sending` payments whose push job died, from what its exchanges hold.

    A stored acceptance means the push went out: the payment is `pushed` with that
    CheckoutRequestID and queried at once. Otherwise (the request recorded without an
    answer, or no trace) the push may have gone out: `unknown`, never pushed again; a
    callback on its token URL still completes it. Runs before expiry, so an expiring
    payment keeps its CheckoutRequestID and late queries can still find a success.
    """
    stale = now - timedelta(seconds=SENDING_STALE_S)
    deadline = now - timedelta(seconds=c.settings.payment_expiry_s)
    with c.reads.connect() as conn:
        ids = due.stuck_sending(conn, stale, deadline, BATCH)
    recovered = 0
    for payment_id in ids:
        with c.reads.connect() as conn:
            answer = stored_push_answer(conn, payment_id)
        if answer is None:
            fact: PushAccepted | PushOutcomeUnknown = PushOutcomeUnknown(
                "the push job stopped before its answer was applied"
            )
        else:
            fact = PushAccepted(answer.checkout_request_id, answer.merchant_request_id)
        change = transition(
            c.engine, c.settings, payment_id, fact, lambda ch: query_schedule(ch, now)
        )
        if change is not None:
            recovered += 1
            log.warning("payment %s recovered from sending: %s", payment_id, change.event.kind)
    return recovered


def _expire(c: Container, now: datetime) -> int:
    deadline = now - timedelta(seconds=c.settings.payment_expiry_s)
    with c.reads.connect() as conn:
        ids = due.pending_created_before(conn, deadline, BATCH)
    expired = 0
    for payment_id in ids:
        if transition(c.engine, c.settings, payment_id, Expired()) is not None:
            expired += 1
            log.info("payment %s expired without a final answer", payment_id)
    return expired


def _queue_due_queries(c: Container, conn: sa.Connection, now: datetime) -> list[Job]:
    expiry = timedelta(seconds=c.settings.payment_expiry_s)
    # One UPDATE per (attempts, late) pair and one outbox INSERT, not two statements per
    # payment: a pass with hundreds in flight stays a handful of round trips.
    dropped: list[str] = []
    queries: dict[tuple[int, bool], list[str]] = defaultdict(list)
    for payment_id, attempts, created_at in due.lock_due_queries(conn, now, BATCH):
        if now - created_at > LATE_QUERY_WINDOW:
            dropped.append(payment_id)
        else:
            queries[(attempts, now - created_at > expiry)].append(payment_id)
    due.stop_querying(conn, dropped)
    for (attempts, late), ids in queries.items():
        gap = query_gap(attempts + 1, c.settings.reconcile_after_s, late=late)
        due.schedule_queries(conn, ids, now + gap, attempts + 1)
    queued = [[payment_id] for ids in queries.values() for payment_id in ids]
    return outbox.add_many(conn, *QUERY_PAYMENT, queued)


def _requeue_stale_callbacks(conn: sa.Connection, now: datetime) -> list[Job]:
    ids = due.lock_stale_callbacks(conn, now - timedelta(seconds=INBOX_STALE_S), BATCH)
    for inbox_id in ids:
        due.mark_callback_seen(conn, inbox_id, now)
    return [outbox.add_job(conn, *PROCESS_CALLBACK, inbox_id) for inbox_id in ids]


def _requeue_stale_c2b(conn: sa.Connection, now: datetime) -> list[Job]:
    # PayBill confirmations whose matching job was lost (a broker blip after the commit).
    ids = c2b.stale(conn, now - timedelta(seconds=INBOX_STALE_S), BATCH)
    return [outbox.add_job(conn, *PROCESS_C2B, record_id) for record_id in ids]


def _rematch_unmatched_callbacks(conn: sa.Connection) -> list[Job]:
    # Callbacks that named a CheckoutRequestID nobody knew yet; the push's answer (or a
    # query) may have brought it since. Usually the push path re-matches them at once.
    ids = due.lock_matchable_callbacks(conn, BATCH)
    for inbox_id in ids:
        due.reopen_callback(conn, inbox_id)
    return [outbox.add_job(conn, *PROCESS_CALLBACK, inbox_id) for inbox_id in ids]


def _requeue_stale_pushes(conn: sa.Connection, now: datetime) -> list[Job]:
    ids = due.lock_stale_created(conn, now - timedelta(seconds=CREATED_STALE_S), BATCH)
    for payment_id in ids:
        # Sending twice is harmless: the push job moves the payment to `sending` with a
        # compare-and-set before its request leaves, so only one of them pushes.
        due.mark_payment_seen(conn, payment_id, now)
    return [outbox.add_job(conn, *SEND_PUSH, payment_id) for payment_id in ids]

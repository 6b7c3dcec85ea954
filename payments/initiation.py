"""Starting a payment: the shop's request (API) and the STK push (worker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta

import sqlalchemy as sa

from daraja.errors import OutcomeUnknown, Reason, Refused, RequestWithdrawn
from domain.payment import (
    Change,
    Fact,
    PushAccepted,
    PushOutcomeUnknown,
    PushRefused,
    PushStarted,
    decide,
)
from domain.phone import mask_msisdn
from payments.container import Container
from payments.jobs import PROCESS_CALLBACK, SEND_PUSH
from payments.reconciliation import query_schedule
from payments.relay import relay, relay_committed
from payments.transitions import only_the_payment, transition, transition_record
from plumbing import sealing
from store import exchanges, inbox, orders, outbox, payments
from store.db import autocommit, retrying, utcnow
from store.exchanges import StoreRecorder
from store.outbox import Job
from store.payments import Conflict, NewPayment, OrderBusy, PaymentRecord, PhoneBusy

log = logging.getLogger(__name__)

#: Pushes refused before processing (rate limit, subscriber locked) are sent again this
#: many times in all, with the worker's backoff between them, before the payment fails.
MAX_PUSH_ATTEMPTS = 4


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was first used with a different request body."""


class PushDeferred(Exception):
    """Daraja refused the push before processing; the worker retries it after a backoff."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Initiated:
    payment: PaymentRecord
    replayed: bool  # True when an Idempotency-Key matched an earlier request


def fingerprint(new: NewPayment) -> str:
    """A digest of the validated request, to tell a replay from a reused key."""
    canonical = json.dumps(asdict(new), sort_keys=True, separators=(",", ":"))
    # Keyed: a plain hash of a body holding a phone number could be matched by guessing.
    return sealing.current().keyed_digest(canonical.encode())


def initiate(
    c: Container,
    new: NewPayment,
    idempotency_key: str | None = None,
    guard: Callable[[sa.Connection], None] | None = None,
) -> Initiated:
    """Record a payment and queue its push, in one transaction; relay the job after commit.

    `guard` runs first inside that transaction and may refuse by raising (an order that was
    paid or cancelled meanwhile).
    """
    digest = fingerprint(new)
    # Without a guard, a replay is found by the insert itself (the key is taken, or the
    # phone busy with the first request's payment): a new request makes no read first. A
    # guard may refuse a replay (its order since paid), so it is answered before.
    if guard and idempotency_key and (earlier := _replay(c, idempotency_key, digest)):
        return earlier
    try:
        record, job = retrying(lambda: _insert(c, new, idempotency_key, digest, guard), attempts=3)
    except (PhoneBusy, OrderBusy, sa.exc.IntegrityError) as exc:
        # A concurrent request with the same key may have won the race: answer as it did.
        if idempotency_key and (earlier := _replay(c, idempotency_key, digest)):
            return earlier
        if isinstance(exc, PhoneBusy):
            raise PhoneBusy(_in_flight(c, new.phone_number)) from exc
        if isinstance(exc, OrderBusy) and new.order_id:
            raise OrderBusy(_order_in_flight(c, new.order_id)) from exc
        raise
    log.info("payment %s created for %s", record.id, mask_msisdn(record.phone_number))
    relay_committed(c, [job])
    return Initiated(record, replayed=False)


def _insert(
    c: Container,
    new: NewPayment,
    key: str | None,
    digest: str,
    guard: Callable[[sa.Connection], None] | None,
) -> tuple[PaymentRecord, Job]:
    claim = (key, digest) if key else None
    if guard is None:
        # Atomic by itself on PostgreSQL: no BEGIN and COMMIT round trips (store.payments.create).
        with c.reads.begin() as conn:
            return payments.create(conn, new, SEND_PUSH, claim)
    with c.engine.begin() as conn:
        guard(conn)
        return payments.create(conn, new, SEND_PUSH, claim)


def _in_flight(c: Container, phone: str) -> str:
    with c.engine.connect() as conn:
        return payments.in_flight_for(conn, phone) or ""


def _order_in_flight(c: Container, order_id: str) -> str:
    with c.engine.connect() as conn:
        return orders.in_flight_payment(conn, order_id) or ""


def _replay(c: Container, key: str, digest: str) -> Initiated | None:
    # Reads only, each row written once and never changed: no transaction needed.
    with c.reads.connect() as conn:
        stored = payments.idempotency_key(conn, key)
        if stored is None:
            return None
        if stored[0] != digest:
            raise IdempotencyKeyReused(key)
        record = payments.get(conn, stored[1])
    assert record is not None
    return Initiated(record, replayed=True)


def callback_url(c: Container, record: PaymentRecord) -> str:
    """This payment's CallBackURL: our webhook with its secret token in the path."""
    return f"{c.settings.mpesa_callback_url}/{record.callback_token}"


def send_push(c: Container, payment_id: str) -> None:
    """Send the STK push for `payment_id` at most once per go-ahead (worker job).

    The `sending` state is committed before the request leaves (with the request's own row,
    `_SendingRecorder`), so a crash, a timeout or a second delivery of this job can never
    push twice: only a refusal Daraja gives before processing puts the payment back to
    `created`.
    """
    found = _to_start(c, payment_id)
    if found is None:
        return  # already sent, or final: a redelivered job must not push again
    record, change = found
    # Where one statement can, the accepted answer is stored by the statement that records
    # it (`_accepted`); every other answer is stored before it is acted on, here.
    recorder = _SendingRecorder(c, record, change, hold_answer=_one_statement(c))
    try:
        accepted = c.daraja.stk_push(
            phone=record.phone_number,
            amount=record.amount,
            callback_url=callback_url(c, record),
            account_reference=c.settings.mpesa_account_reference,
            description=c.settings.mpesa_transaction_desc,
            recorder=recorder,
        )
    except PushTaken:
        return  # another delivery of this job pushed it, or it ended: nothing was sent
    except Refused as exc:
        recorder.flush()
        if (sending := recorder.started()) is not None:
            _refused(c, sending, sending.push_attempts, exc)
        return
    except OutcomeUnknown as exc:
        recorder.flush()
        if (sending := recorder.started()) is not None:
            _record(c, payment_id, PushOutcomeUnknown(str(exc)), known=sending)
        return
    except Exception as exc:
        # Whatever broke, the request may have left: treat it as sent, never resend.
        recorder.flush()
        if (sending := recorder.started()) is not None:
            _record(c, payment_id, PushOutcomeUnknown(f"client error: {exc!r}"), known=sending)
        raise
    except BaseException:
        # A time limit or a shutdown mid-call: keep what Daraja answered; the payment stays
        # `sending` (the reconciliation pass recovers it), or `created` if nothing was sent.
        recorder.flush()
        raise
    # The payment as `sending` was written is decided on without reading it again (a
    # compare-and-set catches any change since).
    _accepted(
        c, payment_id, accepted.checkout_request_id, accepted.merchant_request_id,
        recorder.sending, answer=recorder.held_answer(),
    )  # fmt: skip


def _to_start(c: Container, payment_id: str) -> tuple[PaymentRecord, Change] | None:
    """The payment and its move to `sending`, decided but not written; None when it is not
    to be pushed (already sent, or final)."""
    with c.reads.connect() as conn:
        record = payments.get(conn, payment_id)
    change = decide(record.to_domain(), PushStarted()) if record is not None else None
    return (record, change) if record is not None and change is not None else None


class PushTaken(RequestWithdrawn):
    """The payment moved since it was read (another delivery of the job pushed it, or it
    expired): this job must send nothing."""


class _SendingRecorder(StoreRecorder):
    """Moves the payment to `sending` as the push's first request is stored, then records
    each exchange as `StoreRecorder` does.

    `sending` must be durable before a request leaves; on PostgreSQL it is written by the
    statement that stores the request (one round trip, where they took two), after the
    client has a slot and a token, just before the request is sent. Should the payment have
    moved since it was read, nothing is stored and `PushTaken` refuses the request. A call
    that ends before any request was stored (a token that could not be fetched, input
    refused before sending) writes `sending` then (`started`), so its end is recorded as
    before.
    """

    def __init__(
        self, c: Container, record: PaymentRecord, change: Change, *, hold_answer: bool
    ) -> None:
        super().__init__(c.engine, record.id, hold_answer=hold_answer)
        self._c, self._record, self._change = c, record, change
        #: The payment as `sending` was written, once it is.
        self.sending: PaymentRecord | None = None
        self._taken = False

    def request_sent(self, operation: str, url: str, body: Mapping[str, object]) -> object:
        if self.sending is None and not self._taken and _in_one_statement(self._c, self._change):
            request = exchanges.request_params(self._record.id, operation, url, body)
            try:
                # A database blip is waited out, as the request's own write always was.
                self.sending, handle = retrying(lambda: self._move_with(request))
            except Conflict:
                pass  # moved since it was read: decided afresh below (written, if to push)
            else:
                return handle
        if self.started() is None:
            raise PushTaken(self._record.id)
        return super().request_sent(operation, url, body)

    def _move_with(self, request: dict[str, object]) -> tuple[PaymentRecord, int]:
        """`sending` and the request in one statement; the payment as written and the
        request's exchange id. Raises `Conflict` if the payment moved since it was read."""
        with autocommit(self._c.engine).connect() as conn:
            try:
                return payments.apply_requesting(conn, self._record, self._change, request)
            except Conflict:
                # Run again after a reply was lost, the statement finds its own write: the
                # request row it stores only with the move says whether that was committed.
                ours = exchanges.request_id(conn, self._record.id, request["r_sent_at"])
                record = payments.get(conn, self._record.id) if ours is not None else None
                if ours is None or record is None or record.version != self._record.version + 1:
                    raise
                return record, ours

    def started(self) -> PaymentRecord | None:
        """The payment as `sending` was written, writing it now if it is not yet; None when
        it is not to be pushed any more (another job took it, or it ended)."""
        if self.sending is None and not self._taken:
            c = self._c
            applied = transition_record(
                c.engine, c.settings, self._record.id, PushStarted(), known=self._record
            )
            if applied is None:
                self._taken = True
            else:
                self.sending = applied[0]
        return self.sending


def _one_statement(c: Container) -> bool:
    return payments.writes_in_one_statement(c.engine)


def _in_one_statement(c: Container, change: Change) -> bool:
    return _one_statement(c) and only_the_payment(change)


def _record(
    c: Container,
    payment_id: str,
    fact: Fact,
    extra: Callable[[Change], dict[str, object]] | None = None,
    *,
    known: PaymentRecord | None = None,
) -> None:
    # What a push came to is known only here, once: wait out a database blip rather than
    # leave the payment in `sending` with its answer lost.
    retrying(
        lambda: transition(c.engine, c.settings, payment_id, fact, extra, known=known), attempts=8
    )


def _refused(c: Container, sending: PaymentRecord, attempts: int, exc: Refused) -> None:
    give_up = not exc.retryable or attempts >= MAX_PUSH_ATTEMPTS
    fact = PushRefused(reason=refusal_reason(exc), detail=str(exc), give_up=give_up)
    _record(c, sending.id, fact, known=sending)
    if not give_up:
        raise PushDeferred(
            f"push refused before processing, attempt {attempts}: {exc}", exc.retry_after_s
        )


def refusal_reason(exc: Refused) -> str:
    """The failure reason a push refusal stands for."""
    text = exc.message.lower()
    if "phonenumber" in text or "partya" in text:
        return "invalid_phone_number"
    if exc.reason is Reason.SUBSCRIBER_LOCKED:
        return "subscriber_busy"
    return "mpesa_unavailable" if exc.retryable else "push_refused"


def _accepted(
    c: Container,
    payment_id: str,
    checkout_id: str,
    merchant_id: str,
    sending: PaymentRecord | None = None,
    *,
    answer: dict[str, object] | None = None,
) -> None:
    """Record the push's acceptance; `answer`: Daraja's raw answer, held to be stored with it
    (`StoreRecorder.held_answer`), and in any case stored before the payment moves."""
    next_query = utcnow() + timedelta(seconds=c.settings.reconcile_after_s)

    def extra(change: Change) -> dict[str, object]:
        # Also when the expiry overtook the answer: a late success must still be found.
        return query_schedule(change, next_query)

    fact = PushAccepted(checkout_id, merchant_id)
    change = decide(sending.to_domain(), fact) if sending is not None else None
    if sending is not None and change is not None and _in_one_statement(c, change):
        known, held = sending, answer
        waits = retrying(
            lambda: _accepted_in_one_statement(c, known, change, extra, held), attempts=8
        )
        answer = None  # stored by that statement, whether or not the payment moved
        if waits is not None:
            if waits:
                # Should the worker die before this, the reconciliation pass rematches them.
                retrying(lambda: _rematch_early_callbacks(c, checkout_id))
            return
    if answer is not None:
        held = answer
        retrying(lambda: exchanges.store_answer(c.engine, held), attempts=8)
    retrying(
        lambda: transition_record(c.engine, c.settings, payment_id, fact, extra, known=sending),
        attempts=8,
    )
    # Once the answer is recorded, callbacks that overtook it are put back in line (usually
    # there are none: one look). Should the worker die in between, the reconciliation pass
    # rematches unmatched callbacks whose CheckoutRequestID a payment has.
    retrying(lambda: _rematch_early_callbacks(c, checkout_id))


def _accepted_in_one_statement(
    c: Container,
    sending: PaymentRecord,
    change: Change,
    extra: Callable[[Change], dict[str, object]],
    answer: dict[str, object] | None,
) -> bool | None:
    """The usual answer: the payment as `sending` was written moves to `pushed`, and the
    same statement stores Daraja's raw answer (`answer`) and tells whether a callback
    overtook it (one round trip when none did).

    Returns whether one waits as `unmatched`; None when the payment changed since (the
    caller then takes the general path; the answer is stored either way).
    """
    with autocommit(c.engine).connect() as conn:
        try:
            _, waits = payments.apply_seeing_unmatched(
                conn, sending, change, answer, **extra(change)
            )
        except Conflict:
            return None  # moved since: decided again on the row by the general path
    return waits


def _reopen_early_callbacks(conn: sa.Connection, checkout_id: str) -> list[int]:
    # A callback can overtake the push's answer; it waited as `unmatched` until now.
    return [
        outbox.add(conn, *PROCESS_CALLBACK, inbox_id)
        for inbox_id in inbox.reopen_unmatched(conn, checkout_id)
    ]


def _rematch_early_callbacks(c: Container, checkout_id: str) -> None:
    with c.reads.connect() as conn:
        if not inbox.has_unmatched(conn, checkout_id):
            return  # the usual case: one look, no transaction
    with c.engine.begin() as conn:
        job_ids = _reopen_early_callbacks(conn, checkout_id)
    if job_ids:
        relay(c, job_ids)

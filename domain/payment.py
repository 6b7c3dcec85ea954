r"""The payment state machine: every way a payment's state may change, and nothing else.

A payment is a frozen snapshot. `decide(payment, fact)` returns the `Change` a fact causes,
or None when the fact changes nothing (a duplicate, a fact that arrives out of order, or
one that must not move money). Facts never raise: Daraja and our workers repeat themselves.

    created --push_started--> sending --accepted--> pushed --result--> completed|failed|cancelled
                                 |  \--refused (retryable)--> created
                                 |   \-refused (final)-----> failed
                                 \--no answer--> unknown --result (callback via token)--> ...
    any pending state --expired--> failed (timeout)
    failed|cancelled --success--> completed (late_success)
    failed (amount_mismatch) --callback success with the amount asked--> completed (late_success)

Rule of money: `completed` only on ResultCode 0 for this payment, from a callback whose
amount is the amount asked (its receipt recorded) or from a query (receipt not yet known).
A callback with another amount never completes a payment. After one, only a callback with
the right amount and a receipt completes it (the other was wrong, or forged): a query cannot,
since it carries no amount, so operators decide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from domain.events import Event
from domain.money import amount_matches
from domain.outcomes import Kind, message_for_reason, outcome_of


class Status(StrEnum):
    CREATED = "created"  # accepted from the shop; no push sent yet
    SENDING = "sending"  # a push may be on its way: never send another
    PUSHED = "pushed"  # Daraja accepted the push; the prompt is on the phone
    UNKNOWN = "unknown"  # the push was sent but its answer was lost
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States in which the payment's outcome is not known yet.
PENDING = frozenset({Status.CREATED, Status.SENDING, Status.PUSHED, Status.UNKNOWN})
#: States that hold until a late success.
FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Source(StrEnum):
    CALLBACK = "callback"
    QUERY = "query"


def public_status(status: Status) -> str:
    """The status the shop sees: pending, completed, failed or cancelled."""
    return "pending" if status in PENDING else status.value


_PENDING_MESSAGES = {
    Status.CREATED: "Sending the M-Pesa prompt to your phone.",
    Status.SENDING: "Sending the M-Pesa prompt to your phone.",
    Status.PUSHED: "Check your phone and enter your M-Pesa PIN to pay.",
    Status.UNKNOWN: "Check your phone; if an M-Pesa prompt appears, enter your PIN to pay.",
}


def customer_message(payment: Payment) -> str:
    """What the checkout page should tell the customer about `payment`."""
    if payment.status in _PENDING_MESSAGES:
        return _PENDING_MESSAGES[payment.status]
    if payment.status is Status.COMPLETED:
        return "Payment received. Thank you!"
    return message_for_reason(payment.failure_reason or "mpesa_error")


@dataclass(frozen=True)
class Payment:
    """What the state machine needs to know about one payment."""

    id: str
    amount: int
    status: Status = Status.CREATED
    checkout_request_id: str | None = None
    merchant_request_id: str | None = None
    receipt: str | None = None
    receipt_pending: bool = False  # completed by a query: the receipt comes with a callback
    transaction_date: datetime | None = None
    result_code: int | None = None
    result_desc: str | None = None
    failure_reason: str | None = None
    late_success: bool = False
    push_attempts: int = 0


@dataclass(frozen=True)
class Change:
    before: Payment
    after: Payment
    event: Event


# Facts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushStarted:
    """A worker is about to send the STK push."""


@dataclass(frozen=True)
class PushAccepted:
    checkout_request_id: str
    merchant_request_id: str


@dataclass(frozen=True)
class PushRefused:
    """Daraja refused the push before processing: no prompt went out."""

    reason: str
    detail: str
    give_up: bool  # False: safe to send again later; True: the payment fails


@dataclass(frozen=True)
class PushOutcomeUnknown:
    """The push was sent and its answer lost: the prompt may be on the phone."""

    detail: str


@dataclass(frozen=True)
class ResultReported:
    """A ResultCode for this payment, from a callback or an STK query."""

    source: Source
    result_code: int
    result_desc: str
    checkout_request_id: str | None = None
    amount: Decimal | None = None  # callbacks only
    receipt: str | None = None  # callbacks only
    transaction_date: datetime | None = None


@dataclass(frozen=True)
class Expired:
    """The payment waited PAYMENT_EXPIRY_S without a final answer."""


Fact = PushStarted | PushAccepted | PushRefused | PushOutcomeUnknown | ResultReported | Expired


def decide(payment: Payment, fact: Fact) -> Change | None:
    """The change `fact` makes to `payment`, or None if it changes nothing."""
    match fact:
        case PushStarted():
            change = _push_started(payment)
        case PushAccepted():
            change = _push_accepted(payment, fact)
        case PushRefused():
            change = _push_refused(payment, fact)
        case PushOutcomeUnknown():
            change = _push_unknown(payment, fact)
        case ResultReported():
            change = _result(payment, fact)
        case Expired():
            change = _expired(payment)
    return change


def _change(before: Payment, kind: str, data: dict[str, object], **fields: object) -> Change:
    after = replace(before, **fields)  # type: ignore[arg-type]
    return Change(before, after, Event(kind, {"from": before.status.value, **data}))


def _push_started(p: Payment) -> Change | None:
    if p.status is not Status.CREATED:
        return None
    return _change(
        p, "push_started", {"attempt": p.push_attempts + 1},
        status=Status.SENDING, push_attempts=p.push_attempts + 1,
    )  # fmt: skip


def _push_accepted(p: Payment, f: PushAccepted) -> Change | None:
    if p.checkout_request_id is not None:
        return None
    # A callback (matched by our URL token) or the expiry may have overtaken the answer:
    # keep the ids so queries can find the payment, but leave a final status alone.
    status = Status.PUSHED if p.status is Status.SENDING else p.status
    return _change(
        p, "push_accepted", {"checkoutRequestId": f.checkout_request_id},
        status=status, checkout_request_id=f.checkout_request_id,
        merchant_request_id=f.merchant_request_id,
    )  # fmt: skip


def _push_refused(p: Payment, f: PushRefused) -> Change | None:
    if p.status is not Status.SENDING:
        return None
    data: dict[str, object] = {"reason": f.reason, "detail": f.detail}
    if f.give_up:
        return _change(p, "push_refused", data, status=Status.FAILED, failure_reason=f.reason)
    return _change(p, "push_deferred", data, status=Status.CREATED)


def _push_unknown(p: Payment, f: PushOutcomeUnknown) -> Change | None:
    if p.status is not Status.SENDING:
        return None
    return _change(p, "push_unknown", {"detail": f.detail}, status=Status.UNKNOWN)


def _expired(p: Payment) -> Change | None:
    if p.status not in PENDING:
        return None
    return _change(p, "expired", {}, status=Status.FAILED, failure_reason="timeout")


def _result(p: Payment, f: ResultReported) -> Change | None:
    if f.checkout_request_id and p.checkout_request_id not in (None, f.checkout_request_id):
        return None  # a result for another push: never ours to act on
    outcome = outcome_of(f.result_code)
    if outcome.kind is Kind.NOT_YET:
        return None
    if outcome.kind is Kind.SUCCESS:
        return _success(p, f)
    if f.source is Source.QUERY and not outcome.final_in_query:
        return None  # a query answer we cannot read as final: ask again later
    if p.status not in PENDING:
        return None
    status = Status.CANCELLED if outcome.kind is Kind.CANCELLED else Status.FAILED
    return _change(
        p, status.value, {"source": f.source.value, "resultCode": f.result_code},
        status=status, failure_reason=outcome.reason, result_code=f.result_code,
        result_desc=f.result_desc,
        checkout_request_id=f.checkout_request_id or p.checkout_request_id,
    )  # fmt: skip


def _success(p: Payment, f: ResultReported) -> Change | None:
    from_callback = f.source is Source.CALLBACK
    if from_callback and (f.amount is None or not amount_matches(p.amount, f.amount)):
        return _amount_mismatch(p, f)
    if p.failure_reason == "amount_mismatch" and not (from_callback and f.receipt):
        return None  # a query says nothing of the amount: operators decide, not a query
    # A callback without a receipt completes like a query: the receipt may still come.
    receipt = f.receipt if from_callback and f.receipt else None
    if p.status is Status.COMPLETED:
        if p.receipt_pending and receipt:
            return _change(
                p, "receipt_recorded", {"receipt": f.receipt},
                receipt=f.receipt, receipt_pending=False, transaction_date=f.transaction_date,
            )  # fmt: skip
        return None
    late = p.status in FINAL
    return _change(
        p, "late_success" if late else "completed",
        {"source": f.source.value, "previousReason": p.failure_reason} if late
        else {"source": f.source.value},
        status=Status.COMPLETED, late_success=late, failure_reason=None,
        result_code=f.result_code, result_desc=f.result_desc,
        checkout_request_id=f.checkout_request_id or p.checkout_request_id,
        receipt=receipt, receipt_pending=receipt is None,
        transaction_date=f.transaction_date if from_callback else None,
    )  # fmt: skip


def _amount_mismatch(p: Payment, f: ResultReported) -> Change | None:
    # Money moved, but not the amount we asked: never `completed`; operators must look.
    if p.status not in PENDING:
        return None
    return _change(
        p, "amount_mismatch", {"asked": p.amount, "reported": str(f.amount), "receipt": f.receipt},
        status=Status.FAILED, failure_reason="amount_mismatch", result_code=f.result_code,
        result_desc=f.result_desc,
        checkout_request_id=f.checkout_request_id or p.checkout_request_id,
    )  # fmt: skip

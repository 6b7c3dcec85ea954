"""Every transition of the payment state machine, one fact from one status at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.events import Event
from domain.payment import (
    FINAL,
    PENDING,
    Change,
    Expired,
    Fact,
    Payment,
    PushAccepted,
    PushOutcomeUnknown,
    PushRefused,
    PushStarted,
    ResultReported,
    Source,
    Status,
    customer_message,
    decide,
    public_status,
)

pytestmark = pytest.mark.unit

AMOUNT = 1500
OURS = "ws_CO_26112026123456789712345678"
OTHER = "ws_CO_26112026123456790722000000"
MERCHANT = "29115-34620561-1"
RECEIPT = "NLJ7RT61SV"
PAID_AT = datetime(2026, 11, 26, 12, 35, 2)

PENDING_STATUSES = sorted(PENDING)
FINAL_STATUSES = sorted(FINAL)
ALL_STATUSES = list(Status)
NOT_FINAL_YET = sorted(set(FINAL) - {Status.COMPLETED})  # failed and cancelled

_SHAPE: dict[Status, dict[str, Any]] = {
    Status.CREATED: {},
    Status.SENDING: {"push_attempts": 1},
    Status.PUSHED: {"push_attempts": 1, "checkout_request_id": OURS},
    Status.UNKNOWN: {"push_attempts": 1},
    Status.COMPLETED: {
        "push_attempts": 1, "checkout_request_id": OURS, "receipt": RECEIPT, "result_code": 0,
    },
    Status.FAILED: {
        "push_attempts": 1, "checkout_request_id": OURS, "failure_reason": "insufficient_funds",
        "result_code": 1,
    },
    Status.CANCELLED: {
        "push_attempts": 1, "checkout_request_id": OURS, "failure_reason": "cancelled_by_user",
        "result_code": 1032,
    },
}  # fmt: skip


def payment_in(shape: Status, **fields: Any) -> Payment:
    """A payment of AMOUNT as it would be in status `shape`, with `fields` overriding."""
    return Payment(id="pay-1", amount=AMOUNT, **{"status": shape, **_SHAPE[shape], **fields})


def callback(
    code: int = 0,
    *,
    amount: Decimal | None = Decimal(AMOUNT),
    receipt: str | None = RECEIPT,
    checkout: str | None = OURS,
) -> ResultReported:
    """A parsed STK callback; failures carry no amount or receipt, as on the wire."""
    paid = code == 0
    return ResultReported(
        Source.CALLBACK, code, f"desc {code}", checkout_request_id=checkout,
        amount=amount if paid else None, receipt=receipt if paid else None,
        transaction_date=PAID_AT if paid else None,
    )  # fmt: skip


def query(code: int = 0, *, checkout: str | None = OURS) -> ResultReported:
    return ResultReported(Source.QUERY, code, f"desc {code}", checkout_request_id=checkout)


def changed(payment: Payment, fact: Fact) -> Change:
    change = decide(payment, fact)
    assert change is not None, f"{fact!r} changed nothing from {payment.status}"
    assert change.before == payment
    assert change.event.data["from"] == payment.status.value
    return change


# Push started ------------------------------------------------------------------------------


def test_push_started_from_created_moves_to_sending_and_counts_the_attempt() -> None:
    change = changed(payment_in(Status.CREATED), PushStarted())

    assert change.after == payment_in(Status.CREATED, status=Status.SENDING, push_attempts=1)
    assert change.event == Event("push_started", {"from": "created", "attempt": 1})


def test_push_started_after_a_deferred_push_counts_the_next_attempt() -> None:
    change = changed(payment_in(Status.CREATED, push_attempts=2), PushStarted())

    assert change.after.push_attempts == 3
    assert change.event.data["attempt"] == 3


@pytest.mark.parametrize("status", sorted(set(Status) - {Status.CREATED}))
def test_push_started_outside_created_is_a_no_op_so_no_second_prompt(status: Status) -> None:
    assert decide(payment_in(status), PushStarted()) is None


# Push accepted -----------------------------------------------------------------------------


def test_push_accepted_while_sending_records_the_ids_and_marks_pushed() -> None:
    change = changed(payment_in(Status.SENDING), PushAccepted(OURS, MERCHANT))

    assert change.after == payment_in(
        Status.SENDING, status=Status.PUSHED, checkout_request_id=OURS,
        merchant_request_id=MERCHANT,
    )  # fmt: skip
    assert change.event == Event("push_accepted", {"from": "sending", "checkoutRequestId": OURS})


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_push_accepted_again_is_a_no_op_once_a_checkout_id_is_known(status: Status) -> None:
    payment = payment_in(status, checkout_request_id=OURS)

    assert decide(payment, PushAccepted(OURS, MERCHANT)) is None
    assert decide(payment, PushAccepted(OTHER, MERCHANT)) is None


def test_push_accepted_after_expiry_keeps_the_ids_but_not_the_status() -> None:
    expired = changed(payment_in(Status.SENDING), Expired()).after

    change = changed(expired, PushAccepted(OURS, MERCHANT))

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == "timeout"
    assert change.after.checkout_request_id == OURS
    assert change.after.merchant_request_id == MERCHANT


@pytest.mark.parametrize("status", [*FINAL_STATUSES, Status.CREATED, Status.UNKNOWN])
def test_push_accepted_outside_sending_records_the_ids_and_keeps_the_status(
    status: Status,
) -> None:
    payment = payment_in(status, checkout_request_id=None)

    change = changed(payment, PushAccepted(OURS, MERCHANT))

    assert change.after == replace(payment, checkout_request_id=OURS, merchant_request_id=MERCHANT)


# Push refused / outcome unknown ------------------------------------------------------------


def test_retryable_push_refusal_returns_to_created_without_failing() -> None:
    fact = PushRefused("subscriber_busy", "500.001.1001 Unable to lock subscriber", give_up=False)

    change = changed(payment_in(Status.SENDING), fact)

    assert change.after == payment_in(Status.SENDING, status=Status.CREATED)
    assert change.event == Event(
        "push_deferred",
        {"from": "sending", "reason": "subscriber_busy", "detail": fact.detail},
    )


def test_final_push_refusal_fails_with_its_reason() -> None:
    fact = PushRefused("invalid_phone_number", "400.002.02 Invalid PhoneNumber", give_up=True)

    change = changed(payment_in(Status.SENDING), fact)

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == "invalid_phone_number"
    assert change.event.kind == "push_refused"


@pytest.mark.parametrize("give_up", [False, True])
@pytest.mark.parametrize("status", sorted(set(Status) - {Status.SENDING}))
def test_push_refusal_outside_sending_is_a_no_op(status: Status, give_up: bool) -> None:
    fact = PushRefused("push_refused", "500.003.02", give_up=give_up)

    assert decide(payment_in(status), fact) is None


def test_push_with_a_lost_answer_becomes_unknown_not_failed() -> None:
    change = changed(payment_in(Status.SENDING), PushOutcomeUnknown("read timeout"))

    assert change.after == payment_in(Status.SENDING, status=Status.UNKNOWN)
    assert change.event == Event("push_unknown", {"from": "sending", "detail": "read timeout"})


@pytest.mark.parametrize("status", sorted(set(Status) - {Status.SENDING}))
def test_push_outcome_unknown_outside_sending_is_a_no_op(status: Status) -> None:
    assert decide(payment_in(status), PushOutcomeUnknown("read timeout")) is None


# Expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_expiry_fails_every_pending_payment_with_timeout(status: Status) -> None:
    change = changed(payment_in(status), Expired())

    assert change.after == payment_in(status, status=Status.FAILED, failure_reason="timeout")
    assert change.event == Event("expired", {"from": status.value})


@pytest.mark.parametrize("status", FINAL_STATUSES)
def test_expiry_leaves_final_payments_alone(status: Status) -> None:
    assert decide(payment_in(status), Expired()) is None


# Failures from callbacks and queries ---------------------------------------------------------

FAILURES = [
    (1, "insufficient_funds"),
    (1019, "transaction_expired"),
    (1037, "phone_unreachable"),
    (2001, "wrong_pin"),
]


@pytest.mark.parametrize(("code", "reason"), FAILURES)
@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_callback_failure_code_fails_a_pending_payment_with_its_reason(
    status: Status, code: int, reason: str
) -> None:
    change = changed(payment_in(status), callback(code))

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == reason
    assert (change.after.result_code, change.after.result_desc) == (code, f"desc {code}")
    assert change.after.receipt is None
    assert change.event == Event(
        "failed", {"from": status.value, "source": "callback", "resultCode": code}
    )


@pytest.mark.parametrize("source", [callback, query])
@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_1032_cancels_a_pending_payment(status: Status, source: Any) -> None:
    change = changed(payment_in(status), source(1032))

    assert change.after.status is Status.CANCELLED
    assert change.after.failure_reason == "cancelled_by_user"
    assert change.event.kind == "cancelled"


@pytest.mark.parametrize(("code", "reason"), FAILURES)
def test_query_failure_code_fails_a_pushed_payment_with_its_reason(code: int, reason: str) -> None:
    change = changed(payment_in(Status.PUSHED), query(code))

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == reason
    assert change.event.data["source"] == "query"


@pytest.mark.parametrize("code", [9998, 123456, -1])
def test_callback_with_an_unknown_code_fails_with_mpesa_error(code: int) -> None:
    change = changed(payment_in(Status.PUSHED), callback(code))

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == "mpesa_error"


@pytest.mark.parametrize("code", [9998, 123456, -1])
def test_query_with_an_unknown_code_is_a_no_op_until_asked_again(code: int) -> None:
    assert decide(payment_in(Status.PUSHED), query(code)) is None


@pytest.mark.parametrize("source", [callback, query])
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_still_processing_4999_is_a_no_op(status: Status, source: Any) -> None:
    assert decide(payment_in(status), source(4999)) is None


@pytest.mark.parametrize("code", [1, 1032, 1037, 2001, 9998])
@pytest.mark.parametrize("status", FINAL_STATUSES)
def test_failure_after_a_final_outcome_changes_nothing(status: Status, code: int) -> None:
    payment = payment_in(status)

    assert decide(payment, callback(code)) is None
    assert decide(payment, query(code)) is None


def test_duplicate_failure_callback_is_a_no_op() -> None:
    failed = changed(payment_in(Status.PUSHED), callback(1037)).after

    assert decide(failed, callback(1037)) is None


@pytest.mark.parametrize("status", [Status.SENDING, Status.UNKNOWN])
def test_callback_that_overtakes_the_push_answer_records_its_checkout_id(status: Status) -> None:
    change = changed(payment_in(status), callback(1032))

    assert change.after.checkout_request_id == OURS


# Success -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_callback_success_with_the_asked_amount_completes_with_its_receipt(
    status: Status,
) -> None:
    change = changed(payment_in(status), callback(0))

    assert change.after == payment_in(
        status, status=Status.COMPLETED, checkout_request_id=OURS, receipt=RECEIPT,
        receipt_pending=False, transaction_date=PAID_AT, result_code=0, result_desc="desc 0",
    )  # fmt: skip
    assert change.event == Event("completed", {"from": status.value, "source": "callback"})


def test_callback_success_with_the_amount_written_with_cents_completes() -> None:
    change = changed(payment_in(Status.PUSHED), callback(0, amount=Decimal("1500.00")))

    assert change.after.status is Status.COMPLETED


@pytest.mark.parametrize("amount", ["1499", "1500.01", "15000", "-1500", "NaN", "sNaN", None])
@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_callback_success_with_other_amount_fails_with_amount_mismatch(
    status: Status, amount: str | None
) -> None:
    reported = None if amount is None else Decimal(amount)

    change = changed(payment_in(status), callback(0, amount=reported))

    assert change.after.status is Status.FAILED
    assert change.after.failure_reason == "amount_mismatch"
    assert change.after.receipt is None
    assert change.event == Event(
        "amount_mismatch",
        {"from": status.value, "asked": AMOUNT, "reported": str(reported), "receipt": RECEIPT},
    )


def test_duplicate_success_callback_is_a_no_op() -> None:
    completed = changed(payment_in(Status.PUSHED), callback(0)).after

    assert decide(completed, callback(0)) is None
    assert decide(completed, callback(0, receipt="QWE1RT2YUI")) is None


@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_query_success_completes_with_the_receipt_pending(status: Status) -> None:
    change = changed(payment_in(status), query(0))

    assert change.after.status is Status.COMPLETED
    assert change.after.receipt is None
    assert change.after.receipt_pending is True
    assert change.after.transaction_date is None
    assert change.event == Event("completed", {"from": status.value, "source": "query"})


def test_callback_after_a_query_completion_records_the_receipt() -> None:
    by_query = changed(payment_in(Status.PUSHED), query(0)).after

    change = changed(by_query, callback(0))

    assert change.after == replace(
        by_query, receipt=RECEIPT, receipt_pending=False, transaction_date=PAID_AT
    )
    assert change.event == Event("receipt_recorded", {"from": "completed", "receipt": RECEIPT})
    assert decide(change.after, callback(0)) is None


def test_callback_with_other_amount_after_a_query_completion_records_no_receipt() -> None:
    by_query = changed(payment_in(Status.PUSHED), query(0)).after

    assert decide(by_query, callback(0, amount=Decimal(1))) is None


def test_callback_success_without_a_receipt_completes_with_the_receipt_pending() -> None:
    change = changed(payment_in(Status.PUSHED), callback(0, receipt=None))

    assert change.after.status is Status.COMPLETED
    assert (change.after.receipt, change.after.receipt_pending) == (None, True)
    receipt_arrives = changed(change.after, callback(0))
    assert receipt_arrives.after.receipt == RECEIPT


def test_callback_success_with_an_empty_receipt_leaves_the_receipt_pending() -> None:
    change = changed(payment_in(Status.PUSHED), callback(0, receipt=""))

    assert (change.after.receipt, change.after.receipt_pending) == (None, True)


@pytest.mark.parametrize("fact", [query(0), callback(0)])
def test_success_after_a_callback_completion_is_a_no_op(fact: ResultReported) -> None:
    assert decide(payment_in(Status.COMPLETED), fact) is None


@pytest.mark.parametrize("fact", [query(0), callback(0, receipt=None)])
def test_success_without_a_receipt_after_a_query_completion_is_a_no_op(
    fact: ResultReported,
) -> None:
    by_query = changed(payment_in(Status.PUSHED), query(0)).after

    assert decide(by_query, fact) is None


@pytest.mark.parametrize("source", [callback, query])
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.FAILED, "timeout"),
        (Status.FAILED, "insufficient_funds"),
        (Status.FAILED, "push_refused"),
        (Status.CANCELLED, "cancelled_by_user"),
    ],
)
def test_late_success_after_a_failure_completes_and_flags_late_success(
    status: Status, reason: str, source: Any
) -> None:
    change = changed(payment_in(status, failure_reason=reason), source(0))

    assert change.after.status is Status.COMPLETED
    assert change.after.late_success is True
    assert change.after.failure_reason is None
    assert change.after.result_code == 0
    assert change.event == Event(
        "late_success",
        {"from": status.value, "source": source(0).source.value, "previousReason": reason},
    )


def test_late_success_after_expiry_then_its_callback_fills_the_receipt() -> None:
    expired = changed(payment_in(Status.PUSHED), Expired()).after
    by_query = changed(expired, query(0)).after

    with_receipt = changed(by_query, callback(0)).after

    assert with_receipt.status is Status.COMPLETED
    assert with_receipt.late_success is True
    assert (with_receipt.receipt, with_receipt.receipt_pending) == (RECEIPT, False)


@pytest.mark.parametrize("status", NOT_FINAL_YET)
def test_late_success_callback_with_other_amount_changes_nothing(status: Status) -> None:
    assert decide(payment_in(status), callback(0, amount=Decimal(1))) is None


@pytest.mark.parametrize(
    "fact", [query(0), callback(0, receipt=None), callback(0, amount=Decimal(2))]
)
def test_success_without_amount_or_receipt_after_an_amount_mismatch_never_completes(
    fact: ResultReported,
) -> None:
    mismatched = changed(payment_in(Status.PUSHED), callback(0, amount=Decimal(1))).after

    assert decide(mismatched, fact) is None


def test_paid_callback_with_the_amount_asked_after_an_amount_mismatch_completes_late() -> None:
    # The short amount was wrong (or forged); the callback with the real amount is the truth.
    mismatched = changed(payment_in(Status.PUSHED), callback(0, amount=Decimal(1))).after

    done = changed(mismatched, callback(0)).after

    assert (done.status, done.late_success, done.receipt) == (Status.COMPLETED, True, RECEIPT)
    assert done.failure_reason is None


# Results for another push --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fact",
    [callback(0, checkout=OTHER), callback(1032, checkout=OTHER), query(0, checkout=OTHER),
     query(1037, checkout=OTHER), callback(0, amount=Decimal(1), checkout=OTHER)],
)  # fmt: skip
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_result_for_another_checkout_request_is_ignored(
    status: Status, fact: ResultReported
) -> None:
    payment = payment_in(status, checkout_request_id=OURS, receipt_pending=False)

    assert decide(payment, fact) is None


def test_receipt_for_another_checkout_request_is_not_recorded() -> None:
    by_query = changed(payment_in(Status.PUSHED), query(0)).after

    assert decide(by_query, callback(0, checkout=OTHER)) is None


@pytest.mark.parametrize("fact", [callback(0, checkout=None), callback(1, checkout=None)])
def test_result_without_a_checkout_id_applies_to_the_payment_it_was_routed_to(
    fact: ResultReported,
) -> None:
    change = changed(payment_in(Status.PUSHED), fact)

    assert change.after.status in FINAL
    assert change.after.checkout_request_id == OURS


# What the shop and the customer see ---------------------------------------------------------


@pytest.mark.parametrize("status", PENDING_STATUSES)
def test_public_status_is_pending_for_every_pending_status(status: Status) -> None:
    assert public_status(status) == "pending"


@pytest.mark.parametrize("status", FINAL_STATUSES)
def test_public_status_names_final_statuses(status: Status) -> None:
    assert public_status(status) == status.value


@pytest.mark.parametrize(
    ("payment", "message"),
    [
        (payment_in(Status.CREATED), "Sending the M-Pesa prompt to your phone."),
        (payment_in(Status.SENDING), "Sending the M-Pesa prompt to your phone."),
        (payment_in(Status.PUSHED), "Check your phone and enter your M-Pesa PIN to pay."),
        (payment_in(Status.UNKNOWN), "Check your phone; if an M-Pesa prompt appears, enter your "
         "PIN to pay."),
        (payment_in(Status.COMPLETED), "Payment received. Thank you!"),
        (payment_in(Status.FAILED), "Your M-Pesa balance is too low to pay."),
        (payment_in(Status.CANCELLED), "You cancelled the M-Pesa request."),
        (payment_in(Status.FAILED, failure_reason="timeout"), "We did not hear back from M-Pesa "
         "in time. If you paid, we will confirm it."),
        (payment_in(Status.FAILED, failure_reason=None), "M-Pesa could not complete the payment."),
        (payment_in(Status.FAILED, failure_reason="no_such_reason"), "M-Pesa could not complete "
         "the payment."),
    ],
)  # fmt: skip
def test_customer_message_follows_status_and_reason(payment: Payment, message: str) -> None:
    assert customer_message(payment) == message

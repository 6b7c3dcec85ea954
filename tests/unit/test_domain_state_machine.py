"""Random histories of facts against one payment: the rules of money hold after every step.

Facts arrive in any order, repeated, for the wrong push, with odd amounts and codes, as they
can from Daraja, our workers and the reconciler. After each one we check what must always
hold, whatever the history.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from domain.money import amount_matches
from domain.payment import (
    FINAL,
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
    decide,
)

pytestmark = pytest.mark.unit

AMOUNT = 1500
CHECKOUT_IDS = ["ws_CO_26112026123456789712345678", "ws_CO_26112026123501234712345678"]

codes = st.sampled_from([0, 1, 1032, 1037, 2001, 4999, 17, 1019]) | st.integers(-5, 100_000)
amounts = st.sampled_from(
    [Decimal(AMOUNT), Decimal("1500.00"), Decimal(1499), Decimal("1500.5"), None,
     Decimal("NaN"), Decimal("sNaN")]
)  # fmt: skip
receipts = st.sampled_from(["NLJ7RT61SV", "QWE1RT2YUI", "", None])
checkout_ids = st.sampled_from(CHECKOUT_IDS)


def _is_for(payment: Payment, fact: ResultReported) -> bool:
    """Whether `fact` may concern `payment`: no checkout id on either side, or the same one."""
    ours, theirs = payment.checkout_request_id, fact.checkout_request_id
    return not (ours and theirs and ours != theirs)


def _is_success(fact: Fact) -> bool:
    return isinstance(fact, ResultReported) and fact.result_code == 0


def _is_paid_callback(fact: Fact) -> bool:
    """A callback that may record a receipt: ResultCode 0 for the amount asked."""
    return (
        isinstance(fact, ResultReported)
        and fact.source is Source.CALLBACK
        and fact.result_code == 0
        and fact.amount is not None
        and amount_matches(AMOUNT, fact.amount)
    )


class PaymentHistory(RuleBasedStateMachine):
    facts = Bundle("facts")

    def __init__(self) -> None:
        super().__init__()
        self.payment = Payment(id="pay-1", amount=AMOUNT)
        self.saw_success = False  # a ResultCode 0 fact that concerned this payment
        self.saw_amount_mismatch = False

    # Rules: each fires one fact and keeps it for replays -----------------------------------

    @rule(target=facts)
    def push_started(self) -> Fact:
        return self._fire(PushStarted())

    @rule(target=facts, checkout_id=checkout_ids)
    def push_accepted(self, checkout_id: str) -> Fact:
        return self._fire(PushAccepted(checkout_id, "29115-34620561-1"))

    @rule(target=facts, give_up=st.booleans())
    def push_refused(self, give_up: bool) -> Fact:
        return self._fire(PushRefused("push_refused", "500.003.02", give_up=give_up))

    @rule(target=facts)
    def push_outcome_unknown(self) -> Fact:
        return self._fire(PushOutcomeUnknown("read timeout"))

    @rule(target=facts)
    def expired(self) -> Fact:
        return self._fire(Expired())

    @rule(
        target=facts, code=codes, amount=amounts, receipt=receipts,
        checkout_id=st.none() | checkout_ids,
    )  # fmt: skip
    def callback(
        self, code: int, amount: Decimal | None, receipt: str | None, checkout_id: str | None
    ) -> Fact:
        fact = ResultReported(
            Source.CALLBACK, code, "desc", checkout_request_id=checkout_id, amount=amount,
            receipt=receipt,
        )  # fmt: skip
        return self._fire(fact)

    @rule(target=facts, code=codes, checkout_id=checkout_ids)
    def query(self, code: int, checkout_id: str) -> Fact:
        return self._fire(ResultReported(Source.QUERY, code, "desc", checkout_id))

    @rule(fact=facts)
    def replay(self, fact: Fact) -> None:
        """A duplicate, or a fact arriving late: at any point later in the history."""
        self._fire(fact)

    # Checks ----------------------------------------------------------------------------------

    def _fire(self, fact: Fact) -> Fact:
        before = self.payment
        change = decide(before, fact)  # must never raise
        if isinstance(fact, ResultReported) and _is_for(before, fact):
            self.saw_success |= fact.result_code == 0
        if isinstance(fact, ResultReported) and not _is_for(before, fact):
            assert change is None, "a result for another push changed the payment"
        if change is not None:
            self._check_change(change, fact)
            assert decide(change.after, fact) is None, "the same fact again changed it again"
            self.payment = change.after
            self.saw_amount_mismatch |= self.payment.failure_reason == "amount_mismatch"
        return fact

    def _check_change(self, change: Change, fact: Fact) -> None:
        before, after = change.before, change.after
        assert before == self.payment
        assert change.event.data["from"] == before.status.value
        if before.status in FINAL and after.status is not before.status:
            assert after.status is Status.COMPLETED, "a final status changed other than by success"
            assert _is_success(fact)
            assert after.late_success
        if before.status is Status.COMPLETED:  # only the receipt or the push's ids may arrive
            assert change.event.kind in ("receipt_recorded", "push_accepted")
        if after.status is Status.COMPLETED and before.status is not Status.COMPLETED:
            assert _is_success(fact)
            assert isinstance(fact, ResultReported)
            assert fact.source is Source.QUERY or _is_paid_callback(fact)
        if after.receipt != before.receipt:
            assert _is_paid_callback(fact)
            assert isinstance(fact, ResultReported)
            assert after.receipt == fact.receipt
        if before.failure_reason == "amount_mismatch" and after.status is Status.COMPLETED:
            assert _is_paid_callback(fact), "completed after a mismatch without the amount asked"
            assert isinstance(fact, ResultReported)
            assert fact.receipt is not None
        if before.checkout_request_id is not None:
            assert after.checkout_request_id == before.checkout_request_id
        assert after.push_attempts >= before.push_attempts

    @invariant()
    def failure_reason_iff_failed_or_cancelled(self) -> None:
        failed = self.payment.status in (Status.FAILED, Status.CANCELLED)
        assert (self.payment.failure_reason is not None) == failed

    @invariant()
    def completed_has_a_receipt_or_awaits_one(self) -> None:
        p = self.payment
        if p.status is Status.COMPLETED:
            assert (p.receipt is not None and not p.receipt_pending) or (
                p.receipt is None and p.receipt_pending
            )
        else:
            assert (p.receipt, p.receipt_pending, p.late_success) == (None, False, False)

    @invariant()
    def never_completed_without_result_code_0(self) -> None:
        if self.payment.status is Status.COMPLETED:
            assert self.saw_success

    @invariant()
    def after_an_amount_mismatch_only_failed_or_completed(self) -> None:
        if self.saw_amount_mismatch:
            assert self.payment.status in (Status.FAILED, Status.COMPLETED)


PaymentHistory.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestPaymentHistory = PaymentHistory.TestCase

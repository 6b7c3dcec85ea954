"""Random histories of payments and moves against one order: the rules of money hold.

Payments complete in any order, repeated, with the right or a wrong amount, while the shop
moves and cancels the order. After each step we check what must always hold.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.order import (
    PAID,
    InvalidTransition,
    Moved,
    Order,
    PaymentCompleted,
    Status,
    decide,
    shop_events,
)

pytestmark = pytest.mark.unit

TOTAL = 3200
PAYMENT_IDS = [f"pay-{n}" for n in range(5)]
#: The moves CONTRACT.md §7 allows the shop; confirmation comes only from money.
ALLOWED_MOVES = {
    (Status.PENDING, Status.CANCELLED), (Status.CONFIRMED, Status.CANCELLED),
    (Status.CONFIRMED, Status.PROCESSING), (Status.PROCESSING, Status.SHIPPED),
    (Status.SHIPPED, Status.DELIVERED),
}  # fmt: skip


class OrderHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.order = Order(id="order-1", total=TOTAL)
        self.completed: dict[str, int] = {}  # every payment that completed, with its amount
        self.confirmations = 0

    @rule(payment_id=st.sampled_from(PAYMENT_IDS), amount=st.sampled_from([TOTAL, TOTAL - 1, 1]))
    def payment_completed(self, payment_id: str, amount: int) -> None:
        # A payment has one amount for life: a repeat of its completion repeats it.
        amount = self.completed.setdefault(payment_id, amount)
        before = self.order
        change = decide(before, PaymentCompleted(payment_id, amount))
        if change is None:
            assert payment_id in (before.paid_by, *before.refunds)
            return
        assert change.after.status in (before.status, Status.CONFIRMED)
        assert decide(change.after, PaymentCompleted(payment_id, amount)) is None
        self._take(change.after, shop_events(change))

    @rule(to=st.sampled_from(list(Status)))
    def moved(self, to: Status) -> None:
        before = self.order
        try:
            change = decide(before, Moved(to))
        except InvalidTransition:
            assert (before.status, to) not in ALLOWED_MOVES
            assert self.order == before
            return
        if change is None:
            assert to is before.status
            return
        assert (before.status, to) in ALLOWED_MOVES
        assert change.after.status is to
        assert change.after.paid_by == before.paid_by, "a move never changes who paid"
        self._take(change.after, shop_events(change))

    def _take(self, after: Order, events: tuple[str, ...]) -> None:
        if after.status is Status.CONFIRMED and self.order.status is Status.PENDING:
            self.confirmations += 1
            assert "order.confirmed" in events
        if len(after.refunds) > len(self.order.refunds):
            assert "order.refund_due" in events
        assert set(self.order.refunds) <= set(after.refunds), "a refund due is never forgotten"
        self.order = after

    @invariant()
    def confirmed_only_by_a_completed_payment_of_the_full_total(self) -> None:
        o = self.order
        if o.status in PAID:
            assert o.paid_by is not None
            assert self.completed.get(o.paid_by) == TOTAL
        if o.status is Status.PENDING:
            assert o.paid_by is None
        assert self.confirmations <= 1, "an order is confirmed at most once"

    @invariant()
    def money_is_never_dropped(self) -> None:
        o = self.order
        for payment_id in self.completed:
            pays_the_order = payment_id == o.paid_by and o.status is not Status.CANCELLED
            assert pays_the_order or payment_id in o.refunds, f"{payment_id}'s money dropped"
        assert o.refund_due == bool(o.refunds)
        assert len(set(o.refunds)) == len(o.refunds), "a payment owed back twice"
        assert set(o.refunds) <= set(self.completed), "a refund for money never paid"


OrderHistory.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
TestOrderHistory = OrderHistory.TestCase

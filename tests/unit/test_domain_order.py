"""Every transition of the order state machine, and the order's total."""

from __future__ import annotations

import pytest

from domain.money import MAX_AMOUNT
from domain.order import (
    PAID,
    Change,
    InvalidOrder,
    InvalidTransition,
    Item,
    Moved,
    Order,
    PaymentCompleted,
    Status,
    decide,
    shop_events,
    total_of,
)

pytestmark = pytest.mark.unit

TOTAL = 3200


def _order(status: Status = Status.PENDING, **fields: object) -> Order:
    return Order(id="order-1", total=TOTAL, status=status, **fields)  # type: ignore[arg-type]


def _paid(status: Status) -> Order:
    return _order(status, paid_by="pay-1")


def _changed(order: Order, fact: Moved | PaymentCompleted) -> Change:
    change = decide(order, fact)
    assert change is not None
    assert change.before == order
    assert change.event.data["from"] == order.status.value
    return change


# Totals ----------------------------------------------------------------------------------


def test_total_is_the_sum_of_quantity_times_unit_price_plus_the_delivery_fee() -> None:
    items = [Item("set-01", "Chess set", 2, 1500), Item("clock-01", "Clock", 1, 100)]

    assert total_of(items, 100) == 3200


@pytest.mark.parametrize(
    ("items", "fee", "field"),
    [
        ([], 0, "items"),
        ([Item("a", "A", 0, 100)], 0, "items[0].quantity"),
        ([Item("a", "A", 1, 100), Item("b", "B", 1, -5)], 0, "items[1].unitPrice"),
        ([Item("a", "A", True, 100)], 0, "items[0].quantity"),
        ([Item("a", "A", 1, 1.5)], 0, "items[0].unitPrice"),  # type: ignore[arg-type]
        ([Item("a", "A", 1, 100)], -1, "deliveryFee"),
        ([Item("a", "A", 1, 0)], 0, "items"),  # a total of 0 KES cannot be paid
        ([Item("a", "A", 2, MAX_AMOUNT)], 0, "items"),  # over M-Pesa's limit
        ([Item("a", "A", 1, MAX_AMOUNT)], 1, "items"),
    ],
)
def test_an_order_whose_total_cannot_be_paid_is_refused_naming_the_field(
    items: list[Item], fee: int, field: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        total_of(items, fee)

    assert refused.value.field == field


def test_a_total_of_exactly_m_pesas_limit_is_accepted() -> None:
    assert total_of([Item("a", "A", 1, MAX_AMOUNT - 300)], 300) == MAX_AMOUNT


# Moves by the shop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (Status.PENDING, Status.CANCELLED),
        (Status.CONFIRMED, Status.PROCESSING),
        (Status.PROCESSING, Status.SHIPPED),
        (Status.SHIPPED, Status.DELIVERED),
    ],
)
def test_the_shop_moves_an_order_along_its_path(start: Status, to: Status) -> None:
    order = _paid(start) if start in PAID else _order(start)

    change = _changed(order, Moved(to))

    assert change.after.status is to
    assert change.event.kind == to.value
    assert change.after.paid_by == order.paid_by


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (Status.PENDING, Status.CONFIRMED),  # only a payment confirms
        (Status.PENDING, Status.PROCESSING),
        (Status.PENDING, Status.SHIPPED),
        (Status.CONFIRMED, Status.SHIPPED),
        (Status.CONFIRMED, Status.DELIVERED),
        (Status.PROCESSING, Status.CANCELLED),
        (Status.SHIPPED, Status.CANCELLED),
        (Status.DELIVERED, Status.PENDING),
        (Status.CANCELLED, Status.PENDING),
        (Status.CANCELLED, Status.CONFIRMED),
        (Status.PROCESSING, Status.CONFIRMED),
    ],
)
def test_any_other_move_is_an_invalid_transition(start: Status, to: Status) -> None:
    with pytest.raises(InvalidTransition) as refused:
        decide(_order(start), Moved(to))

    assert (refused.value.current, refused.value.wanted) == (start, to)


@pytest.mark.parametrize("status", list(Status))
def test_moving_an_order_to_where_it_already_is_changes_nothing(status: Status) -> None:
    assert decide(_order(status), Moved(status)) is None


def test_cancelling_an_unpaid_order_owes_nobody_anything() -> None:
    change = _changed(_order(), Moved(Status.CANCELLED))

    assert not change.after.refund_due
    assert shop_events(change) == ("order.cancelled",)


def test_cancelling_a_paid_order_makes_its_payment_a_refund_due() -> None:
    change = _changed(_paid(Status.CONFIRMED), Moved(Status.CANCELLED))

    assert change.after.status is Status.CANCELLED
    assert change.after.refunds == ("pay-1",)
    assert change.after.refund_due
    assert change.event.data["refundDue"] is True
    assert shop_events(change) == ("order.cancelled", "order.refund_due")


# Money arriving -----------------------------------------------------------------------------


def test_a_completed_payment_of_the_full_total_confirms_a_pending_order() -> None:
    change = _changed(_order(), PaymentCompleted("pay-1", TOTAL))

    assert change.after.status is Status.CONFIRMED
    assert change.after.paid_by == "pay-1"
    assert not change.after.refund_due
    assert change.event.kind == "confirmed"
    assert shop_events(change) == ("order.confirmed",)


def test_a_completed_payment_of_another_amount_never_confirms_and_is_owed_back() -> None:
    change = _changed(_order(), PaymentCompleted("pay-1", TOTAL - 1))

    assert change.after.status is Status.PENDING
    assert change.after.paid_by is None
    assert change.after.refunds == ("pay-1",)
    assert change.event.data["reason"] == "amount_differs"


@pytest.mark.parametrize("status", sorted(PAID))
def test_a_second_completed_payment_on_a_paid_order_is_a_refund_due(status: Status) -> None:
    change = _changed(_paid(status), PaymentCompleted("pay-2", TOTAL))

    assert change.after.status is status
    assert change.after.paid_by == "pay-1"
    assert change.after.refunds == ("pay-2",)
    assert change.event.kind == "refund_due"
    assert change.event.data["reason"] == "already_paid"
    assert shop_events(change) == ("order.refund_due",)


def test_a_late_success_on_a_cancelled_order_leaves_it_cancelled_with_a_refund_due() -> None:
    change = _changed(_order(Status.CANCELLED), PaymentCompleted("pay-1", TOTAL))

    assert change.after.status is Status.CANCELLED
    assert change.after.paid_by is None
    assert change.after.refund_due
    assert change.event.data["reason"] == "order_cancelled"


def test_each_extra_payment_is_owed_back_on_its_own() -> None:
    first = _changed(_paid(Status.CONFIRMED), PaymentCompleted("pay-2", TOTAL)).after
    second = _changed(first, PaymentCompleted("pay-3", TOTAL))

    assert second.after.refunds == ("pay-2", "pay-3")
    assert shop_events(second) == ("order.refund_due",)


@pytest.mark.parametrize(
    "order",
    [_paid(Status.CONFIRMED), _order(Status.CANCELLED, refunds=("pay-1",)), _paid(Status.SHIPPED)],
)
def test_the_same_payment_completing_again_changes_nothing(order: Order) -> None:
    assert decide(order, PaymentCompleted("pay-1", TOTAL)) is None

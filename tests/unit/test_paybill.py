"""PayBill account references: what the customer types, and the orders it can name."""

from __future__ import annotations

import uuid

import pytest

from domain import paybill
from domain.order import Order, PaymentCompleted, Status, decide

pytestmark = pytest.mark.unit

ORDER_ID = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"


def test_an_orders_reference_is_kp_and_its_first_ten_hex_digits() -> None:
    assert paybill.account_reference(ORDER_ID) == "KP1A2B3C4D5E"


def test_every_reference_fits_darajas_twelve_characters() -> None:
    for _ in range(50):
        assert len(paybill.account_reference(str(uuid.uuid4()))) == 12


@pytest.mark.parametrize(
    "typed", ["KP1A2B3C4D5E", "kp1a2b3c4d5e", " KP 1A2B-3C4D 5E ", "Kp1a2B3c4D5e"]
)
def test_a_typed_reference_names_the_ids_that_start_with_its_digits(typed: str) -> None:
    bounds = paybill.order_id_bounds(typed)

    assert bounds == (
        "1a2b3c4d-5e00-0000-0000-000000000000", "1a2b3c4d-5eff-ffff-ffff-ffffffffffff",
    )  # fmt: skip
    assert bounds[0] <= ORDER_ID <= bounds[1]


@pytest.mark.parametrize(
    "typed", ["", "KhalexChess", "KP1A2B3C4D5", "KP1A2B3C4D5EF", "KX1A2B3C4D5E", "KP1A2B3C4D5G"]
)
def test_anything_else_names_no_order(typed: str) -> None:
    assert paybill.order_id_bounds(typed) is None


def test_validation_codes_are_darajas() -> None:
    assert paybill.Refusal.AMOUNT_DIFFERS.c2b_code == "C2B00013"
    assert paybill.Refusal.UNKNOWN_REFERENCE.c2b_code == "C2B00012"
    assert paybill.Refusal.ORDER_PAID.c2b_code == "C2B00012"


def test_a_paybill_payment_confirms_an_order_and_its_event_names_the_receipt() -> None:
    change = decide(Order("o1", 3200), PaymentCompleted("c1", 3200, via="paybill", receipt="R1"))

    assert change is not None
    assert change.after.status is Status.CONFIRMED
    assert change.event.data == {
        "from": "pending", "paymentId": "c1", "amount": 3200, "via": "paybill", "receipt": "R1",
    }  # fmt: skip


def test_an_stk_payments_event_is_as_before() -> None:
    change = decide(Order("o1", 3200), PaymentCompleted("p1", 3000))

    assert change is not None
    assert change.event.data == {
        "from": "pending", "paymentId": "p1", "amount": 3000, "reason": "amount_differs",
    }  # fmt: skip

"""Orders on the real PostgreSQL: totals, keys, pages, moves, paying, confirming, refunds."""

from __future__ import annotations

import threading
from unittest import mock

import pytest

from daraja.wire import QueryResult
from domain.order import InvalidTransition, Item, Status
from domain.payment import Expired
from operations import alerts
from payments import callbacks, initiation, orders, reconciliation
from payments.transitions import transition
from store import orders as orders_store
from store.orders import NewOrder
from store.payments import OrderBusy
from tests.factories import stk_callback
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

TOTAL = 3200


def new_order(**changes: object) -> NewOrder:
    base = {
        "items": (Item("set-01", "Chess set", 2, 1500), Item("clock-01", "Clock", 1, 100)),
        "delivery_fee": 100, "total_amount": TOTAL, "customer_name": "Wanjiru",
        "customer_email": "wanjiru@example.com", "customer_phone": "254712345678",
        "delivery_address": "Moi Avenue, Nairobi", "notes": None,
    }  # fmt: skip
    return NewOrder(**{**base, **changes})  # type: ignore[arg-type]


def _paid_callback(h: Harness, payment_id: str, amount: int = TOTAL, receipt: str = "RC1") -> None:
    record = h.get(payment_id)
    assert record.checkout_request_id is not None
    body = stk_callback(record.checkout_request_id, amount=amount, receipt=receipt)
    received = callbacks.receive(
        h.container, body, source_ip="196.201.214.200", token=record.callback_token, headers={}
    )
    callbacks.process(h.container, received.inbox_id)


def _failed_callback(h: Harness, payment_id: str, code: int = 1) -> None:
    record = h.get(payment_id)
    assert record.checkout_request_id is not None
    body = stk_callback(record.checkout_request_id, code)
    received = callbacks.receive(
        h.container, body, source_ip="196.201.214.200", token=record.callback_token, headers={}
    )
    callbacks.process(h.container, received.inbox_id)


def _pay_pushed(h: Harness, order_id: str, phone: str = "254712345678") -> str:
    payment_id = orders.initiate_payment(h.container, order_id, phone).payment.id
    initiation.send_push(h.container, payment_id)
    return payment_id


def _order(h: Harness, order_id: str) -> orders_store.OrderRecord:
    return orders.get(h.container, order_id).order


def _kinds(h: Harness, order_id: str) -> list[str]:
    with h.container.engine.connect() as conn:
        return [e["kind"] for e in orders_store.events(conn, order_id)]


# Creating, reading, listing -------------------------------------------------------------------


def test_create_stores_a_pending_order_with_its_created_event(h: Harness) -> None:
    view = orders.create(h.container, new_order())

    got = orders.get(h.container, view.order.id)
    assert got.order.status == "pending"
    assert got.order.total_amount == TOTAL
    assert got.order.order_items[0] == {
        "productId": "set-01", "productName": "Chess set", "quantity": 2, "unitPrice": 1500,
    }  # fmt: skip
    assert got.payment_ids == []
    assert _kinds(h, view.order.id) == ["created"]


def test_same_idempotency_key_and_body_answer_the_first_order_again(h: Harness) -> None:
    first = orders.create(h.container, new_order(), "order-key-1")
    again = orders.create(h.container, new_order(), "order-key-1")

    assert again.replayed
    assert again.order.id == first.order.id


def test_same_idempotency_key_with_another_order_is_refused(h: Harness) -> None:
    orders.create(h.container, new_order(), "order-key-2")

    with pytest.raises(orders.IdempotencyKeyReused):
        orders.create(h.container, new_order(notes="gift wrap"), "order-key-2")


def test_pages_run_newest_first_without_gaps_or_repeats_and_filter_by_status(
    h: Harness,
) -> None:
    made = [orders.create(h.container, new_order(notes=f"n{n}")).order.id for n in range(5)]
    orders.move(h.container, made[1], Status.CANCELLED)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = orders.list_orders(h.container, limit=2, cursor=cursor)
        seen += [v.order.id for v in page.orders]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    cancelled = orders.list_orders(h.container, status="cancelled")

    assert seen == list(reversed(made))
    assert pages == 3
    assert [v.order.id for v in cancelled.orders] == [made[1]]


def test_a_cursor_the_api_did_not_hand_out_is_refused(h: Harness) -> None:
    with pytest.raises(orders.InvalidCursor):
        orders.list_orders(h.container, cursor="not-a-cursor!")


# Moving -----------------------------------------------------------------------------------


def test_an_invalid_move_is_refused_and_changes_nothing(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id

    with pytest.raises(InvalidTransition):
        orders.move(h.container, order_id, Status.SHIPPED)

    assert _order(h, order_id).status == "pending"
    assert _kinds(h, order_id) == ["created"]


def test_an_unknown_order_is_not_found(h: Harness) -> None:
    with pytest.raises(orders.OrderNotFound):
        orders.move(h.container, "0b5d3c47-3a39-4a61-9f1c-7e54b2e2a000", Status.CANCELLED)
    with pytest.raises(orders.OrderNotFound):
        orders.get(h.container, "order-77")


# Paying ------------------------------------------------------------------------------------


def test_a_payment_for_an_order_takes_its_amount_product_and_customer_from_the_order(
    h: Harness,
) -> None:
    order_id = orders.create(h.container, new_order()).order.id

    payment = orders.initiate_payment(h.container, order_id, "254712345678").payment

    assert (payment.amount, payment.order_id) == (TOTAL, order_id)
    assert payment.customer_name == "Wanjiru"
    assert payment.product_name == "2 x Chess set, 1 x Clock"
    assert orders.get(h.container, order_id).payment_ids == [payment.id]


def test_an_amount_other_than_the_orders_total_is_refused(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id

    with pytest.raises(orders.AmountMismatch):
        orders.initiate_payment(h.container, order_id, "254712345678", amount=1)

    assert orders.get(h.container, order_id).payment_ids == []


def test_concurrent_initiates_for_one_order_make_one_payment(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    made: list[str] = []
    busy: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def pay(n: int) -> None:
        start.wait()
        try:
            made.append(
                orders.initiate_payment(h.container, order_id, f"25471234560{n}").payment.id
            )
        except OrderBusy as exc:
            busy.append(exc.payment_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(made) == 1
    assert busy == [made[0]] * 5
    assert orders.get(h.container, order_id).payment_ids == made


def test_completion_confirms_the_order_and_a_paid_order_refuses_new_payments(
    h: Harness,
) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    payment_id = _pay_pushed(h, order_id)

    _paid_callback(h, payment_id)

    order = _order(h, order_id)
    assert (order.status, order.paid_by_payment_id, order.refund_due) == (
        "confirmed", payment_id, False,
    )  # fmt: skip
    assert _kinds(h, order_id) == ["created", "confirmed"]
    with pytest.raises(orders.OrderAlreadyPaid):
        orders.initiate_payment(h.container, order_id, "254712345678")


def test_confirmation_is_in_the_payments_transaction(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    payment_id = _pay_pushed(h, order_id)

    with (
        mock.patch.object(orders_store, "apply", side_effect=RuntimeError("order write failed")),
        pytest.raises(RuntimeError),
    ):
        _paid_callback(h, payment_id)

    assert h.get(payment_id).status == "pushed", "the payment completed without its order"
    assert _order(h, order_id).status == "pending"


def test_after_a_failed_payment_the_customer_may_try_again_and_pay(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    first = _pay_pushed(h, order_id, "254700000001")
    _failed_callback(h, first, code=1)

    second = _pay_pushed(h, order_id)
    _paid_callback(h, second)

    assert h.get(first).status == "failed"
    order = _order(h, order_id)
    assert (order.status, order.paid_by_payment_id) == ("confirmed", second)
    assert orders.get(h.container, order_id).payment_ids == [first, second]


def test_a_cancelled_order_refuses_payments(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    orders.move(h.container, order_id, Status.CANCELLED)

    with pytest.raises(orders.OrderCancelled):
        orders.initiate_payment(h.container, order_id, "254712345678")


# Refunds due -------------------------------------------------------------------------------


def test_a_late_success_on_a_cancelled_order_leaves_it_cancelled_with_a_refund_due_and_alert(
    h: Harness,
) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    payment_id = _pay_pushed(h, order_id)
    orders.move(h.container, order_id, Status.CANCELLED)

    _paid_callback(h, payment_id)

    order = _order(h, order_id)
    assert (order.status, order.refund_due, order.refund_payment_ids) == (
        "cancelled", True, [payment_id],
    )  # fmt: skip
    assert order.paid_by_payment_id is None
    assert h.get(payment_id).status == "completed"
    assert _kinds(h, order_id) == ["created", "cancelled", "refund_due"]
    raised = alerts.run(h.container)
    assert [(a.kind, a.details["paymentId"]) for a in raised] == [("refund_due", payment_id)]
    assert alerts.run(h.container) == [], "alerted twice"


def test_a_late_success_found_by_a_query_after_expiry_still_confirms_a_pending_order(
    h: Harness,
) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    payment_id = _pay_pushed(h, order_id)
    transition(h.container.engine, h.container.settings, payment_id, Expired())
    record = h.get(payment_id)
    assert record.failure_reason == "timeout"
    h.daraja.query_answers.append(
        QueryResult(0, "paid", checkout_request_id=record.checkout_request_id)
    )

    reconciliation.query_payment(h.container, payment_id)

    assert h.get(payment_id).late_success
    assert _order(h, order_id).status == "confirmed"


def test_a_second_completed_payment_is_a_refund_due_on_the_paid_order(h: Harness) -> None:
    order_id = orders.create(h.container, new_order()).order.id
    first = _pay_pushed(h, order_id, "254700000001")
    _failed_callback(h, first, code=1)  # the customer saw a failure (it was M-Pesa's lie)
    second = _pay_pushed(h, order_id)
    _paid_callback(h, second, receipt="RC2")

    _paid_callback(h, first, receipt="RC1")  # the first was paid after all: a late success

    order = _order(h, order_id)
    assert (order.status, order.paid_by_payment_id) == ("confirmed", second)
    assert (order.refund_due, order.refund_payment_ids) == (True, [first])

"""Analytics events, kept in `payment_events`: "payment initiated" and "payment completed"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from daraja.wire import QueryResult
from domain.order import Item
from payments import callbacks, initiation, orders, reconciliation
from store import payments
from store.orders import NewOrder
from store.payments import ANALYTICS_COMPLETED, ANALYTICS_INITIATED, PaymentRecord
from tests.factories import stk_callback
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration


ORDER = NewOrder(
    items=(Item("board-01", "Tournament board", 1, 2500),), delivery_fee=0, total_amount=2500,
    customer_name="Wanjiru", customer_email=None, customer_phone="254712345678",
    delivery_address=None, notes=None,
)  # fmt: skip


def _pushed(h: Harness) -> PaymentRecord:
    order_id = orders.create(h.container, ORDER).order.id
    payment_id = initiation.initiate(
        h.container, new_payment(amount=2500, order_id=order_id)
    ).payment.id
    initiation.send_push(h.container, payment_id)
    return h.get(payment_id)


def _event(h: Harness, payment_id: str, kind: str) -> dict[str, Any]:
    with h.container.engine.connect() as conn:
        [event] = [e for e in payments.events(conn, payment_id) if e["kind"] == kind]
    return event


def _ms(later: datetime, earlier: datetime) -> int:
    return round((later - earlier).total_seconds() * 1000)


def test_initiation_is_recorded_as_payment_initiated_without_personal_data(h: Harness) -> None:
    p = _pushed(h)

    data = _event(h, p.id, "created")["data"]

    assert data == {
        "analytics": ANALYTICS_INITIATED,
        "amount": 2500,
        "productId": "board-01",
        "orderId": p.order_id,
    }
    assert p.phone_number not in str(data)
    assert p.customer_email not in str(data)


def test_completion_is_recorded_with_its_processing_time(h: Harness) -> None:
    p = _pushed(h)
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", amount=2500),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    done, event = h.get(p.id), _event(h, p.id, "completed")

    assert event["data"]["analytics"] == ANALYTICS_COMPLETED
    assert event["data"]["amount"] == 2500
    assert done.finished_at is not None
    assert event["data"]["processingMs"] == _ms(done.finished_at, done.created_at)
    assert event["data"]["processingMs"] > 0


def test_a_late_success_is_a_completion_timed_from_creation_to_the_money(h: Harness) -> None:
    p = _pushed(h)
    reconciliation.tick(h.container, p.created_at.replace(year=p.created_at.year + 1))
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))

    reconciliation.query_payment(h.container, p.id)

    event = _event(h, p.id, "late_success")
    assert event["data"]["analytics"] == ANALYTICS_COMPLETED
    assert event["data"]["processingMs"] == _ms(event["created_at"], p.created_at)


def test_failures_carry_no_completion_analytics(h: Harness) -> None:
    p = _pushed(h)
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", result_code=1032),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    assert "analytics" not in _event(h, p.id, "cancelled")["data"]

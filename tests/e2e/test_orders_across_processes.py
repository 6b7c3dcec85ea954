"""End to end: orders paid through the real API, worker, scheduler and simulator processes."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from store import api_keys
from store.db import make_engine
from tests.processes import Shop, System
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

ORDER: dict[str, Any] = {
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
    "customerPhone": "0712345678",
    "items": [{"productId": "set-01", "productName": "Chess set", "quantity": 2,
               "unitPrice": 1500}],
    "deliveryFee": 200,
}  # fmt: skip
TOTAL = 3200


#: The shop's webhook secret, in the Standard Webhooks form.
SECRET = "whsec_" + base64.b64encode(b"khalex-chess-shop-webhook-secret").decode()


class OrderShop(Shop):
    """The shop's server (API key, webhook receiver) and its page (checkout token), over HTTP."""

    def __init__(self, api: str, simulator: str, key: str, receiver: Receiver) -> None:
        super().__init__(api, simulator)
        self.server = {"Authorization": f"Bearer {key}"}
        self.receiver = receiver

    def webhooks(self, event_type: str, order_id: str, timeout_s: float = 30) -> list[Any]:
        """The `event_type` events about `order_id` the shop's receiver got, each verified as
        the shop would verify it (once at least one came, or when time runs out)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [
                event
                for got in self.receiver.accepted()
                if (event := Webhook(SECRET).verify(got.body, got.headers))["type"] == event_type
                and event["data"]["orderId"] == order_id
            ]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.3)

    def create_order(self, **changes: Any) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.api}/api/orders", json={**ORDER, **changes}, headers=self.server, timeout=15
        )
        assert answer.status_code == 201, answer.text
        order: dict[str, Any] = answer.json()
        return order

    def pay_order(self, order: dict[str, Any], phone: str) -> httpx.Response:
        """What the shop's page sends: only the phone, with the order's checkout token."""
        return httpx.post(
            f"{self.api}/api/payments/initiate", json={"phoneNumber": phone},
            headers={"Authorization": f"Bearer {order['checkoutToken']}"}, timeout=15,
        )  # fmt: skip

    def order(self, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(
            f"{self.api}/api/orders/{order_id}", headers=self.server, timeout=15
        ).json()
        return found

    def move(self, order_id: str, status: str) -> httpx.Response:
        return httpx.post(
            f"{self.api}/api/orders/{order_id}/status", json={"status": status},
            headers=self.server, timeout=15,
        )  # fmt: skip

    def status(self, ref: str) -> dict[str, Any]:
        payment: dict[str, Any] = httpx.get(
            f"{self.api}/api/payments/status/{ref}", headers=self.server, timeout=15
        ).json()
        return payment

    def wait_order(self, order_id: str, done: Any, timeout_s: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            order = self.order(order_id)
            if done(order) or time.monotonic() > deadline:
                return order
            time.sleep(0.3)


@pytest.fixture(scope="module")
def shop(
    postgres_url: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[System]]
) -> Iterator[OrderShop]:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        _, key = api_keys.create(conn, "e2e shop server")
    engine.dispose()
    receiver = Receiver()  # the shop's webhook endpoint
    with receiver, launch_system(
        "e2e-orders-logs", postgres_url, redis_url,
        MPESA_TIMEOUT_S="3", SIM_CALLBACK_DELAY="0.5", SIM_LATE_CALLBACK_DELAY="6",
        RECONCILE_AFTER_S="2", PAYMENT_EXPIRY_S="150",
        SHOP_WEBHOOK_URL=receiver.url, SHOP_WEBHOOK_SECRET=SECRET,
    ) as system:  # fmt: skip
        yield OrderShop(system.api, system.simulator, key, receiver)


def test_order_paid_from_its_page_is_confirmed_with_the_receipt_the_customer_got(
    shop: OrderShop,
) -> None:
    order = shop.create_order()
    answer = shop.pay_order(order, "0712 345 001")
    assert answer.status_code == 202, answer.text
    payment_id = answer.json()["paymentId"]

    paid = shop.wait_order(order["orderId"], lambda o: o["status"] != "pending")

    assert (paid["status"], paid["paymentId"], paid["refundDue"]) == (
        "confirmed", payment_id, False,
    )  # fmt: skip
    payment = shop.status(payment_id)
    [push] = [p for p in shop.ledger() if p["checkoutRequestId"] == payment["checkoutRequestId"]]
    assert push["amount"] == TOTAL
    assert payment["mpesaReceiptNumber"] == push["receipt"]
    again = shop.pay_order(order, "0712 345 001")
    assert again.json()["error"]["code"] == "order_already_paid"
    [confirmed] = shop.webhooks("order.confirmed", order["orderId"])
    assert (confirmed["data"]["paymentId"], confirmed["data"]["totalAmount"]) == (payment_id, TOTAL)
    [completed] = [
        e for e in shop.webhooks("payment.completed", order["orderId"])
        if e["data"]["paymentId"] == payment_id
    ]  # fmt: skip
    assert completed["data"]["mpesaReceiptNumber"] == push["receipt"]


def test_a_cancelled_prompt_and_insufficient_funds_then_a_good_number_pays_the_order(
    shop: OrderShop,
) -> None:
    order = shop.create_order(notes="second try")
    tries = []
    for phone in ("0700000002", "0700000001"):
        answer = shop.pay_order(order, phone)
        assert answer.status_code == 202, answer.text
        tries.append(shop.wait_final(answer.json()["paymentId"]))
        assert shop.order(order["orderId"])["status"] == "pending"
    good = shop.pay_order(order, "0712 345 002")
    assert good.status_code == 202, good.text

    paid = shop.wait_order(order["orderId"], lambda o: o["status"] != "pending")

    assert [t["failureReason"] for t in tries] == ["cancelled_by_user", "insufficient_funds"]
    assert (paid["status"], paid["paymentId"]) == ("confirmed", good.json()["paymentId"])
    assert paid["payments"] == [t["paymentId"] for t in tries] + [good.json()["paymentId"]]


def test_concurrent_initiates_for_one_order_make_one_payment(shop: OrderShop) -> None:
    order = shop.create_order(notes="concurrent")
    answers: list[httpx.Response] = []
    start = threading.Barrier(5)

    def pay(n: int) -> None:
        start.wait()
        answers.append(shop.pay_order(order, f"07123451{n:02d}"))

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 409]
    assert len(accepted) == 1, [a.text for a in answers]
    assert len(refused) == 4
    assert {a.json()["error"]["code"] for a in refused} == {"payment_in_progress"}
    paid = shop.wait_order(order["orderId"], lambda o: o["status"] != "pending")
    assert paid["payments"] == [accepted[0].json()["paymentId"]]
    assert paid["status"] == "confirmed"


def test_a_late_success_on_a_cancelled_order_leaves_it_cancelled_with_a_refund_due(
    shop: OrderShop,
) -> None:
    order = shop.create_order(notes="cancelled while the customer pays")
    # 254700000009 pays, but its callback comes only after SIM_LATE_CALLBACK_DELAY.
    answer = shop.pay_order(order, "0700000009")
    assert answer.status_code == 202, answer.text
    payment_id = answer.json()["paymentId"]
    cancelled = shop.move(order["orderId"], "cancelled")
    assert cancelled.status_code == 200, cancelled.text

    owed = shop.wait_order(order["orderId"], lambda o: o["refundDue"], timeout_s=60)

    assert (owed["status"], owed["refundDue"], owed["paymentId"]) == ("cancelled", True, None)
    assert owed["refundPaymentIds"] == [payment_id]
    assert shop.status(payment_id)["status"] == "completed"
    [refund] = shop.webhooks("order.refund_due", order["orderId"])
    assert refund["data"]["refundPaymentIds"] == [payment_id]
    assert shop.webhooks("order.cancelled", order["orderId"])

"""End to end: the real API, worker, scheduler and simulator processes, over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest

from tests.processes import Shop, System, new_shop_key

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop(
    postgres_url: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[System]]
) -> Iterator[Shop]:
    with launch_system(
        "e2e-logs", postgres_url, redis_url,
        MPESA_TIMEOUT_S="3", SIM_CALLBACK_DELAY="0.5", RECONCILE_AFTER_S="2",
        PAYMENT_EXPIRY_S="150",
    ) as system:  # fmt: skip
        yield system.shop(new_shop_key(postgres_url))


def test_api_is_ready_when_database_and_redis_answer(shop: Shop) -> None:
    answer = httpx.get(f"{shop.api}/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == []


def test_paid_push_completes_with_the_receipt_the_customer_got(shop: Shop) -> None:
    answer = shop.initiate("0712 345 678", amount=1500)
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["status"] == "pending"
    assert started["phoneNumber"] == "2547****5678"
    assert answer.headers["location"] == f"/api/payments/status/{started['paymentId']}"

    done = shop.wait_final(started["paymentId"])

    assert done["status"] == "completed"
    assert done["resultCode"] == 0
    push = next(p for p in shop.ledger() if p["checkoutRequestId"] == done["checkoutRequestId"])
    assert push["amount"] == 1500
    assert done["mpesaReceiptNumber"] == push["receipt"]
    assert shop.status(done["checkoutRequestId"])["paymentId"] == started["paymentId"]


def test_customer_cancelling_the_prompt_cancels_the_payment(shop: Shop) -> None:
    done = shop.wait_final(shop.pay("254700000002"))

    assert done["status"] == "cancelled"
    assert done["failureReason"] == "cancelled_by_user"
    assert done["resultCode"] == 1032
    assert done["mpesaReceiptNumber"] is None


def test_insufficient_funds_fails_the_payment_with_its_reason(shop: Shop) -> None:
    done = shop.wait_final(shop.pay("254700000001", amount=250))

    assert done["status"] == "failed"
    assert done["failureReason"] == "insufficient_funds"
    assert done["resultCode"] == 1


def test_payment_whose_callback_never_comes_is_completed_by_the_query(shop: Shop) -> None:
    done = shop.wait_final(shop.pay("254700000005", amount=700))

    assert done["status"] == "completed"
    assert done["mpesaReceiptNumber"] is None  # a query carries no receipt
    push = next(p for p in shop.ledger() if p["checkoutRequestId"] == done["checkoutRequestId"])
    assert push["callbacksSent"] == 0


def test_push_whose_answer_is_lost_is_completed_by_its_callback(shop: Shop) -> None:
    # 254700000008: the push hangs past our timeout, yet the prompt goes out and is paid.
    done = shop.wait_final(shop.pay("254700000008", amount=900))

    assert done["status"] == "completed"
    [push] = [p for p in shop.ledger() if p["phoneNumber"] == "254700000008"]
    assert done["mpesaReceiptNumber"] == push["receipt"]
    assert done["checkoutRequestId"] == push["checkoutRequestId"]


def test_callback_sent_twice_completes_the_payment_once(shop: Shop) -> None:
    done = shop.wait_final(shop.pay("254700000006", amount=1200))

    assert done["status"] == "completed"
    [push] = [p for p in shop.ledger() if p["phoneNumber"] == "254700000006"]
    assert push["callbacksSent"] == 2
    assert done["mpesaReceiptNumber"] == push["receipt"]


def test_push_refused_for_a_locked_subscriber_fails_after_its_retries(shop: Shop) -> None:
    done = shop.wait_final(shop.pay("254700000007", amount=50), timeout_s=120)

    assert done["status"] == "failed"
    assert done["failureReason"] == "subscriber_busy"
    assert not [p for p in shop.ledger() if p["phoneNumber"] == "254700000007"]

"""Forged callbacks against the real processes: only Safaricom (the simulator) decides.

Each forgery (success, failure, short amount) is sent on the bare webhook URL, on another
payment's token URL, and on the payment's own token URL from an address off the allow-list.
None of them may move the payment; the customer then acts on the simulator's virtual phone,
and the payment must end as the simulator's ledger says.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from store.db import make_engine
from store.sealed import checkout_index
from store.tables import callback_inbox
from tests.factories import stk_callback
from tests.processes import Shop, System, new_shop_key

pytestmark = pytest.mark.integration

#: Safaricom's callbacks come from here (the simulator); the forger's from 127.0.0.2.
ALLOWED, FORGER = "127.0.0.1", "127.0.0.2"
_phones = (f"2547110{n:05d}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def shop(
    postgres_url: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[System]]
) -> Iterator[Shop]:
    with launch_system(
        "security-logs", postgres_url, redis_url,
        MPESA_CALLBACK_ALLOWED_IPS=f"{ALLOWED}/32",  # as tight as Safaricom's list
        SIM_CALLBACK_DELAY="0.2", RECONCILE_AFTER_S="2", PAYMENT_EXPIRY_S="150",
    ) as system:  # fmt: skip
        shop = system.shop(new_shop_key(postgres_url))
        shop.chaos({"manual": True, "promptTimeoutS": None})  # the test is the customer
        yield shop


def _push(shop: Shop, phone: str) -> dict[str, Any]:
    """The simulator's ledger entry for the push to `phone`, once it is there."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [p for p in shop.ledger() if p["phoneNumber"] == phone]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no push reached the simulator for {phone}")


def _forged_body(forgery: str, checkout: str) -> bytes:
    if forgery == "success":
        return stk_callback(checkout, 0, receipt="FORGED0001")
    if forgery == "failure":
        return stk_callback(checkout, 1032)
    return stk_callback(checkout, 0, amount=1, receipt="FORGED0002")  # the short amount


def _send(shop: Shop, route: str, body: bytes, own: str, other: str) -> httpx.Response:
    webhook = f"{shop.api}/api/payments/webhook"
    headers = {"content-type": "application/json"}
    if route == "bare":
        return httpx.post(webhook, content=body, headers=headers)
    if route == "other_token":
        return httpx.post(f"{webhook}/{other}", content=body, headers=headers)
    # The payment's own URL (as if its token leaked), but from an address off the list.
    with httpx.Client(transport=httpx.HTTPTransport(local_address=FORGER)) as client:
        return client.post(f"{webhook}/{own}", content=body, headers=headers)


def _token(push: dict[str, Any]) -> str:
    return str(push["callbackUrl"]).rsplit("/", 1)[1]


@pytest.mark.parametrize("route", ["bare", "other_token", "unlisted_source"])
@pytest.mark.parametrize("forgery", ["success", "failure", "short_amount"])
def test_a_forged_callback_never_decides_the_payment_the_simulator_does(
    shop: Shop, postgres_url: str, forgery: str, route: str
) -> None:
    decoy_phone, phone = next(_phones), next(_phones)
    shop.pay(decoy_phone)  # another customer's payment, whose token URL the forger uses
    decoy = _push(shop, decoy_phone)
    payment_id = shop.pay(phone)
    push = _push(shop, phone)

    answer = _send(
        shop, route, _forged_body(forgery, push["checkoutRequestId"]), _token(push), _token(decoy)
    )

    assert answer.status_code == (200 if route == "bare" else 403), answer.text
    time.sleep(1.5)  # time enough for a worker to (wrongly) apply it
    assert shop.status(payment_id)["status"] == "pending"
    # The customer does the opposite of what the forger claimed.
    action = "cancel" if forgery == "success" else "pay"
    httpx.post(f"{shop.simulator}/simulator/prompts/{push['checkoutRequestId']}/{action}")
    # A query may complete it before the callback brings the receipt: wait for the receipt.
    done = shop.wait_until(payment_id, _settled)
    truth = _push(shop, phone)
    if action == "pay":
        assert (done["status"], truth["resultCode"]) == ("completed", 0)
        assert done["mpesaReceiptNumber"] == truth["receipt"]
        assert done["lateSuccess"] is False
    else:
        assert (done["status"], truth["resultCode"]) == ("cancelled", 1032)
    _assert_forgery_kept(postgres_url, push["checkoutRequestId"], route)
    httpx.post(f"{shop.simulator}/simulator/prompts/{decoy['checkoutRequestId']}/cancel")


def _settled(payment: dict[str, Any]) -> bool:
    status = payment.get("status")
    return status not in (None, "pending") and (
        status != "completed" or payment.get("mpesaReceiptNumber") is not None
    )


def _assert_forgery_kept(postgres_url: str, checkout: str, route: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            states = conn.execute(
                sa.select(callback_inbox.c.state).where(
                    callback_inbox.c.checkout_index == checkout_index(checkout)
                )
            ).scalars().all()  # fmt: skip
    finally:
        engine.dispose()
    expected = "untrusted" if route == "bare" else "rejected"
    assert expected in states, states

"""The demo pages of `khalex-pay dev`: the checkout at `/` and the virtual phone at `/phone`.

No browser here: the pages are checked for the endpoints their scripts call, and a manual
payment is driven over HTTP exactly as the two pages' scripts drive it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from daraja.simulator.scenarios import ACTIONS, SCENARIOS
from payments.container import Container
from plumbing.settings import Settings
from store.db import make_engine
from tests import services
from tests.processes import Processes, Shop, dev_key

pytestmark = pytest.mark.e2e

#: What the checkout page sends for the tournament board.
BOARD = {
    "amount": 1500, "productId": "board-01", "productName": "Tournament chess board",
    "customerName": "Wanjiru", "customerEmail": "wanjiru@example.com",
}  # fmt: skip


@pytest.fixture(scope="module")
def dev_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running `khalex-pay dev` on a free port: its base URL and the key its banner shows."""
    tmp = tmp_path_factory.mktemp("demo")
    port = services.free_port()
    env = {"DATABASE_URL": f"sqlite:///{tmp / 'dev.db'}", "SIM_CALLBACK_DELAY": "0.3"}
    with Processes(env, tmp) as procs:
        proc = procs.start("dev", "dev", "--port", str(port))
        services.wait_for_http(f"http://127.0.0.1:{port}/health/live", proc=proc)
        yield f"http://127.0.0.1:{port}", dev_key(tmp / "dev.log")


@pytest.fixture(scope="module")
def dev(dev_run: tuple[str, str]) -> str:
    return dev_run[0]


@pytest.fixture(scope="module")
def shop(dev_run: tuple[str, str]) -> Shop:
    """The payment API as the shop's server calls it, with dev mode's key."""
    return Shop(dev_run[0], token=dev_run[1])


def test_checkout_page_is_served_at_the_root_and_calls_the_payment_api(dev: str) -> None:
    page = httpx.get(f"{dev}/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Built on the shop page's client module, from this server (no CDN).
    assert 'import { createPayments, PaymentError } from "/khalex-pay.js";' in page.text
    assert 'fetch("/demo/orders"' in page.text
    assert "initiatePayment({phoneNumber: s.phone}, {idempotencyKey: key})" in page.text
    assert "const key = s.retryKey || newKey();" in page.text
    assert "payments.watchPayment(payment.paymentId" in page.text
    assert "payments.getConfig()" in page.text
    assert "error.field" in page.text


def test_checkout_page_lists_every_simulator_test_number(dev: str) -> None:
    page = httpx.get(f"{dev}/").text

    for msisdn in SCENARIOS:
        assert f'"0{msisdn[3:]}"' in page, f"test number {msisdn} missing from the checkout page"


def test_pages_load_nothing_from_outside(dev: str) -> None:
    for path in ("/", "/phone"):
        page = httpx.get(f"{dev}{path}").text
        # No internet here: every script and style is inline.
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", page), path
        assert not re.search(r"import[^;]*from \"https?:", page), path
        assert "<script src" not in page, path


def test_phone_page_is_served_and_calls_the_simulator_control_api(dev: str) -> None:
    page = httpx.get(f"{dev}/phone")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for path in ('"/simulator/prompts"', '"/simulator/prompts/"', '"/simulator/ledger"'):
        assert path in page.text
    assert re.search(r'fetch\("/simulator/chaos", \{\s*method: "PUT"', page.text)
    assert "JSON.stringify({manual: on})" in page.text
    for action in ACTIONS:
        assert f'["{action}", ' in page.text, f"no button for {action}"


def test_phone_page_masks_the_numbers_it_shows(dev: str) -> None:
    page = httpx.get(f"{dev}/phone").text

    assert 'slice(0, 4) + "****" + s.slice(-4)' in page
    # Every number the page writes goes through mask(); CheckoutRequestIDs embed the
    # number, so they only ever appear in the URL of an action, never as text.
    assert "mask(p.phoneNumber)" in page
    assert "mask(push.phoneNumber)" in page
    assert "textContent = p.checkoutRequestId" not in page


def test_production_app_serves_neither_page() -> None:
    container = Container(Settings(), make_engine("sqlite://"), publish=lambda job: None)

    paths = {route.path for route in create_app(container).routes}

    assert "/api/payments/initiate" in paths
    assert "/" not in paths
    assert "/phone" not in paths
    assert not any(path.startswith("/demo") for path in paths)


def test_the_public_api_wants_a_key_while_the_demo_shop_calls_it_server_side(dev: str) -> None:
    body = {**BOARD, "phoneNumber": "0712000555"}
    anonymous = httpx.post(f"{dev}/api/payments/initiate", json=body)
    as_text = httpx.post(f"{dev}/demo/orders", content=b"{}",
                         headers={"Content-Type": "text/plain"})  # fmt: skip

    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthenticated")
    assert as_text.status_code == 415


def test_payment_held_on_the_virtual_phone_completes_when_pay_is_pressed(
    dev: str, shop: Shop
) -> None:
    chaos = httpx.put(f"{dev}/simulator/chaos", json={"manual": True})
    assert chaos.status_code == 200, chaos.text
    assert chaos.json()["manual"] is True
    try:
        payment = _click_pay_twice(dev, "0712 000 333")
        prompt = _wait_for_prompt(dev, "254712000333")
        time.sleep(1.0)  # three callback delays: an auto-resolving prompt would be gone
        assert shop.status(payment)["status"] == "pending"
        assert _open_prompt_ids(dev).count(prompt["checkoutRequestId"]) == 1

        pressed = httpx.post(f"{dev}/simulator/prompts/{prompt['checkoutRequestId']}/pay")

        assert pressed.status_code == 200, pressed.text
        done = shop.wait_final(payment, 20)
        assert done["status"] == "completed"
        assert done["checkoutRequestId"] == prompt["checkoutRequestId"]
        assert done["mpesaReceiptNumber"] == pressed.json()["push"]["receipt"]
        assert prompt["checkoutRequestId"] not in _open_prompt_ids(dev)
        again = httpx.post(f"{dev}/simulator/prompts/{prompt['checkoutRequestId']}/pay")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "prompt_closed"
    finally:
        httpx.put(f"{dev}/simulator/chaos", json={"manual": False})


def test_cancel_on_the_virtual_phone_cancels_the_payment(dev: str, shop: Shop) -> None:
    httpx.put(f"{dev}/simulator/chaos", json={"manual": True})
    try:
        payment = _click_pay_twice(dev, "0712000444")
        prompt = _wait_for_prompt(dev, "254712000444")

        pressed = httpx.post(f"{dev}/simulator/prompts/{prompt['checkoutRequestId']}/cancel")

        assert pressed.status_code == 200, pressed.text
        done = shop.wait_final(payment, 20)
        assert done["status"] == "cancelled"
        assert done["failureReason"] == "cancelled_by_user"
        assert done["message"]  # the checkout page shows it as it is
    finally:
        httpx.put(f"{dev}/simulator/chaos", json={"manual": False})


def test_field_error_names_the_field_the_checkout_page_marks(dev: str) -> None:
    token = _demo_order(dev, "0712000666")["checkoutToken"]
    answer = httpx.post(
        f"{dev}/api/payments/initiate",
        json={"phoneNumber": "0612"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "phoneNumber"
    page = httpx.get(f"{dev}/").text
    assert 'id="error-phoneNumber"' in page  # the slot the page writes error.message into


def _demo_order(dev: str, phone: str) -> dict[str, Any]:
    """What the page does first: the demo shop's server makes the order (a board)."""
    made = httpx.post(
        f"{dev}/demo/orders",
        json={"productId": BOARD["productId"], "phoneNumber": phone,
              "customerName": "Wanjiru", "customerEmail": "wanjiru@example.com"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    order: dict[str, Any] = made.json()
    return order


def _click_pay_twice(dev: str, phone: str) -> str:
    """A double click on the page: both requests carry the attempt's one Idempotency-Key."""
    key = str(uuid.uuid4())
    token = _demo_order(dev, phone)["checkoutToken"]
    body = {"phoneNumber": phone}
    url = f"{dev}/api/payments/initiate"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    first = httpx.post(url, json=body, headers=headers)
    second = httpx.post(url, json=body, headers=headers)
    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert second.headers.get("idempotent-replayed") == "true"
    payment_id: str = first.json()["paymentId"]
    assert second.json()["paymentId"] == payment_id
    return payment_id


def _open_prompt_ids(dev: str) -> list[str]:
    prompts = httpx.get(f"{dev}/simulator/prompts").json()["prompts"]
    return [prompt["checkoutRequestId"] for prompt in prompts]


def _wait_for_prompt(dev: str, msisdn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for prompt in httpx.get(f"{dev}/simulator/prompts").json()["prompts"]:
            if prompt["phoneNumber"] == msisdn:
                assert prompt["manual"] is True
                assert prompt["amount"] == BOARD["amount"]
                found: dict[str, Any] = prompt
                return found
        time.sleep(0.1)
    raise AssertionError(f"no prompt opened for {msisdn[:4]}****{msisdn[-4:]}")


def test_demo_checkout_pays_a_real_order_with_its_checkout_token(dev: str) -> None:
    """What the page does: the demo shop's server makes the order, the page pays it by phone."""
    made = httpx.post(
        f"{dev}/demo/orders",
        json={"productId": "pieces-01", "phoneNumber": "0712 345 699",
              "customerName": "Wanjiru", "customerEmail": "wanjiru@example.com"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    order = made.json()
    token = {"Authorization": f"Bearer {order['checkoutToken']}"}

    paid = httpx.post(
        f"{dev}/api/payments/initiate", json={"phoneNumber": "0712 345 699"},
        headers={**token, "Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert paid.status_code == 202, paid.text
    done = Shop(dev, token=order["checkoutToken"]).wait_final(paid.json()["paymentId"])
    seen = httpx.get(f"{dev}/api/orders/{order['orderId']}", headers=token).json()

    assert order["totalAmount"] == 3200  # the shop's price, not the page's
    assert (done["status"], done["amount"]) == ("completed", 3200)
    assert (seen["status"], seen["paymentId"]) == ("confirmed", done["paymentId"])
    page = httpx.get(f"{dev}/").text
    assert "/demo/orders" in page
    assert "checkoutToken" in page


def test_phone_page_has_a_pay_by_paybill_form_on_the_simulator(dev: str) -> None:
    page = httpx.get(f"{dev}/phone").text

    assert 'id="paybill-form"' in page
    assert re.search(r'fetch\("/simulator/paybill", \{\s*method: "POST"', page)
    for field in ("businessNumber", "accountReference", "amount"):
        assert f"{field}: " in page, field


def test_dev_registers_its_paybill_urls_and_a_paybill_payment_confirms_the_order(
    dev: str, shop: Shop
) -> None:
    order = httpx.post(f"{dev}/demo/orders", json={
        "productId": "travel-01", "phoneNumber": "0712000777", "customerName": "Akinyi",
    }).json()  # fmt: skip
    token = {"Authorization": f"Bearer {order['checkoutToken']}"}
    paybill = httpx.get(f"{dev}/api/payments/config", headers=token).json()["paybill"]
    deadline = time.monotonic() + 20
    while httpx.get(f"{dev}/simulator/paybill").json()["registration"] is None:
        assert time.monotonic() < deadline, "dev mode never registered its C2B URLs"
        time.sleep(0.2)

    tx = httpx.post(f"{dev}/simulator/paybill", json={
        "businessNumber": paybill["businessNumber"],
        "accountReference": paybill["accountReference"], "amount": order["totalAmount"],
    }, timeout=20).json()["transaction"]  # fmt: skip

    assert tx["status"] == "paid"
    url = f"{dev}/api/orders/{order['orderId']}"
    while (status := httpx.get(url, headers=shop.auth).json()["status"]) != "confirmed":
        assert time.monotonic() < deadline + 20, status
        time.sleep(0.2)

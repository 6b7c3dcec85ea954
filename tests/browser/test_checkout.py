"""The reference checkout in a real browser, against a real `khalex-pay dev`.

Each test plays its story at the three VIEWPORTS at once (one tab each, with its own phone
number), checking at every stage that the page does not scroll sideways and that focus
moved to the stage's heading. The simulator decides outcomes: by test number, or held on
the handset (`manualPhones`) and answered through its control API, as the virtual phone does.
Payments expire after PAYMENT_EXPIRY_S here, so "ignored" and "late" stories stay short.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from playwright.sync_api import Page, Route

from api.checkout_tokens import mint
from plumbing.settings import Settings
from tests.browser.shopper import (
    VIEWPORTS,
    DevServer,
    Shopper,
    dev_server,
    fresh_number,
    msisdn,
)
from tests.processes import Shop

#: How long a payment may wait for the PIN on this server (the page's countdown).
EXPIRY_S = 14


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    tmp = tmp_path_factory.mktemp("checkout")
    with dev_server(
        tmp, PAYMENT_EXPIRY_S=str(EXPIRY_S), RECONCILE_AFTER_S="2", MPESA_TIMEOUT_S="2"
    ) as dev:
        yield dev


@pytest.fixture
def shoppers(tabs: dict[str, Page], server: DevServer) -> list[Shopper]:
    return [Shopper(page, size, server.url) for size, page in tabs.items()]


@pytest.fixture
def held(server: DevServer, shoppers: list[Shopper]) -> Iterator[list[str]]:
    """A fresh number per shopper whose prompts wait on the handset for the test to answer."""
    numbers = [fresh_number() for _ in shoppers]
    server.chaos(manualPhones=[msisdn(n) for n in numbers])
    yield numbers
    server.chaos(manualPhones=[])


def test_paying_shows_the_prompt_details_with_a_countdown_then_the_receipt_and_locks_the_order(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        text = shopper.text()
        assert "Check your phone" in text
        assert "KES 1,500" in text
        assert "Khalex Chess" in text
        assert f"07****{shopper.phone[-4:]}" in text
        assert shopper.phone not in text  # the number is masked
        timer = shopper.page.locator("[role=timer]")
        assert re.fullmatch(r"0:(0\d|1[0-2])", timer.inner_text()), timer.inner_text()
        assert not shopper.visible("#resend")  # no new prompt while this one is open
    receipts = {s.phone: server.press(s.phone, "pay")["push"]["receipt"] for s in shoppers}

    for shopper in shoppers:
        shopper.wait_for("paid")
        assert "Payment received" in shopper.text()
        assert receipts[shopper.phone] in shopper.text()
        assert shopper.page.locator("#stage-paid [role=status]").count() == 1
        # The order is paid: the form is locked and a second press pays nothing.
        shopper.page.evaluate("document.getElementById('pay-form').requestSubmit()")
        assert shopper.page.is_disabled("#phoneNumber")
        assert shopper.page.inner_text("#pay") == "Paid"
        assert shopper.page.is_disabled("#pay")
    shoppers[0].page.wait_for_timeout(500)
    for shopper in shoppers:
        assert shopper.trail[-2:] == ["waiting", "paid"], shopper.trail  # nothing sent again
        assert len(server.ledger(shopper.phone)) == 1


def test_cancelling_on_the_phone_says_so_in_words_and_offers_a_new_prompt(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        server.press(shopper.phone, "cancel")

    for shopper in shoppers:
        shopper.wait_for("failed")
        assert shopper.data("code") == "cancelled_by_user"
        text = shopper.text()
        assert "You cancelled the payment" in text
        assert "No money was taken" in text
        assert "cancelled_by_user" not in text  # codes stay in the data
        assert shopper.page.locator("#stage-failed [role=alert]").count() == 1
        assert shopper.visible("#resend")


def test_not_enough_money_tells_the_shopper_to_top_up(
    server: DevServer, shoppers: list[Shopper]
) -> None:
    for shopper in shoppers:  # one at a time: it is one handset
        shopper.pay("0700000001")
        shopper.wait_for("failed")
        assert shopper.data("code") == "insufficient_funds"
        text = shopper.text()
        assert "Not enough money" in text
        assert "Top up" in text
        assert "insufficient" not in text.lower()
        assert shopper.visible("#resend")


def test_an_ignored_prompt_counts_down_then_still_confirms_and_never_says_failed_too_early(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("waiting")

    for shopper in shoppers:
        shopper.wait_for("failed", timeout_s=EXPIRY_S + 15)
        assert shopper.data("code") == "timeout"
        # The countdown ran out first: "still confirming", and only then the timeout.
        assert shopper.trail[-3:] == ["waiting", "confirming", "failed"], shopper.trail
        text = shopper.text()
        assert "We didn't hear back in time" in text
        assert "keep this page open" in text
        assert shopper.visible("#failed-paybill")  # the next step: PayBill, or a new prompt
        assert shopper.visible("#resend")


def test_a_payment_made_after_we_gave_up_still_shows_success(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("failed", timeout_s=EXPIRY_S + 15)
        assert shopper.data("code") == "timeout"
    for shopper in shoppers:
        server.press(shopper.phone, "pay")  # the customer pays at last

    for shopper in shoppers:
        shopper.wait_for("paid", timeout_s=20)
        assert shopper.data("code") == "late_success"
        assert "after we had stopped waiting" in shopper.text()
        assert shopper.page.is_disabled("#pay")


def test_resend_is_offered_only_after_the_prompt_ended_and_the_second_prompt_pays(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        assert not shopper.visible("#resend")
        server.press(shopper.phone, "wrong-pin")
    for shopper in shoppers:
        shopper.wait_for("failed")
        assert shopper.data("code") == "wrong_pin"
        assert "PIN was wrong" in shopper.text()
        shopper.page.focus("#resend")
        shopper.page.keyboard.press("Enter")

    for shopper in shoppers:
        shopper.wait_for("waiting")
        server.press(shopper.phone, "pay")
    for shopper in shoppers:
        shopper.wait_for("paid")
        pushes = server.ledger(shopper.phone)
        assert [p["resultCode"] for p in pushes] == [2001, 0]
        assert shopper.trail[-5:] == ["waiting", "failed", "sending", "waiting", "paid"]


def test_a_lost_answer_then_send_again_replays_the_same_prompt_and_pays_once(
    server: DevServer, shoppers: list[Shopper]
) -> None:
    def lose_the_answer(route: Route) -> None:
        route.fetch()  # the API takes the request and answers; the answer never arrives
        route.abort("connectionreset")

    for shopper in shoppers:
        shopper.page.route("**/api/payments/initiate", lose_the_answer, times=1)
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("failed")
        assert shopper.data("code") == "network_error"
        assert "you will not be charged twice" in shopper.text()
        shopper.page.click("#resend")

    for shopper in shoppers:
        shopper.wait_for("paid")
        pushes = server.ledger(shopper.phone)
        assert len(pushes) == 1  # one prompt, one payment
        assert pushes[0]["receipt"] in shopper.page.inner_text("#paid-receipt")


def test_didnt_get_the_prompt_shows_the_paybill_steps_with_the_orders_account_reference(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        shopper.page.focus("#help-waiting summary")
        shopper.page.keyboard.press("Enter")  # opens "Didn't get the prompt?"
        steps = shopper.page.inner_text("#help-waiting")
        paybill = _config(server, shopper)["paybill"]
        assert paybill["accountReference"].startswith("KP")
        assert f"Business number: {paybill['businessNumber']}" in steps
        assert f"Account number: {paybill['accountReference']}" in steps
        assert "Amount: KES 1,500" in steps
        shopper.check_layout()
        server.press(shopper.phone, "ignore")  # the prompt never shows on the handset

    for shopper in shoppers:
        shopper.wait_for("failed")
        assert shopper.data("code") == "phone_unreachable"
        assert shopper.data("next-action") == "pay_by_paybill"
        reference = _config(server, shopper)["paybill"]["accountReference"]
        assert f"Account number: {reference}" in shopper.page.inner_text("#failed-paybill")


def test_paying_by_paybill_as_didnt_get_the_prompt_says_shows_the_order_paid_with_its_receipt(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    server.paybill_registration()  # dev mode registers its C2B URLs once it listens
    for shopper, number in zip(shoppers, held, strict=True):
        shopper.pay(number)
    receipts = {}
    for shopper in shoppers:
        shopper.wait_for("waiting")
        steps = shopper.open_paybill_steps()
        # The customer types what the page says, on M-Pesa's Pay Bill menu.
        tx = server.pay_by_paybill(shopper.phone, steps)
        assert tx["validationResult"] == "0", tx  # the shop's validation URL accepted it
        receipts[shopper.phone] = tx["transId"]

    for shopper in shoppers:
        shopper.wait_for("paid")  # the page reads the order while the steps are on screen
        assert receipts[shopper.phone] in shopper.page.inner_text("#paid-receipt")
        assert shopper.page.is_disabled("#pay")
        assert shopper.data("code") == "paid"
        assert server.ledger(shopper.phone)[0]["receipt"] is None  # the prompt never paid


def test_a_lost_prompt_answer_shows_still_confirming_until_mpesa_settles_it(
    server: DevServer, shoppers: list[Shopper], held: list[str]
) -> None:
    # The push's answer never comes back (our timeout is 2 s), yet the prompt is out.
    server.chaos(pushTimeoutRate=1.0, hangS=4)
    try:
        for shopper, number in zip(shoppers, held, strict=True):
            shopper.pay(number)
        for shopper in shoppers:
            shopper.wait_for("confirming", timeout_s=15)
            text = shopper.text()
            assert "Still confirming" in text
            assert "don't pay again" in text
            assert "fail" not in text.lower()
    finally:
        server.chaos(pushTimeoutRate=0.0, hangS=30)
    for shopper in shoppers:
        server.press(shopper.phone, "pay")

    for shopper in shoppers:
        shopper.wait_for("paid", timeout_s=20)
        assert "failed" not in shopper.trail


def test_too_many_prompts_to_one_number_says_how_long_to_wait(
    server: DevServer, shoppers: list[Shopper]
) -> None:
    numbers = [fresh_number() for _ in shoppers]
    shop = {"Authorization": f"Bearer {server.key}"}
    with ThreadPoolExecutor(len(numbers)) as pool:
        list(pool.map(lambda n: _use_up_the_phone_limit(server, shop, n), numbers))

    for shopper, number in zip(shoppers, numbers, strict=True):
        shopper.pay(number)
    for shopper in shoppers:
        shopper.wait_for("failed")
        assert shopper.data("code") == "rate_limited"
        text = shopper.text()
        assert "Too many tries" in text
        assert re.search(r"You can send a new prompt in (9|10) minutes", text), text
        assert shopper.page.is_disabled("#resend")
        assert len(server.ledger(shopper.phone)) == 3


def _use_up_the_phone_limit(server: DevServer, shop: dict[str, str], number: str) -> None:
    """Three paid prompts to `number` (the shipped limit is 3 in 10 minutes)."""
    for _ in range(3):
        answer = httpx.post(
            f"{server.url}/api/payments/initiate", headers=shop, timeout=10,
            json={"amount": 10, "phoneNumber": number, "productId": "x", "productName": "x",
                  "customerName": "Wanjiru", "customerEmail": "w@example.com"},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        done = Shop(server.url, token=server.key).wait_final(answer.json()["paymentId"], 20)
        assert done["status"] == "completed", done


def _config(server: DevServer, shopper: Shopper) -> dict[str, Any]:
    """GET /api/payments/config as the shopper's page sees it (its order's token)."""
    order_id = shopper.data("order-id")
    assert order_id
    with warnings.catch_warnings():  # dev mode's own secret, short on purpose
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = mint(Settings().jwt_secret, order_id)
    answer = httpx.get(
        f"{server.url}/api/payments/config", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    config: dict[str, Any] = answer.json()
    return config


#: Accessibility basics the page must keep: problems found, as sentences.
A11Y_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  for (const input of document.querySelectorAll("input")) {
    if (!input.labels.length && !input.getAttribute("aria-label"))
      problems.push(`input ${input.name || input.id} has no label`);
  }
  for (const button of document.querySelectorAll("button")) {
    if (!(button.textContent.trim() || button.getAttribute("aria-label")))
      problems.push(`button ${button.id} has no name`);
  }
  for (const stage of document.querySelectorAll("#checkout .stage")) {
    const heading = stage.querySelector("h2");
    if (!heading || heading.getAttribute("tabindex") !== "-1")
      problems.push(`${stage.id} has no focusable heading`);
  }
  const roles = {"stage-sending": "status", "stage-waiting": "timer", "stage-confirming": "status",
                 "stage-paid": "status", "stage-failed": "alert", "stage-unavailable": "alert"};
  for (const [id, role] of Object.entries(roles)) {
    if (!document.querySelector(`#${id} [role=${role}]`)) problems.push(`${id} has no ${role}`);
  }
  if (!document.querySelector("#stage-waiting [role=status]")) problems.push("no waiting status");
  for (const tag of ["header", "main"]) {
    if (!document.querySelector(tag)) problems.push(`no <${tag}> landmark`);
  }
  return problems;
}"""


def test_the_page_has_labels_headings_and_live_regions_for_screen_readers(
    shoppers: list[Shopper],
) -> None:
    widest = shoppers[-1].page  # 430 px, the widest phone this page is laid out for
    widest.set_viewport_size({"width": 430, "height": 932})
    assert widest.evaluate("document.documentElement.scrollWidth") <= 430
    widest.set_viewport_size(VIEWPORTS[shoppers[-1].size])
    for shopper in shoppers:
        shopper.check_layout()
        assert shopper.page.evaluate(A11Y_PROBLEMS) == []
        # A wrong number: the field says why, and the reader hears it with the field.
        shopper.pay("0612 345")
        error = shopper.page.inner_text("#error-phoneNumber")
        assert "not a Kenyan mobile number" in error
        assert shopper.page.get_attribute("#phoneNumber", "aria-invalid") == "true"
        assert "error-phoneNumber" in (
            shopper.page.get_attribute("#phoneNumber", "aria-describedby") or ""
        )
        assert shopper.page.evaluate("document.activeElement.id") == "phoneNumber"
        assert shopper.stage == "form"


def test_the_virtual_phone_and_its_paybill_form_fit_a_phone_with_the_ledger_full(
    server: DevServer, tabs: dict[str, Page]
) -> None:
    shop = {"Authorization": f"Bearer {server.key}"}
    _use_up_the_phone_limit(server, shop, fresh_number())  # three rows in the ledger
    for size, page in tabs.items():
        page.set_viewport_size(VIEWPORTS[size])
        page.goto(f"{server.url}/phone")
        page.wait_for_selector("#ledger td.mono")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[size]["width"], f"/phone is {width} px wide at {size}"
    page = tabs["phone"]
    for phone_width in (360, 390, 430):  # the PayBill form too, across phone widths
        page.set_viewport_size({"width": phone_width, "height": 844})
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= phone_width, f"/phone is {width} px wide in {phone_width}"
        for field in ("#pb-business", "#pb-account", "#pb-amount", "#pb-pay"):
            box = page.locator(field).bounding_box()
            assert box is not None, field
            assert box["x"] >= 0, (field, box)
            assert box["x"] + box["width"] <= phone_width, (field, box)

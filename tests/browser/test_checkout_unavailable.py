"""The checkout when M-Pesa is not on offer: outside the rollout, Daraja down, payments down.

Each shows the shop's call-to-order contact (SHOP_CONTACT) instead of a dead end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route

from api.errors import UNAVAILABLE
from plumbing.settings import Settings
from tests.browser.shopper import DevServer, Shopper, dev_server, fresh_number

#: What every one of these pages must show.
CONTACT = Settings().shop_contact


@pytest.fixture(scope="module")
def no_rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(tmp_path_factory.mktemp("rollout"), MPESA_ROLLOUT_PERCENT="0") as dev:
        yield dev


@pytest.fixture(scope="module")
def daraja_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """Daraja answers every call with its gateway's 503 fault."""
    chaos = json.dumps({"faultRate": 1.0})
    with dev_server(tmp_path_factory.mktemp("down"), SIM_CHAOS=chaos) as dev:
        yield dev


def test_outside_the_mpesa_rollout_the_page_shows_the_call_to_order_contact(
    no_rollout: DevServer, tabs: dict[str, Page]
) -> None:
    shoppers = [Shopper(page, size, no_rollout.url) for size, page in tabs.items()]
    for shopper in shoppers:
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("unavailable")
        assert shopper.data("code") == "mpesa_not_enabled"
        text = shopper.text()
        assert "Order by phone" in text
        assert CONTACT in text
    assert no_rollout.ledger() == []  # no prompt went out


def test_daraja_down_ends_the_attempt_with_the_contact_and_nothing_taken(
    daraja_down: DevServer, tabs: dict[str, Page]
) -> None:
    shoppers = [Shopper(page, size, daraja_down.url) for size, page in tabs.items()]
    for shopper in shoppers:
        shopper.pay(fresh_number())
    for shopper in shoppers:
        # The push is retried a few times before it is given up (about 20 s).
        shopper.wait_for("failed", timeout_s=60)
        assert shopper.data("code") == "mpesa_unavailable"
        text = shopper.text()
        assert "isn't working right now" in text
        assert "No money was taken" in text
        assert CONTACT in text
        assert "confirming" not in shopper.trail  # refused pushes are known not to be out
    assert daraja_down.ledger() == []


def test_payments_answering_503_show_the_contact_and_when_to_try_again(
    daraja_down: DevServer, tabs: dict[str, Page]
) -> None:
    """The page's side of a 503 `payments_unavailable` (its server side: tests/faults)."""

    def store_down(route: Route) -> None:
        body = {"error": {"code": "payments_unavailable", "message": UNAVAILABLE,
                          "contact": CONTACT}}  # fmt: skip
        route.fulfill(status=503, json=body, headers={"Retry-After": "30"})

    shoppers = [Shopper(page, size, daraja_down.url) for size, page in tabs.items()]
    for shopper in shoppers:
        shopper.page.route("**/api/payments/initiate", store_down)
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("unavailable")
        assert shopper.data("code") == "payments_unavailable"
        text = shopper.text()
        assert "not working right now" in text
        assert CONTACT in text
        assert "try again in 30 seconds" in text

"""End to end: the PayBill fallback through the real API, worker, scheduler and simulator.

`khalex-pay c2b register` registers the API's C2B URLs (on their secret path) with the
simulator; a "customer" then pays the order's account reference by PayBill from the virtual
phone's control endpoint, and the confirmation confirms the order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_orders_across_processes import ORDER, TOTAL
from tests.processes import Processes, System, new_shop_key

pytestmark = pytest.mark.e2e

SECRET = "e2e-c2b-secret-0123456789abcdef"


class PaybillShop:
    def __init__(self, api: str, simulator: str, key: str, procs: Processes, logs: Path) -> None:
        self.api, self.simulator = api, simulator
        self.server = {"Authorization": f"Bearer {key}"}
        self.procs, self.logs = procs, logs

    def command(self, name: str, *args: str) -> tuple[int, str]:
        """Run `khalex-pay ARGS` to its end: its exit status and output."""
        proc = self.procs.start(name, *args)
        status = proc.wait(timeout=60)
        return status, (self.logs / f"{name}.log").read_text()

    def create_order(self) -> dict[str, Any]:
        answer = httpx.post(f"{self.api}/api/orders", json=ORDER, headers=self.server, timeout=15)
        assert answer.status_code == 201, answer.text
        order: dict[str, Any] = answer.json()
        return order

    def paybill_of(self, order: dict[str, Any]) -> dict[str, str]:
        """What the shop's page shows under "Didn't get the prompt? Pay by PayBill"."""
        token = {"Authorization": f"Bearer {order['checkoutToken']}"}
        config = httpx.get(f"{self.api}/api/payments/config", headers=token, timeout=15)
        paybill: dict[str, str] = config.json()["paybill"]
        return paybill

    def pay_by_paybill(self, business: str, account: str, amount: int) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.simulator}/simulator/paybill",
            json={"businessNumber": business, "accountReference": account, "amount": amount},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        tx: dict[str, Any] = answer.json()["transaction"]
        return tx

    def wait_order(self, order_id: str, status: str, timeout_s: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            order: dict[str, Any] = httpx.get(
                f"{self.api}/api/orders/{order_id}", headers=self.server, timeout=15
            ).json()
            if order["status"] == status or time.monotonic() > deadline:
                return order
            time.sleep(0.3)


@pytest.fixture(scope="module")
def shop(
    postgres_url: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[System]]
) -> Iterator[PaybillShop]:
    key = new_shop_key(postgres_url, "e2e paybill shop")
    with launch_system(
        "e2e-paybill-logs", postgres_url, redis_url,
        SIM_CALLBACK_DELAY="0.5", C2B_URL_SECRET=SECRET,
    ) as system:  # fmt: skip
        shop = PaybillShop(system.api, system.simulator, key, system.procs, system.logs)
        status, output = shop.command("register", "c2b", "register")
        assert status == 0, output
        yield shop


def test_a_paybill_payment_of_the_orders_reference_confirms_the_order(shop: PaybillShop) -> None:
    order = shop.create_order()
    paybill = shop.paybill_of(order)
    assert paybill["accountReference"].startswith("KP")

    tx = shop.pay_by_paybill(paybill["businessNumber"], paybill["accountReference"], TOTAL)

    assert (tx["status"], tx["validationResult"]) == ("paid", "0")
    confirmed = shop.wait_order(order["orderId"], "confirmed")
    assert confirmed["status"] == "confirmed", confirmed
    assert confirmed["refundDue"] is False
    status, listing = shop.command("list-matched", "c2b", "list", "--state", "matched")
    assert status == 0, listing
    assert tx["transId"] in listing
    assert order["orderId"] in listing


def test_the_wrong_amount_is_declined_before_any_money_moves(shop: PaybillShop) -> None:
    order = shop.create_order()
    paybill = shop.paybill_of(order)

    tx = shop.pay_by_paybill(paybill["businessNumber"], paybill["accountReference"], TOTAL - 1)

    assert (tx["status"], tx["validationResult"]) == ("declined", "C2B00013")
    assert shop.wait_order(order["orderId"], "confirmed", timeout_s=2)["status"] == "pending"


def test_a_payment_for_no_order_is_kept_until_an_operator_assigns_it(shop: PaybillShop) -> None:
    order = shop.create_order()
    business = shop.paybill_of(order)["businessNumber"]
    tx = shop.pay_by_paybill(business, "KhalexChess", TOTAL)  # the customer typed the shop's name
    assert tx["status"] == "paid"

    deadline = time.monotonic() + 30
    while True:
        status, listing = shop.command("list-unmatched", "c2b", "list")
        if tx["transId"] in listing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 0
    line = next(line for line in listing.splitlines() if tx["transId"] in line)
    assert "unmatched" in line
    c2b_id = line.split()[0]

    status, said = shop.command("assign", "c2b", "assign", c2b_id, order["orderId"])

    assert status == 0, said
    assert "matched (assigned by an operator)" in said
    assert shop.wait_order(order["orderId"], "confirmed")["status"] == "confirmed"


def test_registering_again_is_refused_in_one_line(shop: PaybillShop) -> None:
    status, output = shop.command("register-again", "c2b", "register")

    assert status == 1
    assert "c2b register refused: Urls are already registered" in output

"""A stolen copy of the database gives no customer away (CONTRACT.md §10).

The whole system runs on its own PostgreSQL database (API, worker, scheduler, simulator as
processes). Customers pay, cancel, order, pay by PayBill (the C2B confirmation URL, with the
number and names Daraja sends), are sent forged and malformed callbacks and have
requests refused; then `pg_dump` copies the database as a backup would, and the copy must
hold none of their phone numbers in any form the API accepts, even inside other values
(Daraja's CheckoutRequestID ends with the number), nor their names or e-mails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from store.db import make_engine
from tests import services
from tests.factories import stk_callback
from tests.processes import Shop, System, new_shop_key
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "whsec_a2hhbGV4LWNoZXNzLWR1bXAtdGVzdC13ZWJob29rcyE="


@dataclass(frozen=True)
class Customer:
    national: str  # the 9 digits after 254
    name: str
    email: str

    def forms(self) -> list[str]:
        """Ways a customer writes the number, each one the API accepts."""
        n = self.national
        return [
            f"0{n}", f"254{n}", n, f"+254 {n[:3]} {n[3:6]} {n[6:]}", f"0{n[:3]} {n[3:6]} {n[6:]}",
            f"+254-{n[:3]}-{n[3:]}",
        ]  # fmt: skip


PAYER = Customer("712908417", "Nyokabi Chepkoech", "nyokabi.chepkoech@example.org")
CANCELLER = Customer("700000002", "Zawadi Mwakilema", "zawadi.mwakilema@example.net")
ORDERER = Customer("798316254", "Kiprotich Odhiambo", "k.odhiambo@example.com")
REFUSED = Customer("745127639", "Achieng Wambui", "achieng.w@example.co.ke")
PAYBILL = Customer("733514862", "Wairimu Njambi Gathoni", "wairimu.g@example.org")
CUSTOMERS = (PAYER, CANCELLER, ORDERER, REFUSED, PAYBILL)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of its own: the dump holds this test's customers and nothing else."""
    services.require_postgres()
    with services.fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def shop(
    database: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[System]]
) -> Iterator[Shop]:
    with Receiver() as receiver, launch_system(
        "dump-logs", database, redis_url,
        SIM_CALLBACK_DELAY="0.3",
        RECONCILE_AFTER_S="1",  # STK queries too, with the CheckoutRequestID in them
        PAYMENT_EXPIRY_S="150", SHOP_WEBHOOK_URL=receiver.url, SHOP_WEBHOOK_SECRET=SECRET,
    ) as system:  # fmt: skip
        yield system.shop(new_shop_key(database))


def _post(shop: Shop, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{shop.api}{path}", timeout=15, **kwargs)


def _customer_fields(c: Customer, phone: str) -> dict[str, str]:
    return {"phoneNumber": phone, "customerName": c.name, "customerEmail": c.email}


def _pay(shop: Shop, c: Customer, phone: str) -> dict[str, Any]:
    extra = {"customerName": c.name, "customerEmail": c.email}
    answer = shop.initiate(phone, 1500, key=str(uuid.uuid4()), **extra)
    assert answer.status_code == 202, answer.text
    return shop.wait_final(answer.json()["paymentId"])


def _forge_callbacks(shop: Shop, payment: dict[str, Any], c: Customer) -> None:
    """Callbacks that are refused or distrusted, each naming the customer's payment."""
    checkout = payment["checkoutRequestId"]
    body = stk_callback(checkout, 0, receipt="FORGED0001", phone=int(f"254{c.national}"))
    url = "/api/payments/webhook"
    assert _post(shop, url, content=body).status_code == 200  # not on its token URL
    assert _post(shop, f"{url}/not-a-token", content=body).status_code == 403
    junk = f'{{"Body": "PhoneNumber {c.forms()[3]} {c.name}", "x": '.encode()
    assert _post(shop, url, content=junk).status_code == 400  # not even JSON
    quoted = body.replace(b'"ResultCode": 0', f'"ResultCode": "{c.forms()[3]}"'.encode())
    assert _post(shop, url, content=quoted).status_code == 400  # its reason quotes the value


def _refused_requests(shop: Shop, c: Customer) -> None:
    fields = _customer_fields(c, c.forms()[3])
    for body in (
        {**fields, "amount": 0, "productId": "p", "productName": "P"},  # amount out of range
        {**fields, "amount": "1500", "productId": "p", "productName": "P", "note": c.forms()[4]},
    ):
        answer = _post(shop, "/api/payments/initiate", json=body, headers=shop.auth)
        assert 400 <= answer.status_code < 500, answer.text
    broken = f'{{"phoneNumber": "{c.forms()[1]}", "customerEmail": "{c.email}",'.encode()
    answer = _post(shop, "/api/payments/initiate", content=broken,
                   headers={**shop.auth, "content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 400, answer.text


def _order(shop: Shop, c: Customer) -> dict[str, Any]:
    order = {
        "customerName": c.name, "customerEmail": c.email, "customerPhone": c.forms()[4],
        "deliveryAddress": f"Moi Avenue 12, Nairobi; ask for {c.name}",
        "notes": f"call {c.forms()[3]} or write {c.email}",
        "items": [{"productId": "set-01", "productName": "Chess set", "quantity": 1,
                   "unitPrice": 1500}],
    }  # fmt: skip
    created = _post(shop, "/api/orders", json=order, headers=shop.auth)
    assert created.status_code == 201, created.text
    token = {"Authorization": f"Bearer {created.json()['checkoutToken']}"}
    paid = _post(shop, "/api/payments/initiate", json={"phoneNumber": c.forms()[5]}, headers=token)
    assert paid.status_code == 202, paid.text
    return shop.wait_final(paid.json()["paymentId"])


def _pay_by_paybill(shop: Shop, c: Customer) -> None:
    """A PayBill confirmation as Daraja posts it, the payer's own number as the account."""
    first, middle, last = c.name.split()
    body = {
        "TransactionType": "Pay Bill", "TransID": "RDUMPC2B01", "TransTime": "20261130103000",
        "TransAmount": "900.00", "BusinessShortCode": "174379", "BillRefNumber": c.forms()[0],
        "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "",
        "MSISDN": f"254{c.national}", "FirstName": first, "MiddleName": middle, "LastName": last,
    }  # fmt: skip
    answer = _post(shop, "/api/payments/c2b/confirmation", content=json.dumps(body).encode())
    assert answer.status_code == 200, answer.text


def _dump(url: str) -> str:
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed for this test (PostgreSQL's client tools)"
    target = sa.make_url(url).set(drivername="postgresql")
    dumped = subprocess.run(
        [pg_dump, "--no-owner", target.render_as_string(hide_password=False)],
        capture_output=True, check=True, text=True, timeout=120,
    )  # fmt: skip
    return dumped.stdout


def _digits(national: str) -> re.Pattern[str]:
    """The 9 national digits, whatever separators a person put between them."""
    return re.compile(r"[\s\-.()/]*".join(national))


def test_a_dump_of_the_database_holds_no_customers_phone_name_or_email(
    shop: Shop, database: str
) -> None:
    paid = _pay(shop, PAYER, PAYER.forms()[3])
    cancelled = _pay(shop, CANCELLER, CANCELLER.forms()[4])
    _forge_callbacks(shop, paid, PAYER)
    _refused_requests(shop, REFUSED)
    ordered = _order(shop, ORDERER)
    _pay_by_paybill(shop, PAYBILL)
    assert (paid["status"], cancelled["status"], ordered["status"]) == (
        "completed", "cancelled", "completed",
    )  # fmt: skip
    engine = make_engine(database)

    def webhook_attempted() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM webhook_attempts")).scalar_one())

    # The shop's webhooks go out from a worker after the payments end: wait for them, so
    # that their attempts are in the dump too.
    services.wait_until(webhook_attempted, 60, 0.2, "a shop webhook attempt stored")
    with engine.connect() as conn:
        paybill = sa.text("SELECT count(*) FROM c2b_payments WHERE trans_id = 'RDUMPC2B01'")
        assert conn.execute(paybill).scalar_one() == 1
    engine.dispose()

    dump = _dump(database)

    leaks = [
        f"{c.name}'s {what} in {table}"
        for c in CUSTOMERS
        for what, pattern in (
            ("phone number", _digits(c.national)),
            ("e-mail", re.compile(re.escape(c.email), re.IGNORECASE)),
            *((f"name {p!r}", re.compile(re.escape(p), re.IGNORECASE)) for p in c.name.split()),
        )
        for table in _tables_holding(dump, pattern)
    ]
    assert not leaks, "\n".join(leaks)
    assert paid["mpesaReceiptNumber"] in dump  # the books stay readable
    assert "kp1:" in dump  # and the personal values are there, sealed


def _tables_holding(dump: str, pattern: re.Pattern[str]) -> list[str]:
    """The tables (COPY sections) of the dump in which `pattern` occurs."""
    sections = re.split(r"^COPY public\.(\w+) ", dump, flags=re.MULTILINE)
    found = ["schema" for _ in [0] if pattern.search(sections[0])]
    found += [name for name, rows in zip(sections[1::2], sections[2::2], strict=True)
              if pattern.search(rows)]  # fmt: skip
    return found

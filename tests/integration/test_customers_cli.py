"""`khalex-pay customers export|erase PHONE`: a customer sees all held, and can have it erased."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
import sqlalchemy as sa

from domain.events import Event
from domain.order import Status
from domain.payment import Change
from khalex_pay import cli
from payments import c2b, callbacks
from payments import orders as order_cases
from store import payments, refusals
from store.tables import (
    c2b_payments,
    callback_inbox,
    daraja_exchanges,
    payment_events,
    refused_requests,
)
from store.tables import payments as payments_table
from tests.factories import c2b_request, stk_callback
from tests.integration.conftest import Harness
from tests.integration.test_orders import new_order

PHONE, OTHER = "254712555101", "254712555202"


@pytest.fixture(autouse=True)
def env(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)
    monkeypatch.setenv("REDIS_URL", "")


def _paid(h: Harness, phone: str, receipt: str) -> str:
    p = h.pushed(phone)
    body = stk_callback(p.checkout_request_id or "", 0, receipt=receipt, phone=int(phone))
    received = callbacks.receive(
        h.container, body, source_ip="127.0.0.1", token=p.callback_token, headers={}
    )
    callbacks.process(h.container, received.inbox_id)
    return p.id


def _customer(h: Harness) -> tuple[str, str]:
    """A paid payment and a cancelled order of PHONE, a refused request naming the number."""
    payment_id = _paid(h, PHONE, "RCUST00001")
    order = order_cases.create(h.container, new_order(customer_phone=PHONE, notes="gate 4"))
    order_cases.move(h.container, order.order.id, Status.CANCELLED)
    with h.container.engine.begin() as conn:
        refusals.add(
            conn, path="/api/payments/initiate", status_code=422, code="invalid_amount",
            field="amount", reason="r", idempotency_key=None,
            body=b'{"amount": 0, "phoneNumber": "0712 555 101"}',
        )  # fmt: skip
    return payment_id, order.order.id


def _export(capsys: pytest.CaptureFixture[str], phone: str) -> dict[str, Any]:
    assert cli.main(["customers", "export", phone]) == 0
    held: dict[str, Any] = json.loads(capsys.readouterr().out)
    return held


def test_export_shows_everything_held_about_the_customer_unmasked(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id, order_id = _customer(h)
    _paid(h, OTHER, "ROTHER0001")

    held = _export(capsys, "0712 555 101")

    [payment] = held["payments"]
    assert (payment["id"], payment["phone_number"]) == (payment_id, PHONE)
    assert payment["customer_email"] == "wanjiru@example.com"
    assert [e["kind"] for e in payment["events"]][-1] == "completed"
    [order] = held["orders"]
    assert (order["id"], order["customer_phone"], order["notes"]) == (order_id, PHONE, "gate 4")
    assert any("254712555101" in c["body"] for c in held["callbacks"])
    assert held["darajaExchanges"][0]["request"] == {"PartyA": PHONE}
    assert len(held["refusedRequests"]) == 1
    assert OTHER not in json.dumps(held)


def test_erase_keeps_the_books_removes_the_person_and_leaves_an_event(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id, order_id = _customer(h)
    other = _paid(h, OTHER, "ROTHER0001")

    assert cli.main(["customers", "erase", PHONE]) == 0
    assert "erased: 1 payments, 1 orders" in capsys.readouterr().out

    after = h.get(payment_id)
    assert (after.amount, after.mpesa_receipt_number, after.status) == (1500, "RCUST00001",
                                                                        "completed")  # fmt: skip
    assert (after.phone_number, after.customer_name, after.customer_email) == ("[erased]",) * 3
    assert after.checkout_request_id is None
    assert h.get(other).phone_number == OTHER
    with h.container.engine.connect() as conn:
        kinds = conn.execute(
            sa.select(payment_events.c.kind).where(payment_events.c.payment_id == payment_id)
            .order_by(payment_events.c.id)
        ).scalars().all()  # fmt: skip
        stored = [
            *conn.execute(sa.select(callback_inbox.c.body)).scalars(),
            *conn.execute(sa.select(refused_requests.c.body)).scalars(),
            *map(json.dumps, conn.execute(sa.select(daraja_exchanges.c.request)).scalars()),
        ]
    assert kinds[-1] == "customer_erased"
    assert not any("555101" in s for s in map(_opened, stored))
    assert any("555202" in s for s in map(_opened, stored))  # the other customer's are kept
    again = _export(capsys, PHONE)
    assert (again["payments"], again["orders"]) == ([], [])  # nothing left to find by phone
    erased_order = order_cases.get(h.container, order_id)
    assert erased_order.order.customer_name == "[erased]"
    assert erased_order.order.total_amount > 0


def _opened(text: str) -> str:
    from store import raw

    return raw.open_personal(text) if text.startswith(("{", "kp1:")) else text


def test_erase_is_refused_in_one_line_while_a_payment_is_in_flight(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = h.pushed(PHONE)

    assert cli.main(["customers", "erase", PHONE]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"payment {pending.id} is still in flight" in err
    with h.container.engine.connect() as conn:
        kept = sa.select(sa.type_coerce(payments_table.c.phone_number, sa.Text))
        assert conn.execute(kept).scalar_one().startswith("kp1:")
    assert h.get(pending.id).phone_number == PHONE


def _paybill(h: Harness, receipt: str, msisdn: str) -> str:
    """A PayBill confirmation from `msisdn` (as Daraja sent it), received and processed."""
    body = c2b_request(receipt, bill_ref="0712555101", amount="700", msisdn=msisdn)
    answer = c2b.receive(
        h.container, "confirmation", body, source_ip="127.0.0.1", token=None, headers={}
    )
    assert answer.status_code == 200, answer.reason
    c2b.process(h.container, answer.record_id)
    return answer.record_id


def test_export_and_erase_include_paybill_payments_sent_with_the_number_not_a_digest(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _paybill(h, "RPAYBILL01", PHONE)
    digest = _paybill(h, "RPAYBILL02", hashlib.sha256(PHONE.encode()).hexdigest())  # C2B v2
    _paybill(h, "RPAYBILL03", OTHER)

    [paybill] = _export(capsys, "0712 555 101")["paybillPayments"]

    assert (paybill["id"], paybill["trans_id"], paybill["amount"]) == (found, "RPAYBILL01", 700)
    assert json.loads(paybill["body"])["MSISDN"] == PHONE
    assert json.loads(paybill["body"])["LastName"] == "KAMAU"
    assert paybill["bill_ref_number"] == "0712555101"
    assert digest != found  # a digest cannot be found by phone: documented, not exported

    assert cli.main(["customers", "erase", PHONE]) == 0
    assert "1 PayBill payments" in capsys.readouterr().out
    with h.container.engine.connect() as conn:
        rows = {r.trans_id: r for r in conn.execute(sa.select(c2b_payments)).all()}
    erased = rows["RPAYBILL01"]
    assert (erased.amount, erased.phone_index, erased.bill_ref_number) == (700, None, "[erased]")
    assert "KAMAU" not in _opened(erased.body)
    assert PHONE not in _opened(erased.body)
    assert "KAMAU" in _opened(rows["RPAYBILL03"].body)  # the other customer's are kept
    assert _export(capsys, PHONE)["paybillPayments"] == []


def test_a_change_decided_before_an_erasure_cannot_write_the_number_back(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # A late callback's job read the payment, then the customer was erased: its
    # compare-and-set must fail (and decide again on the erased row), not write back the
    # CheckoutRequestID, which ends with the payer's number.
    payment_id = _paid(h, PHONE, "RCUST00001")
    before = h.get(payment_id)
    assert cli.main(["customers", "erase", PHONE]) == 0
    capsys.readouterr()
    paid = before.to_domain()
    late = Change(paid, dataclasses.replace(paid, result_desc="late"), Event("late_probe"))

    with h.container.engine.begin() as conn, pytest.raises(payments.Conflict):
        payments.apply(conn, before, late)

    assert h.get(payment_id).checkout_request_id is None

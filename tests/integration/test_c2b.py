"""PayBill (C2B) payments on the real PostgreSQL: stored at the door, matched to orders once."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from prometheus_client.core import CollectorRegistry

from api.app import create_app
from daraja.wire import QueryResult
from domain import paybill
from operations import alerts, metrics, retention
from operations.metrics import DatabaseCollector
from operations.operator_tokens import issue_token
from payments import c2b, orders, reconciliation
from payments.container import Container
from store import c2b as c2b_store
from store import orders as orders_store
from store import raw
from store.db import utcnow
from store.tables import c2b_payments, webhook_events
from tests.factories import c2b_request
from tests.integration.conftest import Harness
from tests.integration.test_orders import TOTAL, _order, _paid_callback, _pay_pushed, new_order

pytestmark = pytest.mark.integration

SAFARICOM = "196.201.214.200"
SECRET = "c2b-Secret_0123456789abcdefXYZ"


def _confirm(c: Container, body: bytes, *, token: str | None = None, ip: str = SAFARICOM) -> str:
    """Receive a confirmation and run its job, as the API and a worker would."""
    answer = c2b.receive(c, "confirmation", body, source_ip=ip, token=token, headers={})
    assert answer.status_code == 200, answer.reason
    c2b.process(c, answer.record_id)
    return answer.record_id


def _record(h: Harness, record_id: str) -> c2b_store.C2bRecord:
    with h.container.engine.connect() as conn:
        record = c2b_store.get(conn, record_id)
    assert record is not None
    return record


def _new_order(h: Harness) -> tuple[str, str]:
    order_id = orders.create(h.container, new_order()).order.id
    return order_id, paybill.account_reference(order_id)


# Matching ----------------------------------------------------------------------------------


def test_a_confirmation_of_the_orders_reference_and_total_confirms_the_order(h: Harness) -> None:
    order_id, ref = _new_order(h)

    record_id = _confirm(h.container, c2b_request("RCP0000001", bill_ref=ref, amount="3200.00"))

    record = _record(h, record_id)
    assert (record.state, record.order_id, record.trans_id) == ("matched", order_id, "RCP0000001")
    order = _order(h, order_id)
    assert (order.status, order.paid_by_payment_id, order.refund_due) == (
        "confirmed", record_id, False,
    )  # fmt: skip
    with h.container.engine.connect() as conn:
        events = orders_store.events(conn, order_id)
    assert events[-1]["data"] == {
        "from": "pending", "paymentId": record_id, "amount": TOTAL, "via": "paybill",
        "receipt": "RCP0000001",
    }  # fmt: skip


def test_a_reference_typed_in_lower_case_with_spaces_still_matches(h: Harness) -> None:
    order_id, ref = _new_order(h)
    typed = f"{ref[:6].lower()} {ref[6:]}"

    record_id = _confirm(h.container, c2b_request(bill_ref=typed, amount="3200"))

    assert _record(h, record_id).state == "matched"
    assert _order(h, order_id).status == "confirmed"


def test_an_unknown_reference_is_kept_unmatched_and_alerted(h: Harness) -> None:
    record_id = _confirm(h.container, c2b_request("RCP0000002", bill_ref="KP0123456789"))

    record = _record(h, record_id)
    assert (record.state, record.reason) == ("unmatched", "no order has this account reference")
    raised = alerts.run(h.container)
    paybill_alerts = [a for a in raised if a.kind == alerts.PAYBILL_UNMATCHED]
    assert [a.details["receipt"] for a in paybill_alerts] == ["RCP0000002"]
    assert not [a for a in alerts.run(h.container)
                if a.kind == alerts.PAYBILL_UNMATCHED]  # fmt: skip


def test_a_reference_that_is_not_an_orders_is_unmatched(h: Harness) -> None:
    record_id = _confirm(h.container, c2b_request(bill_ref="KhalexChess"))

    record = _record(h, record_id)
    assert (record.state, record.reason) == (
        "unmatched", "BillRefNumber is not an order's account reference",
    )  # fmt: skip


def test_a_wrong_amount_never_confirms_and_is_a_refund_due_on_the_order(h: Harness) -> None:
    order_id, ref = _new_order(h)

    record_id = _confirm(h.container, c2b_request(bill_ref=ref, amount="3000.00"))

    record = _record(h, record_id)
    assert (record.state, record.reason, record.order_id) == (
        "refund_due",
        "amount_differs",
        order_id,
    )
    order = _order(h, order_id)
    assert (order.status, order.refund_due, order.refund_payment_ids) == (
        "pending", True, [record_id],
    )  # fmt: skip
    raised = alerts.run(h.container)
    refund = [a for a in raised if a.kind == alerts.REFUND_DUE]
    assert [(a.details["paymentId"], a.details["receipt"]) for a in refund] == [
        (record_id, "UKL7N8PQ2R")
    ]


def test_an_amount_with_cents_never_matches(h: Harness) -> None:
    order_id, ref = _new_order(h)

    record_id = _confirm(h.container, c2b_request(bill_ref=ref, amount="3200.50"))

    assert _record(h, record_id).state == "unmatched"
    assert _order(h, order_id).status == "pending"


def test_paying_an_order_already_paid_is_a_refund_due(h: Harness) -> None:
    order_id, ref = _new_order(h)
    _confirm(h.container, c2b_request("RCP0000010", bill_ref=ref, amount="3200"))

    second = _confirm(h.container, c2b_request("RCP0000011", bill_ref=ref, amount="3200"))

    assert (_record(h, second).state, _record(h, second).reason) == ("refund_due", "already_paid")
    assert _order(h, order_id).refund_payment_ids == [second]


# Duplicates ----------------------------------------------------------------------------------


def test_a_second_confirmation_of_one_receipt_is_a_duplicate_counted_once(h: Harness) -> None:
    order_id, ref = _new_order(h)
    body = c2b_request("RCP0000020", bill_ref=ref, amount="3200")
    first = _confirm(h.container, body)

    second = _confirm(h.container, body)

    assert _record(h, second).state == "duplicate"
    assert _order(h, order_id).paid_by_payment_id == first
    assert not _order(h, order_id).refund_due


def test_running_a_confirmations_job_again_changes_nothing(h: Harness) -> None:
    order_id, ref = _new_order(h)
    record_id = _confirm(h.container, c2b_request(bill_ref=ref, amount="3200"))
    before = _record(h, record_id)

    c2b.process(h.container, record_id)

    assert _record(h, record_id) == before
    assert _order(h, order_id).version == 1


def test_a_confirmation_of_an_stk_payments_receipt_is_recorded_not_counted(h: Harness) -> None:
    order_id, ref = _new_order(h)
    payment_id = _pay_pushed(h, order_id)
    _paid_callback(h, payment_id, receipt="RCP0000030")

    record_id = _confirm(h.container, c2b_request("RCP0000030", bill_ref=ref, amount="3200"))

    record = _record(h, record_id)
    assert (record.state, record.payment_id, record.order_id) == ("duplicate", payment_id, order_id)
    order = _order(h, order_id)
    assert (order.paid_by_payment_id, order.refund_due) == (payment_id, False)


def test_an_stk_callback_after_its_paybill_twin_does_not_count_the_money_twice(
    h: Harness,
) -> None:
    order_id, ref = _new_order(h)
    payment_id = _pay_pushed(h, order_id)
    record_id = _confirm(h.container, c2b_request("RCP0000040", bill_ref=ref, amount="3200"))
    assert _order(h, order_id).status == "confirmed"

    _paid_callback(h, payment_id, receipt="RCP0000040")

    assert h.get(payment_id).status == "completed"
    record = _record(h, record_id)
    assert (record.state, record.payment_id) == ("duplicate", payment_id)
    order = _order(h, order_id)
    assert (order.paid_by_payment_id, order.refund_due) == (record_id, False)


def test_an_unmatched_twin_of_an_stk_payment_is_resolved_by_its_callback(h: Harness) -> None:
    payment_id = h.pushed(amount=1500).id
    record_id = _confirm(h.container, c2b_request("RCP0000050", bill_ref="KhalexChess"))
    assert _record(h, record_id).state == "unmatched"

    _paid_callback(h, payment_id, amount=1500, receipt="RCP0000050")

    assert _record(h, record_id).state == "duplicate"


def test_an_unmatched_twin_is_resolved_by_the_receipt_that_follows_a_query_completion(
    h: Harness,
) -> None:
    payment_id = h.pushed(amount=1500).id
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))
    reconciliation.query_payment(h.container, payment_id)
    assert (h.get(payment_id).status, h.get(payment_id).receipt_pending) == ("completed", True)
    record_id = _confirm(h.container, c2b_request("RCP0000060", bill_ref="KhalexChess"))
    assert _record(h, record_id).state == "unmatched"

    _paid_callback(h, payment_id, amount=1500, receipt="RCP0000060")

    assert h.get(payment_id).mpesa_receipt_number == "RCP0000060"
    record = _record(h, record_id)
    assert (record.state, record.payment_id) == ("duplicate", payment_id)


# The door -------------------------------------------------------------------------------------


def _only_from_safaricom(h: Harness, **changes: Any) -> Container:
    settings = h.container.settings
    allowed = (ipaddress.ip_network("196.201.214.0/24"),)
    h.container.settings = dataclasses.replace(
        settings, mpesa_callback_allowed_ips=allowed, **changes
    )
    return h.container


def test_a_confirmation_from_an_unlisted_address_is_stored_rejected_and_refused(
    h: Harness,
) -> None:
    c = _only_from_safaricom(h)
    order_id, ref = _new_order(h)

    answer = c2b.receive(c, "confirmation", c2b_request(bill_ref=ref, amount="3200"),
                         source_ip="203.0.113.9", token=None, headers={})  # fmt: skip

    assert answer.status_code == 403
    record = _record(h, answer.record_id)
    assert record.state == "rejected"
    assert "allow-list" in (record.reason or "")
    assert '"TransID": "UKL7N8PQ2R"' in record.body
    assert h.published == []
    assert _order(h, order_id).status == "pending"


def test_with_a_secret_only_the_secret_url_is_applied(h: Harness) -> None:
    c = _only_from_safaricom(h, c2b_url_secret=SECRET)
    order_id, ref = _new_order(h)
    body = c2b_request(bill_ref=ref, amount="3200")

    wrong = c2b.receive(c, "confirmation", body, source_ip=SAFARICOM, token="guess", headers={})
    bare = c2b.receive(c, "confirmation", body, source_ip=SAFARICOM, token=None, headers={})

    asked = c2b.receive(c, "validation", body, source_ip=SAFARICOM, token=None, headers={})

    assert wrong.status_code == 403
    assert (bare.status_code, _record(h, bare.record_id).state) == (200, "untrusted")
    assert (asked.status_code, _record(h, asked.record_id).state) == (403, "rejected")
    assert _order(h, order_id).status == "pending"
    raised = alerts.run(h.container)
    assert [a.details["c2bId"] for a in raised if a.kind == alerts.PAYBILL_UNMATCHED] == [
        bare.record_id
    ]
    good = _confirm(c, body, token=SECRET)
    assert _record(h, good).state == "matched"


def test_a_body_that_is_not_a_c2b_request_is_stored_and_answered_400(h: Harness) -> None:
    answer = c2b.receive(h.container, "confirmation", b'{"TransID": ""}', source_ip=SAFARICOM,
                         token=None, headers={})  # fmt: skip

    assert answer.status_code == 400
    assert _record(h, answer.record_id).body == '{"TransID": ""}'


# Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ref_of", "expected"),
    [
        ("3200.00", "order", {"ResultCode": 0, "ResultDesc": "Accepted"}),
        ("3000.00", "order", {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}),
        ("3200.00", "nobody", {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}),
        ("999.00", "shop", {"ResultCode": 0, "ResultDesc": "Accepted"}),
    ],
)
def test_validation_declines_only_what_cannot_pay_an_order(
    h: Harness, amount: str, ref_of: str, expected: dict[str, object]
) -> None:
    _, ref = _new_order(h)
    bill_ref = {"order": ref, "nobody": "KP0000000000", "shop": "KhalexChess"}[ref_of]

    answer = c2b.receive(h.container, "validation", c2b_request(bill_ref=bill_ref, amount=amount),
                         source_ip=SAFARICOM, token=None, headers={})  # fmt: skip

    assert (answer.status_code, answer.body) == (200, expected)
    record = _record(h, answer.record_id)
    assert record.state == ("accepted" if expected["ResultCode"] == 0 else "declined")
    assert h.published == []


def test_validation_of_a_paid_order_is_declined(h: Harness) -> None:
    _, ref = _new_order(h)
    _confirm(h.container, c2b_request("RCP0000060", bill_ref=ref, amount="3200"))

    answer = c2b.receive(h.container, "validation", c2b_request(bill_ref=ref, amount="3200"),
                         source_ip=SAFARICOM, token=None, headers={})  # fmt: skip

    assert answer.body["ResultCode"] == "C2B00012"
    assert _record(h, answer.record_id).reason == "order_paid"


# Over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(h.container)) as test_client:
        yield test_client


def test_the_confirmation_url_answers_daraja_and_logs_no_payer(
    h: Harness, client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = c2b_request("RCP0000070", bill_ref="KP0000000000", msisdn="254712345678",
                       first_name="NJERI")  # fmt: skip

    answer = client.post("/api/payments/c2b/confirmation", content=body,
                         headers={"content-type": "text/plain"})  # fmt: skip

    assert (answer.status_code, answer.json()) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
    with h.container.engine.connect() as conn:
        row = conn.execute(sa.select(c2b_payments)).one()._mapping
    # Kept under its own key, sealed at rest (the row read through the store opens it).
    assert json.loads(raw.open_personal(row["body"]))["MSISDN"] == "254712345678"
    for personal in ("254712345678", "NJERI"):
        assert personal not in repr(dict(row))
        assert personal not in caplog.text
    assert [job.actor for job in h.published] == ["process_c2b"]


def test_operators_see_unmatched_paybill_payments(h: Harness, client: TestClient[Any]) -> None:
    _confirm(h.container, c2b_request("RCP0000080", bill_ref="KP0000000000"))
    _, ref = _new_order(h)
    _confirm(h.container, c2b_request("RCP0000081", bill_ref=ref, amount="3200"))
    ops = {"Authorization": f"Bearer {issue_token(h.container.settings.jwt_secret)}"}

    unmatched = client.get("/api/ops/paybill", headers=ops).json()
    matched = client.get("/api/ops/paybill?state=matched", headers=ops).json()

    assert [p["receipt"] for p in unmatched["payments"]] == ["RCP0000080"]
    assert [p["receipt"] for p in matched["payments"]] == ["RCP0000081"]
    assert "MSISDN" not in json.dumps(unmatched)
    assert client.get("/api/ops/paybill").status_code == 401
    assert client.get("/api/ops/paybill?state=nope", headers=ops).status_code == 400


def test_retention_purges_validations_and_keeps_confirmations_that_carried_money(
    h: Harness,
) -> None:

    _, ref = _new_order(h)
    validation = c2b.receive(h.container, "validation", c2b_request(bill_ref=ref, amount="3200"),
                             source_ip=SAFARICOM, token=None, headers={})  # fmt: skip
    matched = _confirm(h.container, c2b_request(bill_ref=ref, amount="3200"))
    with h.container.engine.begin() as conn:
        conn.execute(c2b_payments.update().values(received_at=utcnow() - timedelta(days=91)))

    assert retention.purge(h.container)["c2b_payments"] == 1

    with h.container.engine.connect() as conn:
        assert c2b_store.get(conn, validation.record_id) is None
        assert c2b_store.get(conn, matched) is not None


def test_the_order_and_the_shops_webhook_show_the_paybill_payment_and_its_receipt(
    h: Harness, client: TestClient[Any]
) -> None:
    h.container.settings = dataclasses.replace(
        h.container.settings, shop_webhook_url="https://shop.example/hooks"
    )
    order_id, ref = _new_order(h)
    record_id = _confirm(h.container, c2b_request("RCP0000090", bill_ref=ref, amount="3200"))
    ops = {"Authorization": f"Bearer {issue_token(h.container.settings.jwt_secret)}"}

    order = client.get(f"/api/orders/{order_id}", headers=ops).json()

    assert (order["status"], order["paymentId"], order["payments"]) == ("confirmed", record_id, [])
    assert [(p["id"], p["receipt"], p["amount"], p["state"]) for p in order["paybillPayments"]] == [
        (record_id, "RCP0000090", TOTAL, "matched")
    ]
    with h.container.engine.connect() as conn:
        payloads = [row.payload for row in conn.execute(sa.select(webhook_events))]
    confirmed = [p["data"] for p in payloads if p["type"] == "order.confirmed"]
    assert confirmed == [{
        "orderId": order_id, "status": "confirmed", "totalAmount": TOTAL, "currency": "KES",
        "paymentId": record_id, "refundDue": False, "refundPaymentIds": [],
        "paidVia": "paybill", "receipt": "RCP0000090",
    }]  # fmt: skip


def test_two_workers_settling_one_receipt_at_once_count_it_once(h: Harness) -> None:
    order_id, ref = _new_order(h)
    body = c2b_request("RCP0000100", bill_ref=ref, amount="3200")
    first, second = (
        c2b.receive(h.container, "confirmation", body, source_ip=SAFARICOM, token=None,
                    headers={}).record_id
        for _ in range(2)
    )  # fmt: skip
    c2b.process(h.container, first)
    real_counted = c2b_store.counted
    # The second worker looked for a counted receipt before the first committed: it saw none.
    looks = iter([None])

    def counted_late(conn: sa.Connection, trans_id: str) -> Any:
        return next(looks, real_counted(conn, trans_id))

    with mock.patch.object(c2b_store, "counted", side_effect=counted_late):
        c2b.process(h.container, second)

    assert (_record(h, first).state, _record(h, second).state) == ("matched", "duplicate")
    order = _order(h, order_id)
    assert (order.paid_by_payment_id, order.refund_due, order.version) == (first, False, 1)


def test_metrics_count_paybill_confirmations_by_state(h: Harness) -> None:
    _, ref = _new_order(h)
    _confirm(h.container, c2b_request("RCP0000110", bill_ref=ref, amount="3200"))
    _confirm(h.container, c2b_request("RCP0000110", bill_ref=ref, amount="3200"))
    _confirm(h.container, c2b_request("RCP0000111", bill_ref="nobody"))
    c2b.receive(h.container, "validation", c2b_request(bill_ref=ref), source_ip=SAFARICOM,
                token=None, headers={})  # fmt: skip
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(h.container.engine))

    counts = {
        s.labels["state"]: s.value
        for family in registry.collect() if family.name == "khalex_paybill_confirmations"
        for s in family.samples
    }  # fmt: skip

    assert counts == {"received": 0, "matched": 1, "refund_due": 0, "unmatched": 1,
                      "duplicate": 1}  # fmt: skip


def _paybill_counts(h: Harness) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(h.container.engine))
    return {
        s.labels["state"]: s.value
        for family in registry.collect() if family.name == "khalex_paybill_confirmations"
        for s in family.samples
    }  # fmt: skip


def test_paybill_figures_survive_a_fold_and_fall_when_rows_are_purged(h: Harness) -> None:
    _, ref = _new_order(h)
    _confirm(h.container, c2b_request("RCP0000112", bill_ref=ref, amount="3200"))
    gone = _confirm(h.container, c2b_request("RCP0000113", bill_ref="nobody"))
    _confirm(h.container, c2b_request("RCP0000114", bill_ref="nobody either"))
    before = _paybill_counts(h)

    metrics.fold(h.container.engine)
    folded = _paybill_counts(h)
    with h.container.engine.begin() as conn:  # what the retention purge does to an old row
        conn.execute(sa.delete(c2b_payments).where(c2b_payments.c.id == gone))

    assert folded == before
    assert (before["matched"], before["unmatched"]) == (1, 2)
    assert (_paybill_counts(h)["matched"], _paybill_counts(h)["unmatched"]) == (1, 1)


# An operator's hand ---------------------------------------------------------------------------


def test_an_operator_assigns_a_mistyped_payment_to_its_order(h: Harness) -> None:
    order_id, _ = _new_order(h)
    record_id = _confirm(h.container, c2b_request("RCP0000120", bill_ref="KP 1A2B", amount="3200"))

    state, reason = c2b.assign(h.container, record_id, order_id)

    assert (state, reason) == ("matched", "assigned by an operator")
    assert _order(h, order_id).paid_by_payment_id == record_id
    with pytest.raises(c2b.NotAssignable, match="it is matched"):
        c2b.assign(h.container, record_id, order_id)


def test_an_untrusted_payment_checked_by_an_operator_pays_its_order(h: Harness) -> None:
    c = h.container
    c.settings = dataclasses.replace(c.settings, c2b_url_secret=SECRET)
    order_id, ref = _new_order(h)
    untrusted = c2b.receive(c, "confirmation", c2b_request(bill_ref=ref, amount="3200"),
                            source_ip=SAFARICOM, token=None, headers={}).record_id  # fmt: skip

    assert c2b.assign(c, untrusted, order_id)[0] == "matched"
    assert _order(h, order_id).status == "confirmed"


def test_assigning_checks_the_order_and_the_amount(h: Harness) -> None:
    order_id, _ = _new_order(h)
    cents = _confirm(h.container, c2b_request("RCP0000130", bill_ref="x", amount="3200.50"))
    whole = _confirm(h.container, c2b_request("RCP0000131", bill_ref="x", amount="3200"))

    with pytest.raises(c2b.NotAssignable, match="cents"):
        c2b.assign(h.container, cents, order_id)
    with pytest.raises(c2b.NotAssignable, match="no order"):
        c2b.assign(h.container, whole, "5f0c7a3e-0000-4000-8000-000000000000")
    assert _record(h, whole).state == "unmatched"

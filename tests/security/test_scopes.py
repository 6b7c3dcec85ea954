"""A checkout token reaches only its own order: everything else looks as if it did not exist.

No answer to a checkout token carries Daraja's ids (the CheckoutRequestID ends with the
customer's MSISDN), and a 409 never names a payment the caller may not read.
"""

from __future__ import annotations

import pytest

from api.checkout_tokens import mint
from domain.order import Item
from operations.operator_tokens import issue_token
from payments import initiation, orders
from store.payments import PaymentRecord
from tests.integration.conftest import Harness, new_payment, shop_key
from tests.integration.test_orders import new_order
from tests.security.conftest import BODY, App, bearer, counts

pytestmark = pytest.mark.integration


@pytest.fixture
def two(h: Harness) -> tuple[str, str]:
    """Two orders of the shop's, each owing BODY's amount: (A, B)."""
    board = (Item("board-01", "Tournament chess board", 1, BODY["amount"]),)
    made = [
        orders.create(h.container, new_order(items=board, delivery_fee=0,
                                             total_amount=BODY["amount"]))
        for _ in range(2)
    ]  # fmt: skip
    return made[0].order.id, made[1].order.id


def _pushed(h: Harness, phone: str, order_id: str | None) -> PaymentRecord:
    payment_id = initiation.initiate(h.container, new_payment(phone, order_id=order_id)).payment.id
    initiation.send_push(h.container, payment_id)
    return h.get(payment_id)


def _token(h: Harness, order_id: str) -> dict[str, str]:
    return bearer(mint(h.container.settings.jwt_secret, order_id))


def test_a_checkout_token_reads_its_orders_payment_without_daraja_ids(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, _ = two
    mine = _pushed(h, "254712000001", order_a)

    answer = app().get(f"/api/payments/status/{mine.id}", headers=_token(h, order_a))

    assert answer.status_code == 200
    assert answer.json()["paymentId"] == mine.id
    assert answer.json()["checkoutRequestId"] is None
    assert answer.json()["merchantRequestId"] is None
    assert (mine.checkout_request_id or "x") not in answer.text


def test_the_shop_server_and_operators_see_daraja_ids(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, _ = two
    client = app()
    mine = _pushed(h, "254712000001", order_a)
    operator = bearer(issue_token(h.container.settings.jwt_secret, "ops", 1))

    for headers in (bearer(shop_key(h)), operator):
        answer = client.get(f"/api/payments/status/{mine.id}", headers=headers)
        assert answer.json()["checkoutRequestId"] == mine.checkout_request_id
        assert answer.json()["merchantRequestId"] == mine.merchant_request_id


def test_reading_another_orders_payment_is_the_same_404_as_an_unknown_one(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, order_b = two
    client = app()
    theirs = _pushed(h, "254712000002", order_b)
    no_order = _pushed(h, "254712000003", None)

    answers = [
        client.get(f"/api/payments/status/{ref}", headers=_token(h, order_a))
        for ref in (theirs.id, no_order.id, "00000000-0000-4000-8000-000000000000")
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.text for a in answers}) == 1  # nothing tells them apart


def test_a_checkout_token_cannot_look_a_payment_up_by_its_checkout_request_id(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, _ = two
    client = app()
    mine = _pushed(h, "254712000004", order_a)
    ref = mine.checkout_request_id

    as_token = client.get(f"/api/payments/status/{ref}", headers=_token(h, order_a))
    as_shop = client.get(f"/api/payments/status/{ref}", headers=bearer(shop_key(h)))

    assert as_token.status_code == 404
    assert as_shop.json()["paymentId"] == mine.id


def test_a_checkout_token_initiates_only_for_its_own_order(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, order_b = two
    client = app()

    other = client.post(
        "/api/payments/initiate", json={**BODY, "orderId": order_b}, headers=_token(h, order_a)
    )
    written = counts(h)[:2]
    # Without an orderId, a checkout token pays its own order.
    own = client.post("/api/payments/initiate", json=BODY, headers=_token(h, order_a))

    assert (other.status_code, other.json()["error"]["code"]) == (404, "order_not_found")
    assert written == (0, 0)
    assert own.status_code == 202
    assert own.json()["orderId"] == order_a
    assert own.json()["checkoutRequestId"] is None


def test_a_409_names_the_busy_payment_only_to_callers_who_may_read_it(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, order_b = two
    client = app()
    busy = _pushed(h, "254712345678", order_a)  # BODY's phone, in flight

    def conflict(headers: dict[str, str], order_id: str) -> dict[str, object]:
        answer = client.post(
            "/api/payments/initiate", json={**BODY, "orderId": order_id}, headers=headers
        )
        assert answer.status_code == 409
        error: dict[str, object] = answer.json()["error"]
        assert error["code"] == "payment_in_progress"
        return error

    stranger = conflict(_token(h, order_b), order_b)
    owner = conflict(_token(h, order_a), order_a)
    shop = conflict(bearer(shop_key(h)), order_b)

    assert stranger["paymentId"] is None
    assert busy.id not in str(stranger)
    assert owner["paymentId"] == busy.id
    assert shop["paymentId"] == busy.id


def test_an_idempotency_key_never_hands_another_callers_payment_over(
    h: Harness, app: App, two: tuple[str, str]
) -> None:
    order_a, order_b = two
    client = app()
    body = {**BODY, "orderId": order_a}
    first = client.post(
        "/api/payments/initiate", json=body, headers={**bearer(shop_key(h)), "Idempotency-Key": "k"}
    )
    other_body = {**body, "orderId": order_b}
    replay = client.post(
        "/api/payments/initiate",
        json=other_body,
        headers={**_token(h, order_b), "Idempotency-Key": "k"},
    )

    assert first.status_code == 202
    assert replay.status_code == 409
    assert first.json()["paymentId"] not in replay.text

"""The order endpoints and paying an order through initiate, over HTTP on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api import checkout_tokens
from api.app import create_app
from operations.operator_tokens import issue_token
from payments import initiation
from store import api_keys
from store.tables import refused_requests
from tests.integration.conftest import Harness
from tests.integration.test_orders import _paid_callback

pytestmark = pytest.mark.integration

ORDER: dict[str, Any] = {
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
    "customerPhone": "0712 345 678",
    "deliveryAddress": "Moi Avenue, Nairobi",
    "items": [
        {"productId": "set-01", "productName": "Chess set", "quantity": 2, "unitPrice": 1500},
        {"productId": "clock-01", "productName": "Clock", "quantity": 1, "unitPrice": 100},
    ],
    "deliveryFee": 100,
    "notes": "Ring twice",
}
TOTAL = 3200


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(h.container)) as test_client:
        yield test_client


@pytest.fixture
def shop(h: Harness) -> dict[str, str]:
    with h.container.engine.begin() as conn:
        _, key = api_keys.create(conn, "shop server")
    return {"Authorization": f"Bearer {key}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code
    return error


def _create(client: TestClient[Any], shop: dict[str, str], **changes: Any) -> dict[str, Any]:
    answer = client.post("/api/orders", json={**ORDER, **changes}, headers=shop)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_create_answers_201_with_server_side_total_location_masked_phone_and_token(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    answer = client.post("/api/orders", json={**ORDER, "totalAmount": TOTAL}, headers=shop)

    assert answer.status_code == 201
    order = answer.json()
    assert answer.headers["location"] == f"/api/orders/{order['orderId']}"
    assert (order["status"], order["totalAmount"], order["currency"]) == ("pending", TOTAL, "KES")
    assert order["customerPhone"] == "2547****5678"
    assert (order["paymentId"], order["payments"], order["refundDue"]) == (None, [], False)
    claims = checkout_tokens.verify(h.container.settings.jwt_secret, order["checkoutToken"])
    assert claims.order_id == order["orderId"]


def test_same_idempotency_key_same_order_and_another_body_is_409(
    client: TestClient[Any], shop: dict[str, str]
) -> None:
    headers = {**shop, "Idempotency-Key": "ord-1"}
    first = client.post("/api/orders", json=ORDER, headers=headers)
    again = client.post("/api/orders", json=ORDER, headers=headers)
    other = client.post("/api/orders", json={**ORDER, "notes": "other"}, headers=headers)

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["orderId"] == first.json()["orderId"]
    _error(other, 409, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"items": []}, "invalid_field", "items"),
        ({"items": None}, "missing_field", "items"),
        ({"items": [{"productId": "a", "productName": "A", "quantity": 0, "unitPrice": 1}]},
         "invalid_quantity", "items[0].quantity"),
        ({"items": [{"productId": "a", "productName": "A", "quantity": 1, "unitPrice": 1.5}]},
         "invalid_amount", "items[0].unitPrice"),
        ({"items": [{"productName": "A", "quantity": 1, "unitPrice": 1}]},
         "missing_field", "items[0].productId"),
        ({"items": [{"productId": "a", "productName": "A", "quantity": 3, "unitPrice": 100000}]},
         "invalid_amount", "items"),
        ({"deliveryFee": -1}, "invalid_amount", "deliveryFee"),
        ({"customerPhone": "020 123 4567"}, "invalid_phone_number", "customerPhone"),
        ({"customerName": None}, "missing_field", "customerName"),
        ({"customerEmail": "nope"}, "invalid_email", "customerEmail"),
        ({"totalAmount": 1}, "total_mismatch", "totalAmount"),
    ],
)  # fmt: skip
def test_an_invalid_order_is_422_naming_the_field(
    client: TestClient[Any], shop: dict[str, str], changes: dict[str, Any], code: str, field: str
) -> None:
    answer = client.post("/api/orders", json={**ORDER, **changes}, headers=shop)

    assert _error(answer, 422, code)["field"] == field


def test_orders_need_credentials_and_a_checkout_token_reads_only_its_own_order(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    mine = _create(client, shop)
    other = _create(client, shop, notes="another")
    page = _bearer(mine["checkoutToken"])

    _error(client.post("/api/orders", json=ORDER), 401, "unauthenticated")
    own = client.get(f"/api/orders/{mine['orderId']}", headers=page)
    assert own.status_code == 200
    assert own.json()["customerName"] is None  # the browser sees nothing that identifies
    assert own.json()["customerEmail"] == "w***@example.com"
    _error(client.get(f"/api/orders/{other['orderId']}", headers=page), 404, "order_not_found")
    _error(client.post("/api/orders", json=ORDER, headers=page), 404, "not_found")
    _error(client.get("/api/orders", headers=page), 404, "not_found")
    moved = client.post(
        f"/api/orders/{mine['orderId']}/status", json={"status": "cancelled"}, headers=page
    )
    _error(moved, 404, "order_not_found")


def test_list_pages_newest_first_with_a_status_filter(
    client: TestClient[Any], shop: dict[str, str]
) -> None:
    made = [_create(client, shop, notes=f"n{n}")["orderId"] for n in range(3)]
    client.post(f"/api/orders/{made[0]}/status", json={"status": "cancelled"}, headers=shop)

    first = client.get("/api/orders?limit=2", headers=shop).json()
    second = client.get(f"/api/orders?limit=2&cursor={first['nextCursor']}", headers=shop).json()
    cancelled = client.get("/api/orders?status=cancelled", headers=shop).json()

    assert [o["orderId"] for o in first["orders"] + second["orders"]] == made[::-1]
    assert second["nextCursor"] is None
    assert [o["orderId"] for o in cancelled["orders"]] == [made[0]]
    _error(client.get("/api/orders?status=lost", headers=shop), 422, "invalid_field")
    _error(client.get("/api/orders?cursor=zzz", headers=shop), 422, "invalid_cursor")
    _error(client.get("/api/orders?limit=0", headers=shop), 422, "invalid_field")


def test_moves_follow_the_state_machine_for_the_shop_and_operators(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    order_id = _create(client, shop)["orderId"]
    operator = _bearer(issue_token(h.container.settings.jwt_secret, "ops", 1))

    shipped = client.post(
        f"/api/orders/{order_id}/status", json={"status": "shipped"}, headers=shop
    )
    cancelled = client.post(
        f"/api/orders/{order_id}/status", json={"status": "cancelled"}, headers=operator
    )

    assert _error(shipped, 409, "invalid_transition")["currentStatus"] == "pending"
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    confirmed = client.post(
        f"/api/orders/{order_id}/status", json={"status": "confirmed"}, headers=shop
    )
    _error(confirmed, 422, "invalid_field")
    unknown = client.post(
        "/api/orders/0b5d3c47-3a39-4a61-9f1c-7e54b2e2a000/status",
        json={"status": "cancelled"}, headers=shop,
    )  # fmt: skip
    _error(unknown, 404, "order_not_found")


# Paying an order ----------------------------------------------------------------------------


def test_the_page_pays_its_order_with_just_the_phone_and_the_order_is_confirmed(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    order = _create(client, shop)
    page = _bearer(order["checkoutToken"])

    answer = client.post("/api/payments/initiate", json={"phoneNumber": "0712345678"}, headers=page)
    assert answer.status_code == 202, answer.text
    payment = answer.json()
    assert (payment["amount"], payment["orderId"]) == (TOTAL, order["orderId"])
    initiation.send_push(h.container, payment["paymentId"])
    _paid_callback(h, payment["paymentId"])

    seen = client.get(f"/api/orders/{order['orderId']}", headers=page).json()
    assert (seen["status"], seen["paymentId"]) == ("confirmed", payment["paymentId"])
    assert seen["payments"] == [payment["paymentId"]]
    again = client.post(
        "/api/payments/initiate", json={"orderId": order["orderId"], "phoneNumber": "0712345678"},
        headers=page,
    )  # fmt: skip
    _error(again, 409, "order_already_paid")


def test_paying_an_order_refuses_another_amount_a_busy_order_and_unknown_or_foreign_orders(
    client: TestClient[Any], shop: dict[str, str]
) -> None:
    order = _create(client, shop)
    other = _create(client, shop, notes="other")
    page = _bearer(order["checkoutToken"])
    body = {"orderId": order["orderId"], "phoneNumber": "0712345678"}

    mismatch = client.post("/api/payments/initiate", json={**body, "amount": 1}, headers=page)
    first = client.post("/api/payments/initiate", json=body, headers=page)
    busy = client.post(
        "/api/payments/initiate", json={**body, "phoneNumber": "0722000000"}, headers=shop
    )
    foreign = client.post(
        "/api/payments/initiate", json={**body, "orderId": other["orderId"]}, headers=page
    )
    unknown = client.post(
        "/api/payments/initiate",
        json={**body, "orderId": "0b5d3c47-3a39-4a61-9f1c-7e54b2e2a000"}, headers=shop,
    )  # fmt: skip
    anonymous = client.post("/api/payments/initiate", json=body)

    assert _error(mismatch, 409, "amount_mismatch")["totalAmount"] == TOTAL
    assert first.status_code == 202
    assert _error(busy, 409, "payment_in_progress")["paymentId"] == first.json()["paymentId"]
    assert busy.headers["retry-after"]
    _error(foreign, 404, "order_not_found")
    _error(unknown, 404, "order_not_found")
    _error(anonymous, 401, "unauthenticated")


def test_a_cancelled_order_takes_no_payment(client: TestClient[Any], shop: dict[str, str]) -> None:
    order = _create(client, shop)
    client.post(
        f"/api/orders/{order['orderId']}/status", json={"status": "cancelled"}, headers=shop
    )

    answer = client.post(
        "/api/payments/initiate", json={"orderId": order["orderId"], "phoneNumber": "0712345678"},
        headers=shop,
    )  # fmt: skip

    _error(answer, 409, "order_cancelled")


def test_operators_see_orders_with_a_refund_due(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    order = _create(client, shop)
    _create(client, shop, notes="unpaid, owes nothing")
    page = _bearer(order["checkoutToken"])
    payment_id = client.post(
        "/api/payments/initiate", json={"phoneNumber": "0712345678"}, headers=page
    ).json()["paymentId"]
    initiation.send_push(h.container, payment_id)
    client.post(
        f"/api/orders/{order['orderId']}/status", json={"status": "cancelled"}, headers=shop
    )
    _paid_callback(h, payment_id)  # the customer paid after the shop cancelled
    operator = _bearer(issue_token(h.container.settings.jwt_secret, "ops", 1))

    answer = client.get("/api/ops/refunds-due", headers=operator)
    seen = client.get(f"/api/orders/{order['orderId']}", headers=shop).json()

    assert answer.status_code == 200
    assert [(o["orderId"], o["refundPaymentIds"]) for o in answer.json()["orders"]] == [
        (order["orderId"], [payment_id])
    ]
    assert (seen["status"], seen["refundDue"], seen["paymentId"]) == ("cancelled", True, None)
    assert client.get("/api/ops/refunds-due", headers=shop).status_code in {401, 403}


def test_a_refused_order_request_is_kept_with_its_reason(
    h: Harness, client: TestClient[Any], shop: dict[str, str]
) -> None:
    bad = {**ORDER, "items": [{**ORDER["items"][0], "quantity": 0}]}

    answer = client.post("/api/orders", json=bad, headers={**shop, "Idempotency-Key": "o-1"})
    moved = client.post(
        f"/api/orders/{_create(client, shop)['orderId']}/status",
        json={"status": "teleported"},
        headers=shop,
    )

    assert answer.status_code == 422
    assert moved.status_code == 422
    with h.container.engine.connect() as conn:
        kept = conn.execute(
            sa.select(refused_requests.c.path, refused_requests.c.code, refused_requests.c.field,
                      refused_requests.c.idempotency_key).order_by(refused_requests.c.id)
        ).all()  # fmt: skip
    assert [(path, code) for path, code, _, _ in kept] == [
        ("/api/orders", answer.json()["error"]["code"]),
        (moved.request.url.path, moved.json()["error"]["code"]),
    ]
    assert kept[0][2] == answer.json()["error"]["field"]
    assert kept[0][3] == "o-1"

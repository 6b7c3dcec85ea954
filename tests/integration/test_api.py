"""The HTTP API over the real PostgreSQL: answers, status codes and the error envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from operations.operator_tokens import issue_token
from payments import initiation
from store import inbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, as_shop

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {
    "amount": 1500,
    "phoneNumber": "0712-345 678",
    "productId": "board-01",
    "productName": "Tournament chess board",
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
}


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(h.container)) as test_client:
        yield as_shop(test_client, h)


def _error(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error"}
    assert {"code", "message", "field"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_initiate_answers_202_pending_with_location_and_masked_phone(
    client: TestClient[Any],
) -> None:
    answer = client.post("/api/payments/initiate", json=BODY)

    assert answer.status_code == 202
    payment = answer.json()
    assert payment["status"] == "pending"
    assert payment["phoneNumber"] == "2547****5678"
    assert payment["currency"] == "KES"
    assert "customerEmail" not in payment
    assert answer.headers["location"] == f"/api/payments/status/{payment['paymentId']}"


def test_status_finds_a_payment_by_id_and_unknown_refs_are_404(client: TestClient[Any]) -> None:
    payment_id = client.post("/api/payments/initiate", json=BODY).json()["paymentId"]

    assert client.get(f"/api/payments/status/{payment_id}").json()["paymentId"] == payment_id
    missing = client.get("/api/payments/status/ws_CO_NOPE")
    assert missing.status_code == 404
    assert _error(missing)["code"] == "payment_not_found"


def test_malformed_json_is_400_in_the_envelope(client: TestClient[Any]) -> None:
    answer = client.post(
        "/api/payments/initiate",
        content=b"{amount: 1",
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 400
    assert _error(answer)["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"amount": 10.5}, "invalid_amount", "amount"),
        ({"amount": 0}, "invalid_amount", "amount"),
        ({"amount": 250_001}, "invalid_amount", "amount"),
        ({"amount": "1500"}, "invalid_amount", "amount"),
        ({"amount": None}, "invalid_amount", "amount"),
        ({"phoneNumber": "0812345678"}, "invalid_phone_number", "phoneNumber"),
        ({"phoneNumber": "+255712345678"}, "invalid_phone_number", "phoneNumber"),
        ({"phoneNumber": 712345678}, "invalid_phone_number", "phoneNumber"),
        ({"productId": ""}, "invalid_field", "productId"),
        ({"productName": 5}, "invalid_field", "productName"),
        ({"customerEmail": "not-an-email"}, "invalid_email", "customerEmail"),
        ({"orderId": "x" * 65}, "invalid_field", "orderId"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient[Any], change: dict[str, Any], code: str, field: str
) -> None:
    answer = client.post("/api/payments/initiate", json={**BODY, **change})

    assert answer.status_code == 422
    error = _error(answer)
    assert (error["code"], error["field"]) == (code, field)


@pytest.mark.parametrize("missing", ["amount", "phoneNumber", "productId", "customerName"])
def test_missing_fields_are_422_naming_the_field(client: TestClient[Any], missing: str) -> None:
    body = {k: v for k, v in BODY.items() if k != missing}

    answer = client.post("/api/payments/initiate", json=body)

    assert answer.status_code == 422
    assert (_error(answer)["code"], _error(answer)["field"]) == ("missing_field", missing)


def test_second_initiate_for_a_busy_phone_is_409_with_retry_after(client: TestClient[Any]) -> None:
    first = client.post("/api/payments/initiate", json=BODY).json()

    answer = client.post("/api/payments/initiate", json={**BODY, "amount": 20})

    assert answer.status_code == 409
    error = _error(answer)
    assert (error["code"], error["paymentId"]) == ("payment_in_progress", first["paymentId"])
    assert int(answer.headers["retry-after"]) > 0


def test_idempotency_key_replays_and_refuses_another_body(client: TestClient[Any]) -> None:
    headers = {"Idempotency-Key": "order-77-attempt-1"}
    first = client.post("/api/payments/initiate", json=BODY, headers=headers)
    again = client.post("/api/payments/initiate", json=BODY, headers=headers)
    other = client.post("/api/payments/initiate", json={**BODY, "amount": 9}, headers=headers)

    assert again.status_code == 202
    assert again.json()["paymentId"] == first.json()["paymentId"]
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 409
    assert _error(other)["code"] == "idempotency_key_reused"


def test_webhook_stores_and_accepts_a_callback(client: TestClient[Any], h: Harness) -> None:
    payment_id = client.post("/api/payments/initiate", json=BODY).json()["paymentId"]
    initiation.send_push(h.container, payment_id)
    checkout = client.get(f"/api/payments/status/{payment_id}").json()["checkoutRequestId"]

    answer = client.post("/api/payments/webhook", content=stk_callback(checkout))

    assert answer.status_code == 200
    assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert client.get(f"/api/payments/status/{checkout}").json()["paymentId"] == payment_id


def test_webhook_with_a_body_that_is_not_a_callback_is_stored_and_400(
    client: TestClient[Any], h: Harness
) -> None:
    answer = client.post("/api/payments/webhook", content=b'{"hello": "world"}')

    assert answer.status_code == 400
    error = _error(answer)
    assert error["code"] == "invalid_callback"
    with h.container.engine.connect() as conn:
        row = inbox.get(conn, error["inboxId"])
    assert row is not None
    assert row.state == inbox.REJECTED


def test_webhook_with_an_unknown_token_is_403(client: TestClient[Any]) -> None:
    answer = client.post("/api/payments/webhook/not-a-token", content=stk_callback("ws_CO_1"))

    assert answer.status_code == 403
    assert _error(answer)["code"] == "callback_refused"


def test_unknown_route_is_404_in_the_envelope(client: TestClient[Any]) -> None:
    answer = client.get("/api/nothing-here")

    assert answer.status_code == 404
    assert _error(answer)["code"] == "not_found"


def test_health_live_and_ready(client: TestClient[Any]) -> None:
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "failed": []}


def test_openapi_schema_is_served(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()

    assert "/api/payments/initiate" in schema["paths"]


def test_database_down_answers_503_with_the_shops_phone_line(h: Harness) -> None:
    from payments.container import Container
    from store.db import make_engine

    dead = Container(
        h.container.settings,
        make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere"),
        h.published.append,
    )
    with TestClient(app=create_app(dead)) as down:
        # The key cannot even be looked up: the answer is still the shop's phone line.
        answer = down.post(
            "/api/payments/initiate", json=BODY, headers={"Authorization": "Bearer kp_any"}
        )
        status = down.get(
            "/api/payments/status/00000000-0000-4000-8000-000000000000",
            headers={"Authorization": f"Bearer {issue_token(h.container.settings.jwt_secret)}"},
        )
        ready = down.get("/health/ready")

    assert answer.status_code == 503
    error = _error(answer)
    assert error["code"] == "payments_unavailable"
    assert error["contact"] == h.container.settings.shop_contact
    assert answer.headers["retry-after"] == "30"
    assert (ready.status_code, ready.json()["failed"]) == (503, ["database"])
    assert (status.status_code, _error(status)["code"]) == (503, "payments_unavailable")


def test_refused_requests_are_kept_with_their_reason(client: TestClient[Any], h: Harness) -> None:
    from store import refusals

    client.post(
        "/api/payments/initiate", content=b"{amount: 1",
        headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
    )  # fmt: skip
    client.post("/api/payments/initiate", json={**BODY, "amount": 0})
    client.post("/api/payments/initiate", json=BODY)
    client.post("/api/payments/initiate", json={**BODY, "amount": 9})  # phone busy

    with h.container.engine.connect() as conn:
        kept = refusals.latest(conn)
    assert [(r["status_code"], r["code"], r["field"]) for r in reversed(kept)] == [
        (400, "malformed_json", None),
        (422, "invalid_amount", "amount"),
        (409, "payment_in_progress", "phoneNumber"),
    ]
    assert kept[-1]["body"] == "{amount: 1"
    assert kept[-1]["idempotency_key"] == "k1"

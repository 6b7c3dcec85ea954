"""Every endpoint's real answers are what `/schema/openapi.json` documents, on PostgreSQL.

Each answer is held to its documented schema twice: the JSON Schema in the document (with
jsonschema_rs), and the Struct of api/answers.py the document names, decoded with unknown
fields forbidden and encoded again to the same JSON. So a field the handler sends but the
document lacks, or the reverse, or a type that differs, fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api import answers, checkout_tokens
from api.app import create_app
from api.openapi_docs import INVALID_PHONE
from domain import paybill
from operations.dlq import DeadLetter, QueueStats
from operations.operator_tokens import issue_token
from payments import c2b, initiation
from store import deliveries
from store.tables import webhook_events
from tests.factories import c2b_request, stk_callback
from tests.integration.conftest import Harness, shop_key
from tests.integration.test_orders import _paid_callback
from tests.integration.test_orders_api import ORDER

pytestmark = pytest.mark.integration

#: Every answer Struct, by the component name the document gives it.
STRUCTS = {struct.__name__: struct for struct in answers.EXAMPLES} | {
    "Live": answers.Live,
    "ErrorEnvelope": answers.ErrorEnvelope,
}
C2B = "/api/payments/c2b"
C2B_SECRET = "c2b-Secret_0123456789abcdefXYZ"
JSON = {"content-type": "application/json"}
PAYMENT_BODY: dict[str, Any] = {
    "amount": 1500,
    "phoneNumber": "0712345678",
    "productId": "board-01",
    "productName": "Tournament chess board",
    "customerName": "Wanjiru Kamau",
    "customerEmail": "wanjiru@example.com",
}


class OneQueue:
    """A broker with one waiting message and one dead letter."""

    queues: tuple[str, ...] = ("payments",)

    def stats(self) -> list[QueueStats]:
        return [QueueStats("payments", depth=1, delayed=0, dead_lettered=1, oldest_age_s=2.5)]

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        when = datetime(2026, 11, 30, 6, 12, tzinfo=UTC)
        return [DeadLetter("payments", "1-0", "m-1", "send_push", ["p-1", 3], when, 5, "boom")]


@dataclasses.dataclass
class Api:
    client: TestClient[Any]
    document: dict[str, Any]
    shop: dict[str, str]
    operator: dict[str, str]

    def conforms(self, answer: Any, path: str, method: str = "get") -> Any:
        """`answer`'s JSON, once held to what the document says `path` answers with its status."""
        status = str(answer.status_code)
        documented = self.document["paths"][path][method]["responses"]
        assert status in documented, f"{method} {path} answered an undocumented {status}"
        schema = documented[status]["content"]["application/json"]["schema"]
        body = answer.json()
        jsonschema_rs.validator_for({**schema, "components": self.document["components"]}).validate(
            body
        )
        struct = STRUCTS[schema["$ref"].rpartition("/")[2]]
        decoded = msgspec.convert(body, struct, strict=True)
        if struct is not answers.ErrorEnvelope:  # errors may add keys they do not all carry
            assert msgspec.to_builtins(decoded) == body
        return body


@pytest.fixture
def api(h: Harness) -> Iterator[Api]:
    h.container.settings = dataclasses.replace(h.container.settings, reconcile_after_s=0)
    app = create_app(h.container, queues=OneQueue())
    with TestClient(app=app) as client:
        secret = h.container.settings.jwt_secret
        yield Api(
            client,
            client.get("/schema/openapi.json").json(),
            {"Authorization": f"Bearer {shop_key(h)}"},
            {"Authorization": f"Bearer {issue_token(secret, 'ops', hours=1)}"},
        )


def test_payment_answers_are_the_documented_payment(api: Api, h: Harness) -> None:
    started = api.client.post("/api/payments/initiate", json=PAYMENT_BODY, headers=api.shop)
    pending = api.conforms(started, "/api/payments/initiate", "post")
    initiation.send_push(h.container, pending["paymentId"])
    _paid_callback(h, pending["paymentId"], amount=1500)
    status = api.client.get(f"/api/payments/status/{pending['paymentId']}", headers=api.shop)

    assert api.conforms(status, "/api/payments/status/{ref}")["status"] == "completed"


def test_a_payments_events_carry_the_documented_payment(api: Api, h: Harness) -> None:
    record = h.pushed()
    _paid_callback(h, record.id, amount=1500)  # final: the stream ends after its first event

    stream = api.client.get(f"/api/payments/{record.id}/events", headers=api.shop)
    data = [line.removeprefix("data:").strip() for line in stream.text.splitlines()
            if line.startswith("data:")]  # fmt: skip

    assert stream.headers["content-type"].startswith("text/event-stream")
    sent = msgspec.json.decode(data[0])
    assert msgspec.to_builtins(msgspec.convert(sent, answers.Payment, strict=True)) == sent
    assert sent["status"] == "completed"


def test_order_answers_are_the_documented_orders(api: Api) -> None:
    created = api.conforms(
        api.client.post("/api/orders", json=ORDER, headers=api.shop), "/api/orders", "post"
    )
    order_id = created["orderId"]
    page = {"Authorization": f"Bearer {created['checkoutToken']}"}

    api.conforms(
        api.client.get(f"/api/orders/{order_id}", headers=api.shop), "/api/orders/{order_id}"
    )
    api.conforms(api.client.get(f"/api/orders/{order_id}", headers=page), "/api/orders/{order_id}")
    listed = api.client.get("/api/orders?limit=1", headers=api.shop)
    moved = api.client.post(
        f"/api/orders/{order_id}/status", json={"status": "cancelled"}, headers=api.shop
    )
    paid = api.client.post(
        "/api/payments/initiate", json={"orderId": order_id, "phoneNumber": "0712345678"},
        headers=page,
    )  # fmt: skip

    assert api.conforms(listed, "/api/orders")["orders"][0]["orderId"] == order_id
    assert api.conforms(moved, "/api/orders/{order_id}/status", "post")["status"] == "cancelled"
    assert (
        api.conforms(paid, "/api/payments/initiate", "post")["error"]["code"] == "order_cancelled"
    )


def test_config_health_and_callback_answers_are_documented(api: Api, h: Harness) -> None:
    token = checkout_tokens.mint(h.container.settings.jwt_secret, "0b6e2f4c-8d1a")
    record = h.pushed()
    callback = api.client.post(
        f"/api/payments/webhook/{record.callback_token}",
        content=stk_callback(record.checkout_request_id or "", amount=1500),
    )

    for caller in (api.shop, {"Authorization": f"Bearer {token}"}):
        api.conforms(api.client.get("/api/payments/config", headers=caller), "/api/payments/config")
    api.conforms(api.client.get("/health/live"), "/health/live")
    api.conforms(api.client.get("/health/ready"), "/health/ready")
    assert api.conforms(callback, "/api/payments/webhook/{token}", "post")["ResultCode"] == 0


def test_paybill_urls_answer_the_documented_ack_or_envelope(api: Api, h: Harness) -> None:
    h.container.settings = dataclasses.replace(h.container.settings, c2b_url_secret=C2B_SECRET)
    order = api.client.post("/api/orders", json=ORDER, headers=api.shop).json()
    ref = paybill.account_reference(order["orderId"])
    paying = c2b_request("TKU5R2MN8Q", bill_ref=ref, amount=f"{order['totalAmount']}.00")
    short = c2b_request(bill_ref=ref, amount="1.00")

    def post(path: str, body: bytes) -> Any:
        return api.client.post(f"{C2B}/{path}", content=body, headers=JSON)

    declined = post(f"validation/{C2B_SECRET}", short)
    accepted = post(f"validation/{C2B_SECRET}", paying)
    confirmed = post(f"confirmation/{C2B_SECRET}", paying)
    untrusted = post("confirmation", paying)  # kept for an operator, acknowledged
    bare = post("validation", paying)  # with a secret set, only the secret URL is answered
    malformed = post(f"confirmation/{C2B_SECRET}", b"[]")

    assert api.conforms(declined, f"{C2B}/validation/{{secret}}", "post") == (
        answers.C2B_DECLINED_EXAMPLE
    )
    for answer, kind in ((accepted, "validation"), (confirmed, "confirmation")):
        assert api.conforms(answer, f"{C2B}/{kind}/{{secret}}", "post") == (
            answers.C2B_ACCEPTED_EXAMPLE
        )
    assert api.conforms(untrusted, f"{C2B}/confirmation", "post")["ResultCode"] == 0
    refused = api.conforms(bare, f"{C2B}/validation", "post")["error"]
    unreadable = api.conforms(malformed, f"{C2B}/confirmation/{{secret}}", "post")["error"]
    assert (bare.status_code, refused["code"]) == (403, "callback_refused")
    assert (malformed.status_code, unreadable["code"]) == (400, "invalid_callback")
    for error in (refused, unreadable):  # the stored request's id, a documented key
        detail = msgspec.convert({"error": error}, answers.ErrorEnvelope).error
        assert detail.c2b_id == error["c2bId"]


def test_an_order_paid_by_paybill_and_its_webhook_are_documented(api: Api, h: Harness) -> None:
    h.container.settings = dataclasses.replace(
        h.container.settings, shop_webhook_url="https://shop.example/hooks"
    )
    order = api.client.post("/api/orders", json=ORDER, headers=api.shop).json()
    body = c2b_request(
        "TKU5R2MN8Q", bill_ref=paybill.account_reference(order["orderId"]),
        amount=str(order["totalAmount"]),
    )  # fmt: skip
    api.client.post(f"{C2B}/confirmation", content=body, headers=JSON)
    (job,) = [job for job in h.published if job.actor == "process_c2b"]
    c2b.process(h.container, job.args[0])

    read = api.client.get(f"/api/orders/{order['orderId']}", headers=api.shop)
    paid = api.conforms(read, "/api/orders/{order_id}")
    page = api.conforms(api.client.get("/api/orders", headers=api.shop), "/api/orders")
    with h.container.engine.connect() as conn:
        events = [row.payload for row in conn.execute(sa.select(webhook_events))]
    (confirmed,) = [e for e in events if e["type"] == "order.confirmed"]

    assert paid["status"] == "confirmed"
    assert [p["id"] for p in paid["paybillPayments"]] == [paid["paymentId"]]
    assert paid["paybillPayments"][0]["receipt"] == "TKU5R2MN8Q"
    assert page["orders"][0]["paybillPayments"] == paid["paybillPayments"]
    event = msgspec.convert(confirmed, answers.OrderEvent, strict=True)
    assert msgspec.to_builtins(event) == confirmed
    assert (event.data.paid_via, event.data.receipt) == ("paybill", "TKU5R2MN8Q")


def test_the_operators_paybill_list_is_documented(api: Api, h: Harness) -> None:
    unmatched = c2b_request("TKU6S3NP9R", bill_ref="KP0000000000", amount="4500.00")
    api.client.post(f"{C2B}/confirmation", content=unmatched, headers=JSON)
    for job in h.published:
        if job.actor == "process_c2b":
            c2b.process(h.container, job.args[0])

    listed = api.client.get("/api/ops/paybill", headers=api.operator)
    declined = api.client.get("/api/ops/paybill?state=declined&limit=5", headers=api.operator)
    bad_state = api.client.get("/api/ops/paybill?state=lost", headers=api.operator)

    payments = api.conforms(listed, "/api/ops/paybill")["payments"]
    assert [(p["receipt"], p["state"]) for p in payments] == [("TKU6S3NP9R", "unmatched")]
    assert api.conforms(declined, "/api/ops/paybill") == {"count": 0, "payments": []}
    assert api.conforms(bad_state, "/api/ops/paybill")["error"]["code"] == "invalid_state"


def _refund_due(api: Api, h: Harness) -> str:
    """An order the shop cancelled and the customer paid after: it owes a refund."""
    order = api.client.post("/api/orders", json=ORDER, headers=api.shop).json()
    page = {"Authorization": f"Bearer {order['checkoutToken']}"}
    payment_id = api.client.post(
        "/api/payments/initiate", json={"phoneNumber": "0722123456"}, headers=page
    ).json()["paymentId"]
    initiation.send_push(h.container, payment_id)
    api.client.post(
        f"/api/orders/{order['orderId']}/status", json={"status": "cancelled"}, headers=api.shop
    )
    _paid_callback(h, payment_id, amount=order["totalAmount"])
    return str(order["orderId"])


def test_operator_answers_are_documented(api: Api, h: Harness) -> None:
    h.pushed()  # stuck at once: RECONCILE_AFTER_S is 0 here
    owing = _refund_due(api, h)
    with h.container.engine.begin() as conn:
        deliveries.started(conn, "m-2", "payments", "send_push", ["p-2"])
        deliveries.dead_lettered(conn, "m-2", "started 5 times")
    ops = {
        path: api.client.get(f"/api/ops/{path}", headers=api.operator)
        for path in ("queues", "summary", "stuck", "refunds-due", "dead-letters")
    }

    for path, answer in ops.items():
        assert answer.status_code == 200, answer.text
        api.conforms(answer, f"/api/ops/{path}")
    assert api.conforms(ops["stuck"], "/api/ops/stuck")["count"] == 1
    assert api.conforms(ops["dead-letters"], "/api/ops/dead-letters")["deliveries"]
    assert [o["orderId"] for o in ops["refunds-due"].json()["orders"]] == [owing]


def test_refused_requests_answer_the_documented_error_envelope(api: Api) -> None:
    bad_limit = api.client.get("/api/ops/refunds-due?limit=zero", headers=api.operator)
    bad_phone = api.client.post(
        "/api/payments/initiate",
        json={**PAYMENT_BODY, "phoneNumber": "0812345678"},
        headers=api.shop,
    )
    missing = api.client.get("/api/orders/no-such-order", headers=api.shop)

    assert api.conforms(bad_limit, "/api/ops/refunds-due")["error"] == {
        "code": "invalid_parameter",
        "message": "limit is not valid: Expected `int`, got `str`.",
        "field": "limit",
    }
    # The document's own 422 example is this very answer.
    assert api.conforms(bad_phone, "/api/payments/initiate", "post")["error"] == {
        "code": "invalid_phone_number",
        "message": INVALID_PHONE,
        "field": "phoneNumber",
    }
    assert api.conforms(missing, "/api/orders/{order_id}")["error"]["code"] == "order_not_found"


@pytest.mark.parametrize(
    ("struct", "example"),
    [(struct, example) for struct, examples in answers.EXAMPLES.items() for example in examples],
)
def test_every_documented_example_is_an_answer_of_its_struct(
    struct: type[msgspec.Struct], example: dict[str, object]
) -> None:
    assert msgspec.to_builtins(msgspec.convert(example, struct, strict=True)) == example

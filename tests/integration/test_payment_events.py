"""`GET /api/payments/{id}/events` over the real PostgreSQL: changes as server-sent events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api import events
from api.app import create_app
from payments import callbacks, initiation
from tests.factories import stk_callback
from tests.integration.conftest import Harness, shop_key
from tests.integration.test_orders_api import ORDER

pytestmark = pytest.mark.integration


@pytest.fixture
def client(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient[Any]]:
    monkeypatch.setattr(events, "POLL_S", 0.1)
    with TestClient(app=create_app(h.container)) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _order(client: TestClient[Any], h: Harness, notes: str = "") -> dict[str, Any]:
    answer = client.post("/api/orders", json={**ORDER, "notes": notes or None},
                         headers=_bearer(shop_key(h)))  # fmt: skip
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _pay(client: TestClient[Any], token: str) -> str:
    answer = client.post(
        "/api/payments/initiate", json={"phoneNumber": "0712345678"}, headers=_bearer(token)
    )
    assert answer.status_code == 202, answer.text
    payment_id: str = answer.json()["paymentId"]
    return payment_id


def _parse(stream: str) -> list[tuple[str, str]]:
    """(kind, text) per SSE block: ("payment", data) or ("comment", text)."""
    blocks = []
    for block in stream.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            blocks.append((fields["event"], fields["data"]))
        elif "" in fields:
            blocks.append(("comment", fields[""]))
    return blocks


def test_events_follow_the_payment_until_it_is_completed_then_end(
    client: TestClient[Any], h: Harness
) -> None:
    token = _order(client, h)["checkoutToken"]
    payment_id = _pay(client, token)
    initiation.send_push(h.container, payment_id)
    pushed = h.get(payment_id)

    def pay() -> None:
        body = stk_callback(pushed.checkout_request_id or "", amount=pushed.amount)
        received = callbacks.receive(
            h.container, body, source_ip="196.201.214.200",
            token=pushed.callback_token, headers={},
        )  # fmt: skip
        callbacks.process(h.container, received.inbox_id)

    timer = threading.Timer(0.5, pay)
    timer.start()
    answer = client.get(f"/api/payments/{payment_id}/events", headers=_bearer(token))
    timer.join()

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    sent = [json.loads(data) for kind, data in _parse(answer.text) if kind == "payment"]
    assert [(p["status"], p["nextAction"]) for p in sent] == [
        ("pending", "wait_for_pin"),
        ("completed", "none"),
    ]
    assert sent[0]["pollAfterMs"] > 0
    assert sent[-1]["pollAfterMs"] == 0
    assert sent[-1]["mpesaReceiptNumber"] == "UJ22T8IYOU"
    assert sent[-1]["phoneNumber"] == "2547****5678"


def test_a_final_payment_sends_one_event_and_ends(client: TestClient[Any], h: Harness) -> None:
    p = h.pushed()
    cancelled = stk_callback(p.checkout_request_id or "", 1032)
    received = callbacks.receive(
        h.container, cancelled, source_ip="196.201.214.200", token=p.callback_token, headers={}
    )
    callbacks.process(h.container, received.inbox_id)

    answer = client.get(f"/api/payments/{p.id}/events", headers=_bearer(shop_key(h)))

    sent = [json.loads(data) for kind, data in _parse(answer.text) if kind == "payment"]
    assert [(s["status"], s["nextAction"]) for s in sent] == [("cancelled", "retry")]


def test_a_heartbeat_comment_is_sent_while_waiting(
    client: TestClient[Any], h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(events, "MAX_STREAM_S", 1.0)  # ends the stream of a payment still open
    p = h.pushed()

    answer = client.get(f"/api/payments/{p.id}/events", headers=_bearer(shop_key(h)))

    kinds = [kind for kind, _ in _parse(answer.text)]
    assert kinds[0] == "payment"
    assert "comment" in kinds[1:]
    assert kinds.count("payment") == 1


def test_another_orders_checkout_token_gets_404_and_no_credentials_401(
    client: TestClient[Any], h: Harness
) -> None:
    mine = _order(client, h)["checkoutToken"]
    other = _order(client, h, notes="another")["checkoutToken"]
    payment_id = _pay(client, mine)

    stranger = client.get(f"/api/payments/{payment_id}/events", headers=_bearer(other))
    anonymous = client.get(f"/api/payments/{payment_id}/events")

    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "payment_not_found"
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"

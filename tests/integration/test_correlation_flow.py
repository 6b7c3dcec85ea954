"""Whole payments through the real API, outbox, Dramatiq (in-process) and worker threads.

The correlation id a shop sends follows its payment to every log line and job; and no log
line or Sentry event of the whole flow carries a customer's phone number or e-mail.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
import sentry_sdk
import sqlalchemy as sa
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from litestar.testing import TestClient

from api.app import create_app
from payments.container import Container
from payments.jobs import QUEUES, SEND_PUSH
from plumbing.logs import MaskingJsonFormatter
from plumbing.observability import init_sentry
from store.tables import outbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, as_shop
from workers import actors
from workers.broker import build_broker, publisher

pytestmark = pytest.mark.integration

#: Every form of the customers' numbers and their e-mails: none may appear anywhere.
RAW = (
    "254712345678", "0712345678", "0712 345 678", "712345678",
    "254798765432", "0798765432", "0798-765-432", "798765432",
    "wanjiru@example.com", "otieno@example.com",
)  # fmt: skip


def _body(phone: str, email: str) -> dict[str, Any]:
    return {
        "amount": 1500, "phoneNumber": phone, "productId": "board-01",
        "productName": "Tournament chess board", "customerName": "Wanjiru",
        "customerEmail": email,
    }  # fmt: skip


class Lines(logging.Handler):
    """Every log line as the processes write it (the real JSON formatter)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(MaskingJsonFormatter("flow"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


class Options(Middleware):
    """Keeps the options of each message a worker takes."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.seen.append((message.actor_name, tuple(message.args), dict(message.options)))


class Envelopes(sentry_sdk.transport.Transport):
    sent: list[str] = []  # noqa: RUF012 - reset by the fixture

    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            Envelopes.sent.append(item.payload.get_bytes().decode("utf-8", "replace"))


@dataclass
class Flow:
    h: Harness
    client: TestClient[Any]
    broker: StubBroker
    options: Options
    logs: Lines

    def join(self) -> None:
        for queue in QUEUES:
            self.broker.join(queue, fail_fast=False, timeout=20_000)


@pytest.fixture
def flow(h: Harness) -> Iterator[Flow]:
    Envelopes.sent = []
    settings = dataclasses.replace(h.container.settings, sentry_dsn="http://public@127.0.0.1:9/1")
    init_sentry(settings, "flow", transport=Envelopes)  # before the broker and the app
    broker = build_broker(settings, in_process=True)
    assert isinstance(broker, StubBroker)
    options = Options()
    broker.add_middleware(options)
    container = Container(settings, h.container.engine, publisher(broker), daraja=h.daraja)
    actors.bind(container)
    registered = actors.register(broker, expiry_s=settings.payment_expiry_s)
    # Retry a failed push after milliseconds, not seconds: the test waits for the queue.
    registered[SEND_PUSH.actor].options.update(min_backoff=10, max_backoff=50)
    logs, root = Lines(), logging.getLogger()
    root.addHandler(logs)
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not `.level =`: loggers cache what is enabled
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        with TestClient(app=create_app(container)) as client:
            yield Flow(h, as_shop(client, h), broker, options, logs)
    finally:
        worker.stop()
        root.removeHandler(logs)
        root.setLevel(level)
        sentry_sdk.get_client().close()
        # Back to no DSN and no integrations: a bare init() would switch on Sentry's
        # Litestar integration, which answers malformed JSON with a 500 in later tests.
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)
        actors.bind(h.container)


def _pay(flow: Flow, phone: str, email: str, request_id: str | None = None) -> dict[str, Any]:
    headers = {"X-Request-ID": request_id} if request_id else {}
    answer = flow.client.post("/api/payments/initiate", json=_body(phone, email), headers=headers)
    assert answer.status_code == 202
    flow.join()
    payment: dict[str, Any] = flow.client.get(answer.headers["location"]).json()
    return {**payment, "requestId": answer.headers["x-request-id"]}


def _callback(flow: Flow, payment: dict[str, Any], token: str) -> None:
    body = stk_callback(payment["checkoutRequestId"], phone=254712345678)
    answer = flow.client.post(
        f"/api/payments/webhook/{token}", content=body,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 200
    flow.join()


def _token(flow: Flow, payment_id: str) -> str:
    with flow.h.container.engine.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT callback_token FROM payments WHERE id = :id"), {"id": payment_id}
            ).scalar_one()
        )


def test_correlation_id_follows_a_payment_from_request_to_the_workers_log_line(
    flow: Flow,
) -> None:
    payment = _pay(flow, "0712 345 678", "wanjiru@example.com", request_id="shop-order-1001")
    pid = payment["paymentId"]

    assert payment["requestId"] == "shop-order-1001"
    api_lines = [
        line for line in flow.logs.parsed()
        if line["logger"] == "payments.initiation" and pid in line["msg"]
    ]  # fmt: skip
    assert [line["correlation_id"] for line in api_lines] == ["shop-order-1001"]
    with flow.h.container.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.actor, outbox.c.args, outbox.c.correlation_id))
        assert [(r.actor, r.correlation_id) for r in rows if r.args == [pid]] == [
            (SEND_PUSH.actor, "shop-order-1001")
        ]
    assert [o["correlation_id"] for actor, args, o in flow.options.seen if args == (pid,)] == [
        "shop-order-1001"
    ]
    worker_lines = [line for line in flow.logs.parsed() if line.get("job") == SEND_PUSH.actor]
    assert [(line["payment_id"], line["correlation_id"]) for line in worker_lines] == [
        (pid, "shop-order-1001")
    ]


def test_a_whole_payment_flow_leaves_no_phone_number_or_email_in_logs_or_sentry(
    flow: Flow,
) -> None:
    paid = _pay(flow, "0712 345 678", "wanjiru@example.com")
    _callback(flow, paid, _token(flow, paid["paymentId"]))
    flow.h.daraja.push_answers.append(
        RuntimeError("connection reset pushing to 254798765432 for otieno@example.com")
    )
    broken = _pay(flow, "0798-765-432", "otieno@example.com")

    done = flow.client.get(f"/api/payments/status/{paid['paymentId']}").json()
    assert done["status"] == "completed"
    assert broken["status"] == "pending"  # its push's fate is unknown: never pushed twice
    events = [text for text in Envelopes.sent if '"exception"' in text]
    assert events  # the failed push reached Sentry
    assert len(flow.logs.lines) >= 5
    assert any("2547****5678" in line for line in flow.logs.lines)  # logged, but masked
    everything = "\n".join([*flow.logs.lines, *Envelopes.sent])
    assert [raw for raw in RAW if raw in everything] == []

"""Alerts over the real PostgreSQL and Redis: each fires once, honours its threshold, and is
POSTed to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq
import pytest
import redis
import sentry_sdk
from dramatiq.brokers.redis import RedisBroker

from daraja.wire import QueryResult
from operations import alerts
from operations.dlq import RedisQueues
from payments import reconciliation
from plumbing.alerting import Alert
from plumbing.observability import init_sentry
from store import deliveries, payments
from store.db import utcnow
from store.tables import payments as payments_table
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body POSTed to it."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 204  # what it answers


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            rec.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(rec.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/khalex"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def _configure(h: Harness, **changes: Any) -> None:
    h.container.settings = dataclasses.replace(h.container.settings, **changes)


def _late_success(h: Harness, phone: str = "254712345678") -> str:
    payment_id = h.pushed(phone).id
    expiry = h.container.settings.payment_expiry_s
    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))
    reconciliation.query_payment(h.container, payment_id)
    return payment_id


# Late successes ---------------------------------------------------------------------------


def test_a_late_success_is_alerted_once_and_posted_to_the_webhook(
    h: Harness, receiver: Receiver
) -> None:
    _configure(h, alert_webhook_url=receiver.url)
    payment_id = _late_success(h)

    first = alerts.run(h.container)
    again = alerts.run(h.container)

    assert [(a.kind, a.details["paymentId"]) for a in first] == [("late_success", payment_id)]
    assert again == []
    [body] = receiver.bodies
    assert set(body) == {"alert", "message", "details", "at"}
    assert body["alert"] == "late_success"
    assert payment_id in body["message"]
    assert body["details"]["paymentId"] == payment_id
    assert body["details"]["amount"] == 1500
    assert datetime.fromisoformat(body["at"]).tzinfo is not None


def test_each_late_success_gets_its_own_alert(h: Harness, receiver: Receiver) -> None:
    _configure(h, alert_webhook_url=receiver.url)
    first = _late_success(h, "254712345678")
    alerts.run(h.container)
    second = _late_success(h, "254798765432")

    later = alerts.run(h.container)

    assert [a.details["paymentId"] for a in later] == [second]
    assert [b["details"]["paymentId"] for b in receiver.bodies] == [first, second]


def test_two_schedulers_checking_at_once_alert_a_late_success_once(h: Harness) -> None:
    _late_success(h)
    start = threading.Barrier(2)
    results: list[list[Alert]] = []

    def check() -> None:
        start.wait()
        results.append(alerts.run(h.container))

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(len(r) for r in results) == [0, 1]


def test_late_success_alert_leaves_no_phone_number_or_email_in_the_body(
    h: Harness, receiver: Receiver
) -> None:
    _configure(h, alert_webhook_url=receiver.url)
    _late_success(h)

    alerts.run(h.container)

    text = json.dumps(receiver.bodies)
    assert "254712345678" not in text
    assert "wanjiru@example.com" not in text


# Success rate -----------------------------------------------------------------------------


def _ended(h: Harness, completed: int, failed: int, at: datetime | None = None) -> None:
    """Payments that ended at `at` (default now): `completed` of them completed."""
    at = at or utcnow()
    for n in range(completed + failed):
        phone = f"2547{n:08d}"
        with h.container.engine.begin() as conn:
            record = payments.insert(conn, new_payment(phone))
            conn.execute(
                payments_table.update()
                .where(payments_table.c.id == record.id)
                .values(status="completed" if n < completed else "failed", finished_at=at)
            )


def test_low_success_rate_alerts_once_then_again_after_the_repeat_time(
    h: Harness, receiver: Receiver
) -> None:
    _configure(h, alert_webhook_url=receiver.url, alert_repeat_s=120)
    _ended(h, completed=4, failed=6)
    now = utcnow()

    first = alerts.run(h.container, now=now)
    soon = alerts.run(h.container, now=now + timedelta(seconds=119))
    later = alerts.run(h.container, now=now + timedelta(seconds=120))

    assert [a.kind for a in first] == ["low_success_rate"]
    assert first[0].details["successRate"] == 0.4
    assert (first[0].details["completed"], first[0].details["ended"]) == (4, 10)
    assert soon == []
    assert [a.kind for a in later] == ["low_success_rate"]
    assert [b["alert"] for b in receiver.bodies] == ["low_success_rate", "low_success_rate"]


def test_too_few_payments_never_alert_on_success_rate(h: Harness) -> None:
    _ended(h, completed=0, failed=9)  # ALERT_MIN_PAYMENTS is 10

    assert alerts.run(h.container) == []


def test_a_success_rate_at_the_threshold_does_not_alert(h: Harness) -> None:
    _ended(h, completed=5, failed=5)  # 0.5 is not below ALERT_SUCCESS_RATE_MIN 0.5

    assert alerts.run(h.container) == []


def test_payments_that_ended_before_the_window_do_not_count(h: Harness) -> None:
    window = h.container.settings.alert_success_window_s
    _ended(h, completed=0, failed=12, at=utcnow() - timedelta(seconds=window + 60))

    assert alerts.run(h.container) == []


def test_success_rate_thresholds_come_from_the_settings(h: Harness) -> None:
    _ended(h, completed=2, failed=1)
    _configure(h, alert_min_payments=3, alert_success_rate_min=0.9)

    raised = alerts.run(h.container)

    assert [(a.kind, a.details["threshold"]) for a in raised] == [("low_success_rate", 0.9)]


# Queues: Dramatiq's own Redis keys --------------------------------------------------------


#: A Redis database of their own: a test session flushes the shared one when it starts,
#: which would wipe these keys if another session started meanwhile.
REDIS_DB = 13


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[tuple[RedisBroker, redis.Redis[Any], str]]:
    """A Redis broker under a namespace of its own, so no other test's keys interfere."""
    redis_url = f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    namespace = f"alerts-test-{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(url=redis_url, namespace=namespace)  # type: ignore[no-untyped-call]
    for queue in ("payments", "callbacks", "reconcile"):
        broker.declare_queue(queue)
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    try:
        yield broker, client, namespace
    finally:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        broker.close()
        client.close()


def _enqueue(broker: RedisBroker, age_s: float, queue: str = "payments", **options: Any) -> None:
    broker.enqueue(
        dramatiq.Message(
            queue_name=queue, actor_name="send_push", args=("p-1",), kwargs={}, options=options,
            message_timestamp=int((time.time() - age_s) * 1000),
        )
    )  # fmt: skip


def test_a_queue_whose_oldest_job_waits_too_long_alerts_once(
    h: Harness, receiver: Receiver, redis_broker: tuple[RedisBroker, redis.Redis[Any], str]
) -> None:
    broker, client, namespace = redis_broker
    _configure(h, alert_webhook_url=receiver.url)
    _enqueue(broker, age_s=300)
    _enqueue(broker, age_s=5)

    first = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))
    again = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))

    assert [(a.kind, a.details["queue"]) for a in first] == [("queue_stuck", "payments")]
    assert 295 <= first[0].details["oldestAgeSeconds"] <= 320
    assert again == []
    assert [b["details"]["queue"] for b in receiver.bodies] == ["payments"]


def test_a_queue_moving_within_the_threshold_does_not_alert(
    h: Harness, redis_broker: tuple[RedisBroker, redis.Redis[Any], str]
) -> None:
    broker, client, namespace = redis_broker
    _enqueue(broker, age_s=300)
    _configure(h, alert_queue_age_s=600)

    assert alerts.run(h.container, queues=RedisQueues(client, namespace=namespace)) == []


def test_a_retried_job_has_waited_only_since_it_became_ready_again(
    redis_broker: tuple[RedisBroker, redis.Redis[Any], str],
) -> None:
    broker, client, namespace = redis_broker
    ready_ms = int((time.time() - 10) * 1000)
    _enqueue(broker, age_s=3600, queue="callbacks", eta=ready_ms)

    reader = RedisQueues(client, namespace=namespace)
    ages = {q.name: q.oldest_age_s for q in reader.stats() if q.depth}

    assert set(ages) == {"callbacks"}
    assert 9 <= ages["callbacks"] <= 30


def test_the_alert_and_the_queue_figures_give_a_retried_job_the_same_age(
    h: Harness, redis_broker: tuple[RedisBroker, redis.Redis[Any], str]
) -> None:
    broker, client, namespace = redis_broker
    _configure(h, alert_queue_age_s=60)
    _enqueue(broker, age_s=3600, queue="callbacks", eta=int((time.time() - 300) * 1000))
    reader = RedisQueues(client, namespace=namespace)

    (alert,) = alerts.run(h.container, queues=reader)
    shown = {q.name: q.oldest_age_s for q in reader.stats()}["callbacks"]

    assert 295 <= alert.details["oldestAgeSeconds"] <= 330
    assert abs(alert.details["oldestAgeSeconds"] - shown) < 5


def _dead_letter_in_redis(broker: RedisBroker) -> str:
    """Send a job and have a worker give up on it: Dramatiq moves it to `<queue>.XQ`."""
    _enqueue(broker, age_s=0)
    consumer = broker.consume("payments", prefetch=1, timeout=1000)
    try:
        message = None
        while message is None:
            message = next(consumer)
        consumer.nack(message)
        return str(message.message_id)
    finally:
        consumer.close()


def _dead_letter_in_db(h: Harness, message_id: str, queue: str = "callbacks") -> None:
    with h.container.engine.begin() as conn:
        deliveries.started(conn, message_id, queue, "process_callback", [7])
        deliveries.dead_lettered(conn, message_id, "started 4 times without finishing")


def test_dead_letters_alert_once_per_queue_and_new_ones_alert_again(
    h: Harness, receiver: Receiver, redis_broker: tuple[RedisBroker, redis.Redis[Any], str]
) -> None:
    broker, client, namespace = redis_broker
    _configure(h, alert_webhook_url=receiver.url)
    in_redis = _dead_letter_in_redis(broker)
    _dead_letter_in_db(h, "poisoned-1")

    first = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))
    again = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))
    newer = _dead_letter_in_redis(broker)
    later = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))

    assert sorted((a.details["queue"], a.details["count"]) for a in first) == [
        ("callbacks", 1),
        ("payments", 1),
    ]
    ids = {m["messageId"] for a in first for m in a.details["messages"]}
    assert ids == {in_redis, "poisoned-1"}
    assert again == []
    assert [[m["messageId"] for m in a.details["messages"]] for a in later] == [[newer]]
    assert [b["alert"] for b in receiver.bodies] == ["dead_letters"] * 3


def test_a_dead_letter_seen_both_in_redis_and_the_database_alerts_once(
    h: Harness, redis_broker: tuple[RedisBroker, redis.Redis[Any], str]
) -> None:
    broker, client, namespace = redis_broker
    message_id = _dead_letter_in_redis(broker)
    _dead_letter_in_db(h, message_id, queue="payments")  # our poison guard failed it

    raised = alerts.run(h.container, queues=RedisQueues(client, namespace=namespace))

    assert [(a.kind, a.details["count"]) for a in raised] == [("dead_letters", 1)]


def test_without_redis_the_database_checks_still_run(h: Harness) -> None:
    _dead_letter_in_db(h, "poisoned-2")

    raised = alerts.run(h.container, queues=None)

    assert [(a.kind, a.details["queue"]) for a in raised] == [("dead_letters", "callbacks")]


def test_an_unreachable_redis_is_logged_and_the_other_checks_still_run(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _late_success(h)
    gone: redis.Redis[Any] = redis.Redis(port=1, socket_connect_timeout=0.5)

    raised = alerts.run(h.container, queues=RedisQueues(gone))

    assert [a.kind for a in raised] == ["late_success"]
    assert "could not read the queues in Redis" in caplog.text


# Delivery ---------------------------------------------------------------------------------


def test_a_webhook_that_fails_is_logged_and_the_alert_is_not_repeated(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _configure(h, alert_webhook_url=f"http://127.0.0.1:{_closed_port()}/hooks")
    _late_success(h)

    first = alerts.run(h.container)
    again = alerts.run(h.container)

    assert [a.kind for a in first] == ["late_success"]
    assert again == []
    assert "alert webhook failed for late_success: ConnectError" in caplog.text
    assert [r.levelname for r in caplog.records if "alert late_success" in r.getMessage()] == [
        "ERROR"
    ]


def test_a_webhook_answering_an_error_is_logged_with_its_status(
    h: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    _configure(h, alert_webhook_url=receiver.url)
    _late_success(h)

    raised = alerts.run(h.container)

    assert [a.kind for a in raised] == ["late_success"]
    assert len(receiver.bodies) == 1
    assert "alert webhook failed for late_success: HTTPStatusError (500)" in caplog.text


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Captured(sentry_sdk.transport.Transport):
    events: list[dict[str, Any]] = []  # noqa: RUF012 - reset by the test

    def capture_envelope(self, envelope: Any) -> None:
        _Captured.events.extend(i.payload.json for i in envelope.items if i.payload.json)


def test_an_alert_is_one_sentry_event_tagged_with_its_kind(h: Harness) -> None:
    _Captured.events = []
    _configure(h, sentry_dsn="http://public@127.0.0.1:9/1")
    init_sentry(h.container.settings, "scheduler", transport=_Captured)
    try:
        _late_success(h)
        alerts.run(h.container)
    finally:
        sentry_sdk.get_client().close()
        # Back to no DSN and no integrations: a bare init() would switch on Sentry's
        # Litestar integration, which answers malformed JSON with a 500 in later tests.
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)

    messages = [e for e in _Captured.events if e.get("level") == "error"]
    assert len(messages) == 1  # the ERROR log line is not a second event
    assert messages[0]["tags"]["alert"] == "late_success"
    assert messages[0]["message"].startswith("late_success: payment ")

"""Queue gauges and dead letters read from a real Redis, as Dramatiq's Redis broker left them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from operations.dlq import RedisQueues
from operations.operator_tokens import issue_token
from payments.jobs import QUEUES
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

#: The reader's clock, so ages are exact.
NOW_S = 1_800_000_000.0
#: A JWT_SECRET as long as production requires.
SECRET = "ops-test-secret-0123456789abcdef-0123456789"


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    name = f"khalex-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def broker(redis_url: str, namespace: str) -> RedisBroker:
    broker = RedisBroker(url=redis_url, namespace=namespace)  # type: ignore[no-untyped-call]
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


@pytest.fixture
def reader(redis_url: str, namespace: str) -> RedisQueues:
    return RedisQueues(redis.Redis.from_url(redis_url), namespace=namespace, clock=lambda: NOW_S)


def _message(queue: str, actor: str, *args: str, age_s: float = 0) -> dramatiq.Message[Any]:
    born_ms = int((NOW_S - age_s) * 1000)
    return dramatiq.Message(
        queue_name=queue, actor_name=actor, args=args, kwargs={}, options={},
        message_timestamp=born_ms,
    )  # fmt: skip


def _dead_letter(broker: RedisBroker, queue: str, actor: str, *args: str) -> str:
    """Enqueue, fetch and nack a message: Dramatiq's own path to the dead letters."""
    sent = broker.enqueue(_message(queue, actor, *args))
    consumer = broker.consume(queue, prefetch=1, timeout=100)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fetched = next(consumer)
        if fetched is not None:
            consumer.nack(fetched)
            return str(sent.message_id)
    raise AssertionError("the message never came back from Redis")


def _by_name(reader: RedisQueues) -> dict[str, tuple[int, int, int, float]]:
    return {q.name: (q.depth, q.delayed, q.dead_lettered, q.oldest_age_s) for q in reader.stats()}


def test_ready_messages_count_as_depth_with_the_oldest_age(
    broker: RedisBroker, reader: RedisQueues
) -> None:
    broker.enqueue(_message("payments", "send_push", "p-1", age_s=42.5))
    broker.enqueue(_message("payments", "send_push", "p-2", age_s=3))

    assert _by_name(reader)["payments"] == (2, 0, 0, 42.5)


def test_delayed_message_counts_as_delayed_not_ready(
    broker: RedisBroker, reader: RedisQueues
) -> None:
    broker.enqueue(_message("callbacks", "process_callback", "7"), delay=60_000)

    assert _by_name(reader)["callbacks"] == (0, 1, 0, 0.0)


def test_dead_letter_appears_in_queue_gauge(broker: RedisBroker, reader: RedisQueues) -> None:
    _dead_letter(broker, "reconcile", "query_payment", "p-3")

    assert _by_name(reader)["reconcile"] == (0, 0, 1, 0.0)
    assert _by_name(reader)["payments"] == (0, 0, 0, 0.0)


def test_dead_letters_list_actor_ids_and_when(broker: RedisBroker, reader: RedisQueues) -> None:
    message_id = _dead_letter(broker, "payments", "send_push", "p-4")

    [letter] = reader.dead_letters()

    assert (letter.queue, letter.message_id, letter.actor, letter.args) == (
        "payments", message_id, "send_push", ["p-4"],
    )  # fmt: skip
    assert letter.dead_lettered_at is not None
    assert abs(letter.dead_lettered_at.timestamp() - time.time()) < 30


def test_empty_queues_report_zeros(reader: RedisQueues) -> None:
    assert _by_name(reader) == dict.fromkeys(QUEUES, (0, 0, 0, 0.0))


# --- Over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def client(h: Harness, reader: RedisQueues) -> Iterator[TestClient[Any]]:
    h.container.settings = dataclasses.replace(h.container.settings, jwt_secret=SECRET)
    with TestClient(app=create_app(h.container, queues=reader)) as test_client:
        yield test_client


@pytest.fixture
def ops_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET)}"}


def test_queues_endpoint_answers_in_the_contract_shape(
    broker: RedisBroker, client: TestClient[Any], ops_headers: dict[str, str]
) -> None:
    broker.enqueue(_message("payments", "send_push", "p-5", age_s=12))
    broker.enqueue(_message("callbacks", "process_callback", "8"), delay=60_000)
    _dead_letter(broker, "reconcile", "query_payment", "p-6")

    answer = client.get("/api/ops/queues", headers=ops_headers)

    assert answer.status_code == 200
    assert answer.json() == {
        "queues": [
            {"name": "payments", "depth": 1, "delayed": 0, "deadLettered": 0,
             "oldestAgeSeconds": 12.0},
            {"name": "callbacks", "depth": 0, "delayed": 1, "deadLettered": 0,
             "oldestAgeSeconds": 0.0},
            {"name": "reconcile", "depth": 0, "delayed": 0, "deadLettered": 1,
             "oldestAgeSeconds": 0.0},
            {"name": "webhooks", "depth": 0, "delayed": 0, "deadLettered": 0,
             "oldestAgeSeconds": 0.0},
        ]
    }  # fmt: skip


def test_queue_gauges_in_metrics_come_from_redis(
    broker: RedisBroker, client: TestClient[Any]
) -> None:
    broker.enqueue(_message("payments", "send_push", "p-7", age_s=30))
    broker.enqueue(_message("payments", "send_push", "p-8", age_s=1))
    _dead_letter(broker, "callbacks", "process_callback", "9")

    text = client.get("/metrics").text

    values = {
        (s.name, s.labels.get("queue")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("khalex_queue_")
    }
    assert values[("khalex_queue_depth", "payments")] == 2
    assert values[("khalex_queue_oldest_age_seconds", "payments")] == 30
    assert values[("khalex_queue_dead_lettered", "callbacks")] == 1
    assert values[("khalex_queue_delayed", "reconcile")] == 0


def test_dead_letters_endpoint_lists_messages_and_poison_guard_records(
    h: Harness, broker: RedisBroker, client: TestClient[Any], ops_headers: dict[str, str]
) -> None:
    from store import deliveries

    message_id = _dead_letter(broker, "payments", "send_push", "p-9")
    with h.container.engine.begin() as conn:
        deliveries.started(conn, message_id, "payments", "send_push", ["p-9"])
        deliveries.dead_lettered(conn, message_id, "started 4 times: call 0712345678")

    answer = client.get("/api/ops/dead-letters", headers=ops_headers).json()

    [payments_queue] = [q for q in answer["queues"] if q["name"] == "payments"]
    [letter] = payments_queue["messages"]
    assert (letter["messageId"], letter["actor"], letter["args"]) == (
        message_id, "send_push", ["p-9"],
    )  # fmt: skip
    [delivery] = answer["deliveries"]
    assert (delivery["messageId"], delivery["started"]) == (message_id, 1)
    assert "0712345678" not in delivery["lastError"]  # free text is masked too
    only = client.get("/api/ops/dead-letters?queue=callbacks", headers=ops_headers).json()
    assert [q["name"] for q in only["queues"]] == ["callbacks"]
    assert client.get("/api/ops/dead-letters?queue=nope", headers=ops_headers).status_code == 404


def test_unreachable_redis_is_503_for_ops_and_broker_down_in_metrics(h: Harness) -> None:
    h.container.settings = dataclasses.replace(h.container.settings, jwt_secret=SECRET)
    gone = RedisQueues(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    with TestClient(app=create_app(h.container, queues=gone)) as client:
        queues = client.get(
            "/api/ops/queues", headers={"Authorization": f"Bearer {issue_token(SECRET)}"}
        )
        metrics = client.get("/metrics")

    assert queues.status_code == 503
    assert queues.json()["error"]["code"] == "broker_unavailable"
    assert metrics.status_code == 200
    assert "khalex_broker_up 0.0" in metrics.text
    assert "khalex_database_up 1.0" in metrics.text

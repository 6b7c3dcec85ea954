"""A job that keeps killing its worker is dead-lettered after a few runs (counted in the
database, or in Redis), its record kept in the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import SkipMessage

from store import deliveries
from tests.integration.conftest import Harness
from workers.poison import PoisonGuard, RedisCounter

pytestmark = pytest.mark.integration


def _message() -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name="payments", actor_name="send_push", args=("p-1",), kwargs={}, options={}
        )
    )


def test_message_whose_runs_never_finish_is_dead_lettered_after_the_limit(h: Harness) -> None:
    guard, broker, message = (
        PoisonGuard(h.container.engine, max_unfinished=3),
        StubBroker(),
        _message(),
    )
    for _ in range(3):  # each run "dies with its worker": no after_process_message
        guard.before_process_message(broker, message)

    with pytest.raises(SkipMessage):
        guard.before_process_message(broker, message)

    assert message.failed
    with h.container.engine.connect() as conn:
        dead = deliveries.dead(conn)
    assert [(d["message_id"], d["actor"], d["started"]) for d in dead] == [
        (message.message_id, "send_push", 4)
    ]


def test_runs_that_finish_never_count_against_the_message(h: Harness) -> None:
    guard, broker, message = (
        PoisonGuard(h.container.engine, max_unfinished=1),
        StubBroker(),
        _message(),
    )

    for _ in range(5):
        guard.before_process_message(broker, message)
        guard.after_process_message(broker, message, exception=RuntimeError("retry me"))

    assert not message.failed


@pytest.fixture
def redis_counter(redis_url: str) -> Iterator[RedisCounter]:
    client = redis.Redis.from_url(redis_url)
    yield RedisCounter(client, prefix=f"test-deliveries-{uuid.uuid4().hex}")
    client.close()


def test_message_counted_in_redis_is_dead_lettered_with_its_record_in_the_database(
    h: Harness, redis_counter: RedisCounter
) -> None:
    guard = PoisonGuard(h.container.engine, max_unfinished=2, counter=redis_counter)
    broker, message = StubBroker(), _message()
    for _ in range(2):
        guard.before_process_message(broker, message)

    with pytest.raises(SkipMessage):
        guard.before_process_message(broker, message)
    guard.after_skip_message(broker, message)

    assert message.failed
    with h.container.engine.connect() as conn:
        dead = deliveries.dead(conn)
    assert [(d["message_id"], d["queue"], d["actor"], d["args"], d["started"]) for d in dead] == [
        (message.message_id, "payments", "send_push", ["p-1"], 3)
    ]
    # Its counts went with it: a replay of the same message starts from nothing.
    replayed = _message_with_id(message.message_id)
    guard.before_process_message(broker, replayed)
    assert not replayed.failed


def test_runs_counted_in_redis_that_finish_never_count_against_the_message(
    h: Harness, redis_counter: RedisCounter
) -> None:
    guard = PoisonGuard(h.container.engine, max_unfinished=1, counter=redis_counter)
    broker, message = StubBroker(), _message()

    for _ in range(5):
        guard.before_process_message(broker, message)
        guard.after_process_message(broker, message, exception=RuntimeError("retry me"))

    assert not message.failed
    with h.container.engine.connect() as conn:
        assert deliveries.dead(conn) == []


def _message_with_id(message_id: str) -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name="payments",
            actor_name="send_push",
            args=("p-1",),
            kwargs={},
            options={},
            message_id=message_id,
        )
    )


def test_a_run_that_succeeded_is_counted_finished_with_the_next_start_on_its_thread(
    h: Harness, redis_counter: RedisCounter, redis_url: str
) -> None:
    guard = PoisonGuard(h.container.engine, max_unfinished=1, counter=redis_counter)
    broker, first, second = StubBroker(), _message(), _message()
    client = redis.Redis.from_url(redis_url)
    first_key = redis_counter._key(first)

    guard.before_process_message(broker, first)
    guard.after_process_message(broker, first)
    held = client.hgetall(first_key)
    guard.before_process_message(broker, second)
    gone = client.exists(first_key)
    guard.after_process_message(broker, second)
    # The same message delivered again after a success (a worker died before acking it)
    # starts from nothing unfinished, however often.
    for _ in range(3):
        guard.before_process_message(broker, second)
        guard.after_process_message(broker, second)
    guard.before_worker_thread_shutdown(broker, None)
    left = client.exists(redis_counter._key(second))
    client.close()

    assert held == {b"started": b"1"}  # the finish was not sent yet
    assert gone == 0  # sent with the next start: a finished message keeps no count
    assert not second.failed
    assert left == 0  # the thread's shutdown sent the last one

"""`khalex-pay dlq list|replay|purge` against a real Redis, with Dramatiq's default keys."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from khalex_pay import cli
from payments.jobs import QUEUES
from store import deliveries
from store.tables import job_deliveries
from tests.integration.conftest import Harness
from workers.poison import PoisonGuard

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    client = redis.Redis.from_url(redis_url)

    def clear() -> None:
        keys = [k for q in QUEUES for k in client.scan_iter(f"dramatiq:{q}*")]
        if keys:
            client.delete(*keys)

    clear()
    yield client
    clear()


@pytest.fixture
def broker(redis_url: str, client: redis.Redis[bytes]) -> RedisBroker:
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


@pytest.fixture(autouse=True)
def env(h: Harness, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)


def _dead_letter(broker: RedisBroker, queue: str, actor: str, *args: str) -> str:
    """Enqueue, fetch and nack a message: Dramatiq's own path to the dead letters."""
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=queue, actor_name=actor, args=args, kwargs={},
            options={"retries": 3, "traceback": "Traceback...\nRuntimeError: boom"},
        )
    )  # fmt: skip
    consumer = broker.consume(queue, prefetch=1, timeout=100)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fetched = next(consumer)
        if fetched is not None:
            consumer.nack(fetched)
            return str(sent.message_id)
    raise AssertionError("the message never came back from Redis")


def _poisoned(h: Harness, message_id: str, queue: str = "payments") -> None:
    """As the poison guard leaves a message that killed its worker four times."""
    with h.container.engine.begin() as conn:
        for _ in range(4):
            deliveries.started(conn, message_id, queue, "send_push", ["p-1"])
        deliveries.dead_lettered(conn, message_id, "started 4 times without finishing")


def _dead_count(client: redis.Redis[bytes], queue: str) -> tuple[int, int]:
    return client.zcard(f"dramatiq:{queue}.XQ"), client.hlen(f"dramatiq:{queue}.XQ.msgs")


def test_dlq_list_shows_each_dead_letter_with_its_ids(
    h: Harness, broker: RedisBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    message_id = _dead_letter(broker, "payments", "send_push", "p-1")
    _poisoned(h, message_id)

    code = cli.main(["dlq", "list"])

    out = capsys.readouterr().out
    assert code == 0
    assert "payments: 1 dead letter(s)" in out
    assert "reconcile: 0 dead letter(s)" in out
    assert f"message {message_id}  send_push(p-1)" in out
    assert "retries 3  error: RuntimeError: boom" in out
    assert "stopped by the poison guard (job_deliveries): 1" in out


def test_dlq_replay_by_id_requeues_the_message_and_clears_its_poison_count(
    h: Harness, broker: RedisBroker, client: redis.Redis[bytes]
) -> None:
    message_id = _dead_letter(broker, "payments", "send_push", "p-1")
    _poisoned(h, message_id)

    code = cli.main(["dlq", "replay", "--id", message_id])

    assert code == 0
    assert _dead_count(client, "payments") == (0, 0)
    assert client.llen("dramatiq:payments") == 1
    [body] = client.hvals("dramatiq:payments.msgs")
    requeued = dramatiq.Message.decode(body)
    assert (requeued.message_id, tuple(requeued.args)) == (message_id, ("p-1",))
    assert "retries" not in requeued.options
    with h.container.engine.connect() as conn:
        row = conn.execute(job_deliveries.select()).one()
    assert (row.started, row.finished, row.dead_lettered_at) == (0, 0, None)


def test_replayed_message_gets_past_the_poison_guard(
    h: Harness, broker: RedisBroker, client: redis.Redis[bytes]
) -> None:
    message_id = _dead_letter(broker, "payments", "send_push", "p-1")
    _poisoned(h, message_id)
    cli.main(["dlq", "replay", "--id", message_id])
    consumer = broker.consume("payments", prefetch=1, timeout=100)
    fetched: Any = None
    while fetched is None:
        fetched = next(consumer)

    PoisonGuard(h.container.engine).before_process_message(broker, fetched)

    assert not fetched.failed
    consumer.ack(fetched)


def test_dlq_replay_all_of_one_queue_leaves_the_others(
    broker: RedisBroker, client: redis.Redis[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter(broker, "callbacks", "process_callback", "1")
    _dead_letter(broker, "callbacks", "process_callback", "2")
    _dead_letter(broker, "reconcile", "query_payment", "p-3")

    code = cli.main(["dlq", "replay", "--queue", "callbacks", "--all"])

    captured = capsys.readouterr()
    assert code == 0
    assert "replayed 2/2" in captured.err
    assert "replayed 2 of 2" in captured.out
    assert _dead_count(client, "callbacks") == (0, 0)
    assert client.llen("dramatiq:callbacks") == 2
    assert _dead_count(client, "reconcile") == (1, 1)


def test_dlq_replay_of_an_unknown_id_fails(broker: RedisBroker) -> None:
    _dead_letter(broker, "payments", "send_push", "p-1")

    assert cli.main(["dlq", "replay", "--id", "no-such-message"]) == 1


def test_dlq_purge_with_yes_deletes_every_dead_letter(
    broker: RedisBroker, client: redis.Redis[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter(broker, "payments", "send_push", "p-1")
    _dead_letter(broker, "callbacks", "process_callback", "1")
    _dead_letter(broker, "reconcile", "query_payment", "p-3")

    code = cli.main(["dlq", "purge", "--yes"])

    assert code == 0
    assert "deleted 3/3" in capsys.readouterr().err
    assert [_dead_count(client, q) for q in QUEUES] == [(0, 0)] * len(QUEUES)


def test_dlq_purge_without_yes_deletes_nothing_unless_a_person_answers(
    broker: RedisBroker, client: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    _dead_letter(broker, "payments", "send_push", "p-1")
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))  # piped, not a terminal

    code = cli.main(["dlq", "purge", "--queue", "payments"])

    assert code == 1
    assert _dead_count(client, "payments") == (1, 1)


def test_dlq_without_redis_says_where_the_dead_letters_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "")

    assert cli.main(["dlq", "list"]) == 2
    assert "REDIS_URL is not set" in capsys.readouterr().err

"""The relay's batch: many outbox jobs in one round trip to Redis, each a whole message."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import dramatiq
import pytest
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker

from payments import initiation, reconciliation
from payments.container import Container
from payments.relay import relay
from store import outbox
from store.db import utcnow
from store.tables import outbox as outbox_table
from tests.integration.conftest import Harness, new_payment
from tests.services import REDIS_URL
from workers.broker import build_broker, publisher
from workers.correlation import OPTION

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(h: Harness) -> Iterator[RedisBroker]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    built = build_broker(dataclasses.replace(h.container.settings, redis_url=REDIS_URL))
    assert isinstance(built, RedisBroker)
    yield built
    built.close()
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_a_relayed_batch_arrives_whole_and_in_order_on_each_queue(
    h: Harness, broker: RedisBroker
) -> None:
    with h.container.engine.begin() as conn:
        for n in range(5):
            outbox.add(conn, "payments", "send_push", f"p-{n}")
        outbox.add(conn, "reconcile", "query_payment", "p-9")
    container = Container(h.container.settings, h.container.engine, publisher(broker))

    assert relay(container) == 6

    pushes = _messages(broker, "payments")
    assert [m.args for m in pushes] == [(f"p-{n}",) for n in range(5)]
    assert {m.actor_name for m in pushes} == {"send_push"}
    assert [m.args for m in _messages(broker, "reconcile")] == [("p-9",)]
    with h.container.engine.connect() as conn:
        unsent = conn.execute(outbox_table.select().where(outbox_table.c.sent_at.is_(None)))
        assert unsent.all() == []


def test_a_batch_keeps_each_jobs_correlation_id(h: Harness, broker: RedisBroker) -> None:
    with h.container.engine.begin() as conn:
        first = outbox.add_job(conn, "payments", "send_push", "p-1")
        second = outbox.add_job(conn, "payments", "send_push", "p-2")
    jobs = [dataclasses.replace(first, correlation_id="req-1"),
            dataclasses.replace(second, correlation_id="req-2")]  # fmt: skip

    publisher(broker).many(jobs)  # type: ignore[attr-defined]

    options = [m.options for m in _messages(broker, "payments")]
    assert [o[OPTION] for o in options] == ["req-1", "req-2"]
    assert [o["outbox_id"] for o in options] == [first.id, second.id]


def _messages(broker: RedisBroker, queue: str) -> list[dramatiq.Message[object]]:
    client = broker.client
    ids = client.lrange(f"{broker.namespace}:{queue}", 0, -1)
    bodies = client.hmget(f"{broker.namespace}:{queue}.msgs", ids) if ids else []
    return [dramatiq.Message.decode(body) for body in bodies if body]  # oldest first


def _unsent(h: Harness) -> list[int]:
    with h.container.engine.connect() as conn:
        query = sa.select(outbox_table.c.id).where(outbox_table.c.sent_at.is_(None))
        return list(conn.execute(query).scalars())


def test_a_job_published_after_its_commit_is_marked_sent_before_the_relay_claims_it(
    h: Harness,
) -> None:
    initiation.initiate(h.container, new_payment())

    relayed = relay(h.container)

    assert (relayed, len(h.published), _unsent(h)) == (0, 1, [])


def test_jobs_published_after_their_commit_are_marked_sent_by_closing_the_container(
    h: Harness,
) -> None:
    initiation.initiate(h.container, new_payment("254712345678"))
    initiation.initiate(h.container, new_payment("254712345679"))

    h.container.sent_marker.close()

    assert (len(h.published), _unsent(h)) == (2, [])


def test_a_job_the_broker_refused_is_not_marked_sent(h: Harness) -> None:
    def broken(job: object) -> None:
        raise ConnectionError("redis is down")

    h.container.publish = broken
    initiation.initiate(h.container, new_payment())
    h.container.sent_marker.close()

    assert len(_unsent(h)) == 1


def test_a_pass_publishes_its_due_queries_as_one_batch_after_its_commit(
    h: Harness, broker: RedisBroker
) -> None:
    ids = [h.pushed(f"25471234{n:04d}").id for n in range(3)]
    container = Container(h.container.settings, h.container.engine, publisher(broker))

    report = reconciliation.tick(container, utcnow() + timedelta(seconds=25))
    container.flush_sent()

    assert report.queries == 3
    queries = _messages(broker, "reconcile")
    assert sorted(m.args for m in queries) == sorted((i,) for i in ids)
    assert {m.actor_name for m in queries} == {"query_payment"}
    assert _unsent(h) == []


def test_many_jobs_added_in_one_statement_each_get_the_id_of_their_own_row(h: Harness) -> None:
    args = [[f"p-{n}"] for n in range(60)]
    with h.container.engine.begin() as conn:
        outbox.add(conn, "reconcile", "query_payment", "before")  # the sequence moved on
        jobs = outbox.add_many(conn, "reconcile", "query_payment", args)

    assert [job.args for job in jobs] == args
    with h.container.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table.c.id, outbox_table.c.args))
        stored = {row.id: row.args for row in rows}
    assert all(stored[job.id] == job.args for job in jobs)
    assert [job.id for job in jobs] == sorted(job.id for job in jobs)

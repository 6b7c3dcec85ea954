"""A job that keeps killing its worker is dead-lettered after a few runs (counted in the DB)."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import SkipMessage

from store import deliveries
from tests.integration.conftest import Harness
from workers.poison import PoisonGuard

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

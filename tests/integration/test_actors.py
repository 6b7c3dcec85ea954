"""The Dramatiq actors on a stub broker: ids in, use cases run, Daraja's waits honoured."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from daraja.errors import AnswerKind, Reason, Refused
from payments import initiation
from payments.jobs import QUEUES, SEND_PUSH
from store import payments
from tests.integration.conftest import Harness, new_payment
from workers import actors

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(h: Harness) -> StubBroker:
    stub = StubBroker()
    for queue in QUEUES:
        stub.declare_queue(queue)
    actors.bind(h.container)
    actors.register(stub, expiry_s=h.container.settings.payment_expiry_s)
    return stub


def _send(broker: StubBroker, payment_id: str) -> None:
    broker.enqueue(
        dramatiq.Message(
            queue_name=SEND_PUSH.queue, actor_name=SEND_PUSH.actor, args=(payment_id,),
            kwargs={}, options={},
        )
    )  # fmt: skip


def test_push_job_sends_the_push_of_the_payment_it_names(h: Harness, broker: StubBroker) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        _send(broker, payment_id)
        broker.join(SEND_PUSH.queue, fail_fast=True)
    finally:
        worker.stop()

    with h.container.engine.connect() as conn:
        record = payments.get(conn, payment_id)
    assert record is not None
    assert record.status == "pushed"


def test_locked_subscriber_push_is_retried_after_daraja_s_wait(
    h: Harness, broker: StubBroker
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(
        Refused(
            "Unable to lock subscriber", retryable=True, reason=Reason.SUBSCRIBER_LOCKED,
            kind=AnswerKind.DARAJA_ERROR, code="500.001.1001", http_status=500, retry_after_s=60,
        )
    )  # fmt: skip

    with pytest.raises(dramatiq.Retry) as retry:
        actors.send_push(payment_id)

    assert retry.value.delay == actors.MAX_PUSH_RETRY_DELAY_MS

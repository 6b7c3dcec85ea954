"""Correlation ids in the database: outbox rows take them, jobs and scheduler passes pass them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from payments import initiation, reconciliation
from payments.jobs import PROCESS_CALLBACK, QUERY_PAYMENT, SEND_PUSH
from plumbing import correlation
from store import inbox, outbox
from store.db import utcnow
from store.tables import outbox as outbox_table
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness, new_payment
from workers import scheduler
from workers.correlation import CorrelationMiddleware

pytestmark = pytest.mark.integration


def _outbox_ids(h: Harness) -> list[tuple[str, str | None]]:
    with h.container.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox_table.c.actor, outbox_table.c.correlation_id).order_by(
                outbox_table.c.id
            )
        )
        return [(r.actor, r.correlation_id) for r in rows]


def test_outbox_rows_take_the_current_correlation_id(h: Harness) -> None:
    with correlation.bound("req-outbox-1"):
        payment = initiation.initiate(h.container, new_payment()).payment

    assert _outbox_ids(h) == [(SEND_PUSH.actor, "req-outbox-1")]
    assert [(j.args, j.correlation_id) for j in h.published] == [([payment.id], "req-outbox-1")]


def test_outbox_rows_written_outside_any_request_or_job_have_none(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        outbox.add(conn, *SEND_PUSH, "p-1")

    assert _outbox_ids(h) == [(SEND_PUSH.actor, None)]


def _message(actor: str, arg: Any, correlation_id: str) -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name="payments", actor_name=actor, args=(arg,), kwargs={},
            options={"correlation_id": correlation_id},
        )
    )  # fmt: skip


def test_jobs_queued_by_a_job_inherit_its_correlation_id(h: Harness) -> None:
    # A callback stored unmatched (before the door screened them); the push job re-queues it.
    with h.container.engine.begin() as conn:
        inbox.add(
            conn, body=stk_callback("ws_CO_TEST000001").decode(), source_ip="127.0.0.1",
            path_token=None, headers={}, checkout_request_id="ws_CO_TEST000001",
            state=inbox.UNMATCHED,
        )  # fmt: skip
    payment = initiation.initiate(h.container, new_payment()).payment
    h.published.clear()
    middleware, broker = CorrelationMiddleware(), StubBroker()
    message = _message(SEND_PUSH.actor, payment.id, "req-from-the-shop")

    middleware.before_process_message(broker, message)
    initiation.send_push(h.container, payment.id)
    middleware.after_process_message(broker, message)

    assert [(j.actor, j.correlation_id) for j in h.published] == [
        (PROCESS_CALLBACK.actor, "req-from-the-shop")
    ]
    assert correlation.current() is None


def _due_payment(h: Harness) -> str:
    payment_id = h.pushed().id
    with h.container.engine.begin() as conn:
        conn.execute(
            payments_table.update()
            .where(payments_table.c.id == payment_id)
            .values(next_query_at=utcnow() - timedelta(seconds=1))
        )
    return payment_id


def test_each_scheduler_pass_queues_its_jobs_under_its_own_id(h: Harness) -> None:
    _due_payment(h)
    leader = scheduler.SharedLeadership(h.container.engine)
    h.published.clear()

    try:
        scheduler.reconcile_job(h.container, leader)
        with h.container.engine.begin() as conn:  # due again, for a second pass
            conn.execute(payments_table.update().values(next_query_at=utcnow()))
        scheduler.reconcile_job(h.container, leader)
    finally:
        leader.release()

    ids = [j.correlation_id for j in h.published if j.actor == QUERY_PAYMENT.actor]
    assert len(ids) == 2
    assert all(i is not None and i.startswith(scheduler.ID_PREFIX) for i in ids)
    assert ids[0] != ids[1]


def test_a_job_the_scheduler_relays_again_keeps_the_id_of_whoever_queued_it(h: Harness) -> None:
    with correlation.bound("req-relayed-late"), h.container.engine.begin() as conn:
        outbox.add(conn, *SEND_PUSH, "p-late")  # committed, but never relayed

    with correlation.bound("sched-pass"):
        reconciliation.tick(h.container)

    assert [(j.args, j.correlation_id) for j in h.published] == [(["p-late"], "req-relayed-late")]


class _NotLeader:
    def acquire(self) -> bool:
        return False


def test_alert_checks_run_only_on_the_leader_under_a_scheduler_id(h: Harness) -> None:
    seen: list[str | None] = []

    def check(_: object) -> None:
        seen.append(correlation.current())

    leader = scheduler.SharedLeadership(h.container.engine)

    scheduler.alert_job(h.container, _NotLeader(), check)
    try:
        scheduler.alert_job(h.container, leader, check)
    finally:
        leader.release()

    assert len(seen) == 1
    assert seen[0] is not None
    assert seen[0].startswith(scheduler.ID_PREFIX)

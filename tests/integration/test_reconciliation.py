"""The reconciliation pass: due queries, expiry, late successes, re-driven work."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from daraja.errors import AnswerKind, QueryNotReady, Reason
from daraja.wire import QueryResult
from migrations.run import upgrade
from payments import callbacks, initiation, reconciliation
from payments.container import Container
from payments.jobs import PROCESS_CALLBACK, QUERY_PAYMENT, SEND_PUSH
from store import payments
from store.db import make_engine, utcnow
from store.outbox import Job
from store.payments import PaymentRecord
from store.sealed import checkout_index
from store.tables import callback_inbox
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness, ScriptedDaraja, new_payment

pytestmark = pytest.mark.integration


def test_pushed_payment_without_outcome_gets_a_query_once_due(h: Harness) -> None:
    p = h.pushed()
    h.published.clear()

    early = reconciliation.tick(h.container)
    later = reconciliation.tick(h.container, utcnow() + timedelta(seconds=25))

    assert early.queries == 0
    assert later.queries == 1
    assert [(j.actor, j.args) for j in h.published] == [(QUERY_PAYMENT.actor, [p.id])]


def test_queries_back_off_per_payment() -> None:
    gaps = [reconciliation.query_gap(n, 20).total_seconds() for n in range(5)]

    assert gaps == [20, 40, 80, 80, 80]


def test_query_success_completes_with_the_receipt_still_to_come(h: Harness) -> None:
    p = h.pushed()
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))

    reconciliation.query_payment(h.container, p.id)

    done = h.get(p.id)
    assert (done.status, done.mpesa_receipt_number, done.receipt_pending) == (
        "completed", None, True,
    )  # fmt: skip


def test_callback_after_query_success_fills_in_the_receipt(h: Harness) -> None:
    p = h.pushed()
    h.daraja.query_answers.append(QueryResult(0, "ok"))
    reconciliation.query_payment(h.container, p.id)

    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", receipt="LATE123456"),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    done = h.get(p.id)
    assert (done.mpesa_receipt_number, done.receipt_pending) == ("LATE123456", False)


def test_query_still_processing_changes_nothing(h: Harness) -> None:
    p = h.pushed()
    h.daraja.query_answers.append(
        QueryNotReady("being processed", reason=Reason.PROCESSING, kind=AnswerKind.DARAJA_ERROR)
    )

    reconciliation.query_payment(h.container, p.id)

    assert h.get(p.id).status == "pushed"


def test_query_failure_that_is_final_fails_the_payment(h: Harness) -> None:
    p = h.pushed()
    h.daraja.query_answers.append(QueryResult(1037, "DS timeout user cannot be reached"))

    reconciliation.query_payment(h.container, p.id)

    done = h.get(p.id)
    assert (done.status, done.failure_reason) == ("failed", "phone_unreachable")


def test_payment_silent_past_expiry_fails_with_timeout(h: Harness) -> None:
    p = h.pushed()
    expiry = h.container.settings.payment_expiry_s

    report = reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))

    assert report.expired == 1
    assert (h.get(p.id).status, h.get(p.id).failure_reason) == ("failed", "timeout")


def test_success_after_expiry_completes_the_payment_flagged_late(h: Harness) -> None:
    p = h.pushed()
    reconciliation.tick(
        h.container, utcnow() + timedelta(seconds=h.container.settings.payment_expiry_s + 1)
    )

    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="127.0.0.1",
        token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    done = h.get(p.id)
    assert (done.status, done.late_success, done.failure_reason) == ("completed", True, None)
    with h.container.engine.connect() as conn:
        assert "late_success" in [e["kind"] for e in payments.events(conn, p.id)]


def test_stored_callback_not_processed_within_a_minute_is_queued_again(h: Harness) -> None:
    p = h.pushed()
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="127.0.0.1",
        token=p.callback_token, headers={},
    )  # fmt: skip
    h.published.clear()

    reconciliation.tick(h.container, utcnow() + timedelta(seconds=61))

    assert (PROCESS_CALLBACK.actor, [received.inbox_id]) in [(j.actor, j.args) for j in h.published]


def test_created_payment_whose_push_job_was_lost_is_queued_again(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.published.clear()

    reconciliation.tick(h.container, utcnow() + timedelta(seconds=31))

    assert (SEND_PUSH.actor, [payment_id]) in [(j.actor, j.args) for j in h.published]


def test_jobs_the_broker_refused_are_relayed_by_the_next_pass(h: Harness) -> None:
    def broken(job: object) -> None:
        raise ConnectionError("redis is down")

    working = h.container.publish
    h.container.publish = broken
    initiation.initiate(h.container, new_payment())
    assert h.published == []

    h.container.publish = working
    report = reconciliation.tick(h.container)

    assert report.relayed == 1
    assert h.published[0].actor == SEND_PUSH.actor


def test_legacy_unmatched_callback_is_rematched_but_only_checked_with_daraja(
    h: Harness,
) -> None:
    p = h.pushed()
    with h.container.engine.begin() as conn:
        conn.execute(
            payments_table.update()
            .where(payments_table.c.id == p.id)
            .values(
                checkout_request_id="ws_CO_KNOWN_LATER",
                checkout_index=checkout_index("ws_CO_KNOWN_LATER"),
            )
        )
    received = callbacks.receive(
        h.container, stk_callback("ws_CO_KNOWN_LATER"), source_ip="127.0.0.1", token=None,
        headers={},
    )  # fmt: skip
    with h.container.engine.begin() as conn:  # stored unmatched before the door screened them
        conn.execute(
            callback_inbox.update()
            .where(callback_inbox.c.id == received.inbox_id)
            .values(state="unmatched")
        )
    h.published.clear()

    report = reconciliation.tick(h.container)

    assert report.callbacks_requeued == 1
    assert (PROCESS_CALLBACK.actor, [received.inbox_id]) in [(j.actor, j.args) for j in h.published]
    h.published.clear()
    callbacks.process(h.container, received.inbox_id)
    # It came without the payment's token: Daraja decides, the callback moves nothing.
    assert h.get(p.id).status == "pushed"
    assert [(j.actor, j.args) for j in h.published] == [(QUERY_PAYMENT.actor, [p.id])]


def _expire(h: Harness, p: PaymentRecord) -> None:
    later = utcnow() + timedelta(seconds=h.container.settings.payment_expiry_s + 1)
    reconciliation.tick(h.container, later)
    assert (h.get(p.id).status, h.get(p.id).failure_reason) == ("failed", "timeout")


def test_expired_payment_is_still_queried_and_a_success_completes_it_late(h: Harness) -> None:
    p = h.pushed()
    _expire(h, p)
    assert h.get(p.id).next_query_at is not None
    h.published.clear()

    report = reconciliation.tick(h.container, utcnow() + timedelta(hours=1))
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))
    reconciliation.query_payment(h.container, p.id)

    assert report.queries == 1
    done = h.get(p.id)
    assert (done.status, done.late_success, done.receipt_pending) == ("completed", True, True)
    assert done.next_query_at is None


def test_final_failure_for_an_expired_payment_stops_the_queries(h: Harness) -> None:
    p = h.pushed()
    _expire(h, p)
    h.daraja.query_answers.append(QueryResult(1032, "Request cancelled by user"))

    reconciliation.query_payment(h.container, p.id)

    done = h.get(p.id)
    assert (done.status, done.failure_reason, done.next_query_at) == ("failed", "timeout", None)


def test_expired_payments_are_queried_less_often_and_not_after_a_day(h: Harness) -> None:
    assert reconciliation.query_gap(9, 20, late=True) == timedelta(
        seconds=reconciliation.MAX_LATE_QUERY_GAP_S
    )
    p = h.pushed()
    _expire(h, p)
    h.published.clear()

    report = reconciliation.tick(h.container, utcnow() + timedelta(hours=25))

    assert report.queries == 0
    assert h.get(p.id).next_query_at is None


def test_callback_settling_a_payment_stops_its_queries(h: Harness) -> None:
    p = h.pushed()
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="127.0.0.1",
        token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    assert h.get(p.id).next_query_at is None


@pytest.fixture
def on_sqlite(tmp_path: Path, h: Harness) -> Iterator[Harness]:
    """The harness on SQLite, as `khalex-pay dev` runs the pass."""
    url = f"sqlite:///{tmp_path / 'khalex.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = dataclasses.replace(h.container.settings, database_url=url)
    daraja, published = ScriptedDaraja(), list[Job]()
    yield Harness(Container(settings, engine, published.append, daraja=daraja), daraja, published)
    engine.dispose()


def test_a_pass_on_sqlite_queues_the_due_queries_and_backs_them_off(on_sqlite: Harness) -> None:
    h = on_sqlite
    first, second = h.pushed("254712345678"), h.pushed("254712345679")
    h.published.clear()
    now = utcnow() + timedelta(seconds=25)

    report = reconciliation.tick(h.container, now)

    assert report.queries == 2
    assert sorted(j.args[0] for j in h.published) == sorted([first.id, second.id])
    for p in (first, second):
        after = h.get(p.id)
        assert after.query_attempts == 1
        gap = reconciliation.query_gap(1, h.container.settings.reconcile_after_s)
        assert after.next_query_at == now + gap

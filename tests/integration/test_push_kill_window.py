"""A worker killed between storing the push's answer and its compare-and-set.

The push went out and Daraja's answer (with the CheckoutRequestID) is in
`daraja_exchanges`, but the payment is still `sending`. Its callback must still be
applied, and reconciliation must recover the payment from the stored answer; a second
push is never sent.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from daraja.wire import QueryResult
from domain.payment import Expired, PushAccepted, PushStarted
from operations import alerts
from payments import callbacks, initiation, reconciliation
from payments.jobs import QUERY_PAYMENT, SEND_PUSH
from payments.transitions import transition
from store import inbox
from store.db import utcnow
from store.exchanges import StoreRecorder
from tests.factories import stk_callback
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration

CHECKOUT = "ws_CO_KILLED000001"


def _killed_after_answer(h: Harness, *, answer: str | None = "accepted") -> str:
    """A payment whose push job died after storing Daraja's answer, before its CAS."""
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    assert transition(h.container.engine, h.container.settings, payment_id, PushStarted())
    recorder = StoreRecorder(h.container.engine, payment_id)
    handle = recorder.request_sent("stk_push", "http://daraja/push", {"PartyA": "2547"})
    if answer == "accepted":
        text = json.dumps({
            "MerchantRequestID": "mr-killed", "CheckoutRequestID": CHECKOUT,
            "ResponseCode": "0", "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        })  # fmt: skip
        recorder.answer_received(handle, 200, text, None, 5)
    assert h.get(payment_id).status == "sending"
    h.published.clear()  # the push job, already run (and killed)
    return payment_id


def _deliver(h: Harness, body: bytes, token: str) -> callbacks.Received:
    received = callbacks.receive(
        h.container, body, source_ip="196.201.214.200", token=token, headers={}
    )
    assert received.status_code == 200
    callbacks.process(h.container, received.inbox_id)
    return received


def _inbox_state(h: Harness, inbox_id: int) -> str:
    with h.container.engine.connect() as conn:
        row = inbox.get(conn, inbox_id)
    assert row is not None
    return row.state


def test_callback_on_its_token_url_completes_a_payment_stuck_in_sending(h: Harness) -> None:
    payment_id = _killed_after_answer(h)

    received = _deliver(h, stk_callback(CHECKOUT), h.get(payment_id).callback_token)

    done = h.get(payment_id)
    assert (done.status, done.checkout_request_id) == ("completed", CHECKOUT)
    assert done.mpesa_receipt_number == "UJ22T8IYOU"
    assert _inbox_state(h, received.inbox_id) == inbox.PROCESSED


def _queued_queries(h: Harness) -> list[object]:
    return [job.args[0] for job in h.published if job.actor == QUERY_PAYMENT.actor]


def test_push_job_redelivered_after_the_callback_completed_is_a_no_op(h: Harness) -> None:
    payment_id = _killed_after_answer(h)
    _deliver(h, stk_callback(CHECKOUT), h.get(payment_id).callback_token)
    version = h.get(payment_id).version

    initiation.send_push(h.container, payment_id)  # the killed job, delivered again
    late_cas = transition(
        h.container.engine, h.container.settings, payment_id, PushAccepted(CHECKOUT, "mr-killed")
    )

    assert late_cas is None
    assert h.daraja.pushes == []  # never a second push
    done = h.get(payment_id)
    assert (done.status, done.version, done.checkout_request_id) == (
        "completed", version, CHECKOUT,
    )  # fmt: skip


def test_callback_naming_another_push_than_the_stored_answer_is_refused(h: Harness) -> None:
    payment_id = _killed_after_answer(h)

    received = _deliver(h, stk_callback("ws_CO_SOMEONE_ELSE"), h.get(payment_id).callback_token)

    assert _inbox_state(h, received.inbox_id) == inbox.REJECTED
    assert h.get(payment_id).status == "sending"


def test_reconciliation_recovers_a_stored_push_answer_and_queries_it(h: Harness) -> None:
    payment_id = _killed_after_answer(h)
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))

    stale = utcnow() + timedelta(seconds=reconciliation.SENDING_STALE_S + 1)
    report = reconciliation.tick(h.container, stale)

    recovered = h.get(payment_id)
    assert report.pushes_recovered == 1
    assert (recovered.status, recovered.checkout_request_id) == ("pushed", CHECKOUT)
    assert recovered.merchant_request_id == "mr-killed"
    assert _queued_queries(h) == [payment_id]
    reconciliation.query_payment(h.container, payment_id)
    assert h.daraja.queries == [CHECKOUT]
    assert h.get(payment_id).status == "completed"
    assert h.daraja.pushes == []


def test_reconciliation_recovers_the_answer_before_expiring_so_a_late_success_is_found(
    h: Harness,
) -> None:
    payment_id = _killed_after_answer(h)
    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))
    expiry = h.container.settings.payment_expiry_s

    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))

    expired = h.get(payment_id)
    assert (expired.status, expired.failure_reason) == ("failed", "timeout")
    assert expired.checkout_request_id == CHECKOUT
    assert _queued_queries(h) == [payment_id]
    reconciliation.query_payment(h.container, payment_id)
    done = h.get(payment_id)
    assert (done.status, done.late_success) == ("completed", True)
    assert h.daraja.pushes == []


def test_push_request_without_an_answer_becomes_unknown_never_pushed_again(h: Harness) -> None:
    payment_id = _killed_after_answer(h, answer=None)

    reconciliation.tick(
        h.container, utcnow() + timedelta(seconds=reconciliation.SENDING_STALE_S + 1)
    )

    assert h.get(payment_id).status == "unknown"
    assert [job.actor for job in h.published if job.actor == SEND_PUSH.actor] == []
    assert _queued_queries(h) == []
    expiry = h.container.settings.payment_expiry_s
    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))
    assert (h.get(payment_id).status, h.get(payment_id).failure_reason) == ("failed", "timeout")

    _deliver(h, stk_callback(CHECKOUT), h.get(payment_id).callback_token)  # a late success

    done = h.get(payment_id)
    assert (done.status, done.late_success, done.checkout_request_id) == (
        "completed", True, CHECKOUT,
    )  # fmt: skip
    assert h.daraja.pushes == []


def test_push_answer_applied_after_expiry_keeps_the_payment_queried(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    scripted = h.daraja.stk_push

    def slow_push(**kwargs: Any) -> Any:
        answer = scripted(**kwargs)
        # The answer is in, but the expiry wins the race to the payment row.
        transition(h.container.engine, h.container.settings, payment_id, Expired())
        return answer

    monkeypatch.setattr(h.daraja, "stk_push", slow_push)

    initiation.send_push(h.container, payment_id)

    expired = h.get(payment_id)
    assert (expired.status, expired.failure_reason) == ("failed", "timeout")
    assert expired.checkout_request_id == "ws_CO_TEST000001"
    assert expired.next_query_at is not None  # a late success is still looked for


def test_a_push_that_timed_out_without_an_answer_or_callback_is_alerted_once(h: Harness) -> None:
    payment_id = _killed_after_answer(h, answer=None)
    later = utcnow() + timedelta(seconds=h.container.settings.payment_expiry_s + 1)
    reconciliation.tick(
        h.container, utcnow() + timedelta(seconds=reconciliation.SENDING_STALE_S + 1)
    )
    reconciliation.tick(h.container, later)
    assert h.get(payment_id).status == "failed"

    first = alerts.run(h.container, now=later)
    again = alerts.run(h.container, now=later)

    assert [
        (a.kind, a.details["paymentId"]) for a in first if a.kind == alerts.OUTCOME_UNKNOWN
    ] == [(alerts.OUTCOME_UNKNOWN, payment_id)]
    assert [a for a in again if a.kind == alerts.OUTCOME_UNKNOWN] == []


def test_a_push_whose_answer_was_recovered_is_not_an_unknown_outcome(h: Harness) -> None:
    payment_id = _killed_after_answer(h)
    later = utcnow() + timedelta(seconds=h.container.settings.payment_expiry_s + 1)
    reconciliation.tick(
        h.container, utcnow() + timedelta(seconds=reconciliation.SENDING_STALE_S + 1)
    )
    reconciliation.tick(h.container, later)

    raised = alerts.run(h.container, now=later)

    assert h.get(payment_id).checkout_request_id == CHECKOUT
    assert [a for a in raised if a.kind == alerts.OUTCOME_UNKNOWN] == []

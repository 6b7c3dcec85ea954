"""Initiating a payment and sending its one STK push, on the real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pytest
import sqlalchemy as sa

from daraja.client import ExchangeRecorder
from daraja.errors import AnswerKind, OutcomeUnknown, Reason, Refused
from domain.payment import Expired
from payments import initiation
from payments.jobs import SEND_PUSH
from payments.transitions import transition
from store import exchanges, payments
from store.payments import PhoneBusy
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration


def test_initiate_stores_a_created_payment_and_publishes_its_push_job_with_ids_only(
    h: Harness,
) -> None:
    result = initiation.initiate(h.container, new_payment())

    assert result.payment.status == "created"
    assert [(j.queue, j.actor, j.args) for j in h.published] == [
        (SEND_PUSH.queue, SEND_PUSH.actor, [result.payment.id])
    ]
    with h.container.engine.connect() as conn:
        assert [e["kind"] for e in payments.events(conn, result.payment.id)] == ["created"]


def test_second_payment_for_a_phone_in_flight_is_refused_naming_the_first(h: Harness) -> None:
    first = initiation.initiate(h.container, new_payment())

    with pytest.raises(PhoneBusy) as refused:
        initiation.initiate(h.container, new_payment(amount=99))

    assert refused.value.payment_id == first.payment.id


def test_same_idempotency_key_and_body_replays_the_first_payment(h: Harness) -> None:
    first = initiation.initiate(h.container, new_payment(), "key-1")
    again = initiation.initiate(h.container, new_payment(), "key-1")

    assert again.replayed
    assert again.payment.id == first.payment.id
    assert len(h.published) == 1


def test_same_idempotency_key_with_another_body_is_refused(h: Harness) -> None:
    initiation.initiate(h.container, new_payment(), "key-2")

    with pytest.raises(initiation.IdempotencyKeyReused):
        initiation.initiate(h.container, new_payment(amount=10), "key-2")


def test_concurrent_requests_with_one_key_make_one_payment(h: Harness) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            results.append(initiation.initiate(h.container, new_payment(), "key-race").payment.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(results)) == 1


def test_accepted_push_records_checkout_ids_and_the_raw_exchange(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert record.status == "pushed"
    assert record.checkout_request_id == "ws_CO_TEST000001"
    assert record.next_query_at is not None
    assert h.daraja.pushes[0]["callback_url"] == (
        f"{h.container.settings.mpesa_callback_url}/{record.callback_token}"
    )
    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
    assert [(r["operation"], r["http_status"]) for r in rows] == [("stk_push", 200)]


def test_an_accepted_push_is_stored_with_its_answer_in_the_statement_that_records_it(
    h: Harness,
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    sent: list[str] = []
    job = threading.get_ident()

    def count(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        # The job's own statements (the relay marks published jobs sent from a thread of its own).
        if threading.get_ident() == job:
            sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(h.container.engine, "before_cursor_execute", count)
    try:
        initiation.send_push(h.container, payment_id)
    finally:
        sa.event.remove(h.container.engine, "before_cursor_execute", count)

    # The payment read; `sending`, its event and the raw request, before it is sent; then
    # `pushed`, its event and Daraja's raw answer together: never acted on before stored.
    assert sent == ["SELECT", "WITH", "WITH"]
    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
    assert [(r["http_status"], r["answer"], r["elapsed_ms"]) for r in rows] == [(200, "{}", 5)]
    assert h.get(payment_id).status == "pushed"


@pytest.mark.parametrize(
    "failure",
    [
        Refused(
            "busy", retryable=False, reason=Reason.SUBSCRIBER_LOCKED, kind=AnswerKind.HTTP_STATUS
        ),
        OutcomeUnknown("timed out", reason=Reason.TIMEOUT, kind=AnswerKind.TRANSPORT),
        RuntimeError("a bug in the client"),
    ],
)
def test_the_answer_to_a_push_that_was_not_accepted_is_stored_too(
    h: Harness, failure: Exception
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(failure)

    with pytest.raises(RuntimeError) if isinstance(failure, RuntimeError) else nullcontext():
        initiation.send_push(h.container, payment_id)

    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
    assert [(r["http_status"], r["answer"]) for r in rows] == [(200, "{}")]
    assert h.get(payment_id).status in ("failed", "unknown")


class _TimeLimit(BaseException):
    """As Dramatiq's time limit: raised into the job, not an Exception."""


def test_a_push_interrupted_after_daraja_answered_keeps_the_answer(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(_TimeLimit())

    with pytest.raises(_TimeLimit):
        initiation.send_push(h.container, payment_id)

    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
    assert [(r["http_status"], r["answer"]) for r in rows] == [(200, "{}")]
    assert h.get(payment_id).status == "sending"  # the reconciliation pass takes it from here


def test_a_held_answer_whose_write_fails_stays_held_until_written(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    recorder = exchanges.StoreRecorder(h.container.engine, payment_id, hold_answer=True)
    handle = recorder.request_sent("stk_push", "http://daraja/push", {"PartyA": "x"})
    recorder.answer_received(handle, 200, '{"ok": 1}', None, 7)

    def down(work: object, **_: object) -> None:
        raise sa.exc.OperationalError("UPDATE", {}, Exception("database down"))

    monkeypatch.setattr(exchanges, "retrying", down)
    with pytest.raises(sa.exc.OperationalError):
        recorder.flush()
    monkeypatch.undo()
    recorder.flush()

    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
    assert [(r["http_status"], r["answer"]) for r in rows] == [(200, '{"ok": 1}')]


def test_push_job_delivered_twice_pushes_once(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    initiation.send_push(h.container, payment_id)
    initiation.send_push(h.container, payment_id)

    assert len(h.daraja.pushes) == 1


def test_push_with_unknown_outcome_is_never_sent_again(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(
        OutcomeUnknown("read timeout", reason=Reason.TIMEOUT, kind=AnswerKind.TRANSPORT)
    )

    initiation.send_push(h.container, payment_id)
    initiation.send_push(h.container, payment_id)

    assert h.get(payment_id).status == "unknown"
    assert len(h.daraja.pushes) == 1


def _rate_limited() -> Refused:
    return Refused(
        "System is busy", retryable=True, reason=Reason.RATE_LIMITED,
        kind=AnswerKind.DARAJA_ERROR, code="500.003.02", http_status=500,
    )  # fmt: skip


def test_push_refused_before_processing_is_deferred_then_retried(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(_rate_limited())

    with pytest.raises(initiation.PushDeferred):
        initiation.send_push(h.container, payment_id)
    assert h.get(payment_id).status == "created"

    initiation.send_push(h.container, payment_id)
    assert h.get(payment_id).status == "pushed"
    assert len(h.daraja.pushes) == 2


def test_push_refused_every_time_fails_after_the_attempt_limit(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.extend(_rate_limited() for _ in range(initiation.MAX_PUSH_ATTEMPTS))

    for _ in range(initiation.MAX_PUSH_ATTEMPTS - 1):
        with pytest.raises(initiation.PushDeferred):
            initiation.send_push(h.container, payment_id)
    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert record.status == "failed"
    assert record.failure_reason == "mpesa_unavailable"
    assert record.push_attempts == initiation.MAX_PUSH_ATTEMPTS


def _statuses_as_requests_leave(
    h: Harness, payment_id: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Make the scripted Daraja note the payment's stored status as each request leaves."""
    seen: list[str] = []
    push = h.daraja.stk_push

    class Watching:
        def __init__(self, recorder: ExchangeRecorder) -> None:
            self._recorder = recorder

        def request_sent(self, operation: str, url: str, body: dict[str, object]) -> object:
            handle = self._recorder.request_sent(operation, url, body)
            with h.container.engine.connect() as conn:
                stored = len(exchanges.for_payment(conn, payment_id))
            seen.append(f"{h.get(payment_id).status}/{stored} stored")
            return handle

        def __getattr__(self, name: str) -> object:
            return getattr(self._recorder, name)

    def watched(**kwargs: object) -> object:
        kwargs["recorder"] = Watching(kwargs["recorder"])  # type: ignore[arg-type]
        return push(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(h.daraja, "stk_push", watched)
    return seen


def test_the_payment_is_sending_and_its_request_stored_before_the_request_leaves(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    seen = _statuses_as_requests_leave(h, payment_id, monkeypatch)

    initiation.send_push(h.container, payment_id)

    assert seen == ["sending/1 stored"]
    with h.container.engine.connect() as conn:
        kinds = [e["kind"] for e in payments.events(conn, payment_id)]
    assert kinds == ["created", "push_started", "push_accepted"]


def _meanwhile(h: Harness, monkeypatch: pytest.MonkeyPatch, happens: Callable[[], None]) -> None:
    """Make `happens` run while the next push job waits for its turn toward Daraja, after
    it read its payment and before its request is stored."""
    push = h.daraja.stk_push

    def waited(**kwargs: Any) -> Any:
        monkeypatch.setattr(h.daraja, "stk_push", push)
        happens()
        return push(**kwargs)

    monkeypatch.setattr(h.daraja, "stk_push", waited)


def test_a_payment_that_ended_before_its_request_was_stored_is_never_pushed(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    def expires() -> None:
        assert transition(h.container.engine, h.container.settings, payment_id, Expired())

    _meanwhile(h, monkeypatch, expires)
    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert (record.status, record.failure_reason) == ("failed", "timeout")
    with h.container.engine.connect() as conn:
        assert exchanges.for_payment(conn, payment_id) == []
        kinds = [e["kind"] for e in payments.events(conn, payment_id)]
    assert "push_started" not in kinds


def test_a_push_taken_by_another_delivery_of_its_job_is_sent_once(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    # The other delivery read the payment too, and gets to Daraja first.
    _meanwhile(h, monkeypatch, lambda: initiation.send_push(h.container, payment_id))
    initiation.send_push(h.container, payment_id)

    assert h.get(payment_id).status == "pushed"
    assert len(h.daraja.pushes) == 1
    with h.container.engine.connect() as conn:
        assert len(exchanges.for_payment(conn, payment_id)) == 1
        kinds = [e["kind"] for e in payments.events(conn, payment_id)]
    assert kinds.count("push_started") == 1


def test_a_move_to_sending_whose_reply_was_lost_is_found_again_and_pushed_once(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    committed = payments.apply_requesting
    lost: list[bool] = []

    def reply_lost_once(*args: Any) -> Any:
        written = committed(*args)
        if not lost:
            lost.append(True)  # the statement committed; its answer never came back
            raise sa.exc.OperationalError("WITH", {}, Exception("server closed the connection"))
        return written

    monkeypatch.setattr(payments, "apply_requesting", reply_lost_once)
    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert (record.status, record.push_attempts) == ("pushed", 1)
    assert len(h.daraja.pushes) == 1
    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, payment_id)
        kinds = [e["kind"] for e in payments.events(conn, payment_id)]
    assert [r["http_status"] for r in rows] == [200]
    assert kinds == ["created", "push_started", "push_accepted"]


def test_a_payment_changed_but_still_to_push_is_decided_afresh_and_pushed(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    def refused() -> None:
        # Another go started and was refused before processing: the payment is `created`
        # again, at a later version than this job read.
        h.daraja.push_answers.insert(0, _rate_limited())
        with pytest.raises(initiation.PushDeferred):
            initiation.send_push(h.container, payment_id)

    _meanwhile(h, monkeypatch, refused)
    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert (record.status, record.push_attempts) == ("pushed", 2)


def test_a_push_refused_before_any_request_is_stored_is_recorded_as_refused(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id

    def no_token(**kwargs: object) -> object:
        # The token could not be had: the client refuses before storing any request.
        raise Refused(
            "token refused", retryable=False, reason=Reason.INVALID_TOKEN,
            kind=AnswerKind.HTTP_STATUS, http_status=401,
        )  # fmt: skip

    monkeypatch.setattr(h.daraja, "stk_push", no_token)
    initiation.send_push(h.container, payment_id)

    record = h.get(payment_id)
    assert (record.status, record.push_attempts) == ("failed", 1)
    with h.container.engine.connect() as conn:
        kinds = [e["kind"] for e in payments.events(conn, payment_id)]
    # The move a refusal is recorded from is written first, as it always was.
    assert kinds == ["created", "push_started", "push_refused"]

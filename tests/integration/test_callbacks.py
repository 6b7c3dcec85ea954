"""Callbacks: stored at the door, applied once from the inbox, never dropped."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from daraja.errors import AnswerKind, OutcomeUnknown, Reason
from payments import callbacks, initiation
from payments.jobs import PROCESS_CALLBACK
from store import inbox, payments
from store import reconciliation as due
from store.db import utcnow
from store.tables import callback_inbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration


def _deliver(h: Harness, body: bytes, token: str | None = None) -> callbacks.Received:
    received = callbacks.receive(
        h.container, body, source_ip="196.201.214.200", token=token, headers={}
    )
    if received.status_code == 200:
        callbacks.process(h.container, received.inbox_id)
    return received


def _inbox(h: Harness, inbox_id: int) -> inbox.InboxRow:
    with h.container.engine.connect() as conn:
        row = inbox.get(conn, inbox_id)
    assert row is not None
    return row


def test_success_callback_completes_the_payment_with_its_receipt(h: Harness) -> None:
    p = h.pushed()

    received = _deliver(h, stk_callback(p.checkout_request_id or ""), p.callback_token)

    done = h.get(p.id)
    assert (done.status, done.mpesa_receipt_number) == ("completed", "UJ22T8IYOU")
    assert done.transaction_date is not None
    assert _inbox(h, received.inbox_id).state == inbox.PROCESSED
    assert h.published[-1].actor == PROCESS_CALLBACK.actor
    assert h.published[-1].args == [received.inbox_id]


def test_the_usual_callback_is_applied_in_two_round_trips_without_a_transaction(
    h: Harness,
) -> None:
    p = h.pushed()
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="196.201.214.200",
        token=p.callback_token, headers={},
    )  # fmt: skip
    sent: list[str] = []
    job = threading.get_ident()

    def count(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        # The job's own statements (the relay marks published jobs sent from a thread of its own).
        if threading.get_ident() == job:
            sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(h.container.engine, "before_cursor_execute", count)
    try:
        callbacks.process(h.container, received.inbox_id)
    finally:
        sa.event.remove(h.container.engine, "before_cursor_execute", count)

    # The look-up, then the write that completes the payment, appends its event and
    # finishes the callback: no BEGIN, no COMMIT, nothing else.
    assert sent == ["SELECT", "WITH"]
    done, stored = h.get(p.id), _inbox(h, received.inbox_id)
    assert (done.status, done.mpesa_receipt_number) == ("completed", "UJ22T8IYOU")
    assert (stored.state, stored.payment_id, stored.reason) == (inbox.PROCESSED, p.id, None)
    with h.container.engine.connect() as conn:
        kinds = [e["kind"] for e in payments.events(conn, p.id)]
    assert kinds[-1] == "completed"


def test_duplicate_callback_is_stored_and_changes_nothing(h: Harness) -> None:
    p = h.pushed()
    body = stk_callback(p.checkout_request_id or "")
    _deliver(h, body, p.callback_token)
    version = h.get(p.id).version

    again = _deliver(h, body, p.callback_token)

    assert again.status_code == 200
    assert _inbox(h, again.inbox_id).state == inbox.IGNORED
    assert h.get(p.id).version == version


def test_processing_one_callback_twice_applies_it_once(h: Harness) -> None:
    p = h.pushed()
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="127.0.0.1",
        token=p.callback_token, headers={},
    )  # fmt: skip

    callbacks.process(h.container, received.inbox_id)
    callbacks.process(h.container, received.inbox_id)

    with h.container.engine.connect() as conn:
        kinds = [e["kind"] for e in payments.events(conn, p.id)]
    assert kinds.count("completed") == 1


def test_callback_with_another_amount_fails_the_payment_as_amount_mismatch(h: Harness) -> None:
    p = h.pushed(amount=1500)

    _deliver(h, stk_callback(p.checkout_request_id or "", amount=15), p.callback_token)

    done = h.get(p.id)
    assert (done.status, done.failure_reason) == ("failed", "amount_mismatch")
    assert done.mpesa_receipt_number is None


def test_cancelled_callback_cancels_the_payment(h: Harness) -> None:
    p = h.pushed()

    _deliver(h, stk_callback(p.checkout_request_id or "", 1032), p.callback_token)

    done = h.get(p.id)
    assert (done.status, done.failure_reason, done.result_code) == (
        "cancelled", "cancelled_by_user", 1032,
    )  # fmt: skip


def test_malformed_callback_is_stored_as_rejected_and_answered_400(h: Harness) -> None:
    received = callbacks.receive(
        h.container, b"<html>not json</html>", source_ip="127.0.0.1", token=None, headers={}
    )

    assert received.status_code == 400
    row = _inbox(h, received.inbox_id)
    assert (row.state, row.body) == (inbox.REJECTED, "<html>not json</html>")
    assert h.published == []


def test_callback_with_an_unknown_path_token_is_stored_and_refused_403(h: Harness) -> None:
    received = callbacks.receive(
        h.container, stk_callback("ws_CO_X"), source_ip="127.0.0.1", token="forged", headers={}
    )

    assert received.status_code == 403
    assert _inbox(h, received.inbox_id).state == inbox.REJECTED


def test_callback_from_outside_the_allow_list_is_stored_and_refused_403(h: Harness) -> None:
    import dataclasses
    import ipaddress

    h.container.settings = dataclasses.replace(
        h.container.settings,
        mpesa_callback_allowed_ips=(ipaddress.ip_network("196.201.214.0/24"),),
    )
    received = callbacks.receive(
        h.container, stk_callback("ws_CO_X"), source_ip="10.9.8.7", token=None, headers={}
    )

    assert received.status_code == 403
    assert "allow-list" in (_inbox(h, received.inbox_id).reason or "")


def test_callback_that_overtakes_the_push_answer_completes_on_its_token_url(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    token = h.get(payment_id).callback_token
    early = _deliver(h, stk_callback("ws_CO_TEST000001"), token)
    assert _inbox(h, early.inbox_id).state == inbox.PROCESSED

    initiation.send_push(h.container, payment_id)  # its answer names ws_CO_TEST000001 too

    done = h.get(payment_id)
    assert (done.status, done.checkout_request_id) == ("completed", "ws_CO_TEST000001")


def test_callback_on_the_bare_url_before_the_push_answer_is_kept_and_moves_nothing(
    h: Harness,
) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    early = _deliver(h, stk_callback("ws_CO_TEST000001"))

    assert _inbox(h, early.inbox_id).state == inbox.UNTRUSTED
    assert h.get(payment_id).status == "created"


def test_callback_on_the_payment_url_completes_a_push_whose_answer_was_lost(h: Harness) -> None:
    payment_id = initiation.initiate(h.container, new_payment()).payment.id
    h.daraja.push_answers.append(
        OutcomeUnknown("read timeout", reason=Reason.TIMEOUT, kind=AnswerKind.TRANSPORT)
    )
    initiation.send_push(h.container, payment_id)
    record = h.get(payment_id)
    assert record.status == "unknown"

    _deliver(h, stk_callback("ws_CO_LOST"), record.callback_token)

    done = h.get(payment_id)
    assert (done.status, done.checkout_request_id) == ("completed", "ws_CO_LOST")


def test_receipt_already_recorded_for_another_payment_is_refused(h: Harness) -> None:
    first = h.pushed("254712345678")
    second = h.pushed("254712345679")
    _deliver(
        h, stk_callback(first.checkout_request_id or "", receipt="RCPT000001"), first.callback_token
    )

    replayed = _deliver(
        h,
        stk_callback(second.checkout_request_id or "", receipt="RCPT000001"),
        second.callback_token,
    )

    assert _inbox(h, replayed.inbox_id).state == inbox.REJECTED
    assert h.get(second.id).status == "pushed"


def test_a_callback_reporting_another_payments_receipt_is_refused_whatever_it_changes(
    h: Harness,
) -> None:
    first = h.pushed("254712345678")
    second = h.pushed("254712345679")
    _deliver(
        h, stk_callback(first.checkout_request_id or "", receipt="RCPT000002"), first.callback_token
    )

    # Paid, but not the amount asked for: the change would not write the receipt.
    replayed = _deliver(
        h,
        stk_callback(second.checkout_request_id or "", amount=1, receipt="RCPT000002"),
        second.callback_token,
    )

    assert _inbox(h, replayed.inbox_id).state == inbox.REJECTED
    assert h.get(second.id).status == "pushed"


def test_every_callback_that_reached_us_is_in_the_inbox(h: Harness) -> None:
    p = h.pushed()
    bodies = [
        b"",
        b"{}",
        b"[1]",
        stk_callback("ws_CO_OTHER"),
        stk_callback(p.checkout_request_id or ""),
    ]
    for body in bodies:
        callbacks.receive(h.container, body, source_ip="127.0.0.1", token=None, headers={})

    with h.container.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(callback_inbox)).scalar()
    assert stored == len(bodies)


def test_each_payment_as_written_is_the_row_a_read_gives_back(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A write does not read its row back: the record it returns is built from the values it
    # wrote. Through a push (sending, pushed) and a paid callback (completed), each must be
    # exactly what a read returns.
    compared: list[str] = []
    as_written = payments._as_written

    def checked(*args: object) -> payments.PaymentRecord:
        written = as_written(*args)  # type: ignore[arg-type]
        assert written == h.get(written.id)
        compared.append(written.status)
        return written

    monkeypatch.setattr(payments, "_as_written", checked)
    p = h.pushed()
    _deliver(h, stk_callback(p.checkout_request_id or ""), p.callback_token)

    assert compared == ["sending", "pushed", "completed"]


def test_a_payment_as_written_keeps_the_query_schedule_moved_since_it_was_read(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reconciliation pass moves `next_query_at` and `query_attempts` without a new
    # version, so a write decided on an older read must take them from its own row.
    as_written = payments._as_written
    written: list[payments.PaymentRecord] = []

    def kept(*args: object) -> payments.PaymentRecord:
        record = as_written(*args)  # type: ignore[arg-type]
        written.append(record)
        return record

    p = h.pushed()
    with h.container.engine.begin() as conn:
        due.schedule_query(conn, p.id, utcnow() + timedelta(minutes=5), 7)
    monkeypatch.setattr(payments, "_as_written", kept)
    _deliver(h, stk_callback(p.checkout_request_id or "", 1032), p.callback_token)

    [cancelled] = written
    assert cancelled.status == "cancelled"
    assert cancelled == h.get(p.id)
    assert cancelled.query_attempts == 7

"""Shop webhooks on PostgreSQL: queued in the payment's transaction, every attempt kept,
retried on the schedule, given up with an alert, redelivered with the same webhook-id."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from dramatiq.brokers.stub import StubBroker
from standardwebhooks import Webhook

from daraja.wire import QueryResult
from domain.payment import ResultReported, Source
from khalex_pay import cli
from payments import callbacks, reconciliation, shop_webhooks, webhook_sender
from payments.jobs import DELIVER_WEBHOOK, QUEUES
from payments.transitions import apply_fact
from store import payments, webhooks
from store.db import utcnow
from store.tables import alerts, metadata, outbox, webhook_attempts, webhook_events
from tests import services
from tests.factories import stk_callback
from tests.integration.conftest import Harness
from tests.webhook_receiver import Received, Receiver
from workers import actors

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"shop-side-secret-for-tests-32by").decode()


@dataclass
class Answers:
    """The statuses the shop's receiver gives, in turn; 200 once they run out."""

    queue: list[int] = field(default_factory=list)
    delay_s: float = 0.0

    def __call__(self) -> int:
        time.sleep(self.delay_s)
        return self.queue.pop(0) if self.queue else 200


@dataclass
class Shop:
    h: Harness
    answers: Answers
    receiver: Receiver
    alerts: Receiver

    def configure(self, **changes: Any) -> None:
        self.h.container.settings = dataclasses.replace(self.h.container.settings, **changes)

    def events(self) -> list[webhooks.WebhookEvent]:
        with self.h.container.engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_events).order_by(webhook_events.c.created_at))
            return [webhooks.WebhookEvent.from_row(r) for r in rows]

    def event(self, event_id: str) -> webhooks.WebhookEvent:
        with self.h.container.engine.connect() as conn:
            found = webhooks.get(conn, event_id)
        assert found is not None
        return found

    def attempts(self, event_id: str) -> list[dict[str, object]]:
        with self.h.container.engine.connect() as conn:
            return webhooks.attempts(conn, event_id)

    def completed(self, n: int = 1) -> str:
        """Payment `n` completed by its callback; returns the id of its webhook event."""
        p = self.h.pushed(f"2547120000{n:02d}")
        body = stk_callback(p.checkout_request_id or "", receipt=f"UJ22T8IY{n:02d}")
        received = callbacks.receive(
            self.h.container, body, source_ip="127.0.0.1", token=p.callback_token, headers={}
        )
        callbacks.process(self.h.container, received.inbox_id)
        [event] = [e for e in self.events() if e.payload["data"]["paymentId"] == p.id]
        return event.id


@pytest.fixture
def shop(h: Harness) -> Iterator[Shop]:
    answers = Answers()
    with Receiver(answers, body="thanks, got it") as receiver, Receiver() as alert_receiver:
        s = Shop(h, answers, receiver, alert_receiver)
        s.configure(
            shop_webhook_url=receiver.url, shop_webhook_secret=SECRET,
            shop_webhook_retry_s=(300.0, 3600.0), alert_webhook_url=alert_receiver.url,
        )  # fmt: skip
        yield s


def _verified(received: list[Received]) -> list[dict[str, Any]]:
    """Each POST as the shop's `standardwebhooks` verifier reads it (raises if forged)."""
    return [Webhook(SECRET).verify(r.body, r.headers) for r in received]


# Writing events in the payment's transaction --------------------------------------------------


def test_completed_payment_writes_its_event_and_delivery_job_in_the_same_transaction(
    shop: Shop,
) -> None:
    event_id = shop.completed()

    event = shop.event(event_id)
    assert (event.type, event.state, event.attempts) == ("payment.completed", "pending", 0)
    data = event.payload["data"]
    assert data["status"] == "completed"
    assert data["amount"] == 1500
    assert data["mpesaReceiptNumber"] == "UJ22T8IY01"
    assert data["phoneNumber"] == "2547****0001"
    assert data["lateSuccess"] is False
    assert event_id.startswith("msg_")
    assert len(event_id) == 36
    with shop.h.container.engine.connect() as conn:
        jobs = conn.execute(sa.select(outbox.c.actor, outbox.c.args)).all()
    assert (DELIVER_WEBHOOK.actor, [event_id]) in [tuple(j) for j in jobs]


def test_event_holds_no_personal_data(shop: Shop) -> None:
    event_id = shop.completed()

    text = json.dumps(shop.event(event_id).payload)
    for personal in ("254712000001", "0712000001", "Wanjiru", "wanjiru@example.com"):
        assert personal not in text


def test_rolled_back_payment_change_leaves_no_event(shop: Shop) -> None:
    p = shop.h.pushed()
    fact = ResultReported(Source.QUERY, 0, "ok", checkout_request_id=p.checkout_request_id)

    def change_then_fail() -> None:
        with shop.h.container.engine.begin() as conn:
            record = payments.get(conn, p.id)
            assert record is not None
            apply_fact(conn, shop.h.container.settings, record, fact)
            raise RuntimeError("the transaction fails after the change")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert shop.h.get(p.id).status == "pushed"
    assert shop.events() == []


def test_pending_moves_send_nothing_and_each_end_sends_its_own_event(shop: Shop) -> None:
    pending = shop.h.pushed("254711000001")
    assert shop.events() == []
    cancelled = shop.h.pushed("254711000002")
    received = callbacks.receive(
        shop.h.container, stk_callback(cancelled.checkout_request_id or "", 1032),
        source_ip="127.0.0.1", token=cancelled.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(shop.h.container, received.inbox_id)
    later = utcnow() + timedelta(seconds=shop.h.container.settings.payment_expiry_s + 1)
    reconciliation.tick(shop.h.container, later)  # expires `pending`
    shop.h.daraja.query_answers.append(QueryResult(0, "The service request is processed."))
    reconciliation.query_payment(shop.h.container, pending.id)  # ... which is then paid late

    sent = [(e.type, e.payload["data"]["paymentId"], e.payload["data"]) for e in shop.events()]
    assert [(t, pid) for t, pid, _ in sent] == [
        ("payment.cancelled", cancelled.id),
        ("payment.failed", pending.id),
        ("payment.completed", pending.id),
    ]
    assert sent[0][2]["failureReason"] == "cancelled_by_user"
    assert sent[1][2]["failureReason"] == "timeout"
    assert sent[2][2]["lateSuccess"] is True


def test_without_a_webhook_url_nothing_is_queued(shop: Shop) -> None:
    shop.configure(shop_webhook_url="")

    shop.h.pushed()
    with shop.h.container.engine.begin() as conn:
        returned = shop_webhooks.enqueue(conn, shop.h.container.settings, "order.confirmed", {})

    assert returned is None
    assert shop.events() == []


def test_enqueue_returns_the_id_of_the_event_it_wrote(shop: Shop) -> None:
    with shop.h.container.engine.begin() as conn:
        event_id = shop_webhooks.enqueue(
            conn, shop.h.container.settings, "order.confirmed", {"orderId": "ord-1"}
        )

    assert event_id is not None
    assert shop.event(event_id).payload["data"] == {"orderId": "ord-1"}


# Delivering ------------------------------------------------------------------------------------


def test_delivered_event_is_signed_and_its_attempt_kept(shop: Shop) -> None:
    event_id = shop.completed()

    shop_webhooks.deliver(shop.h.container, event_id)

    [body] = _verified(shop.receiver.received)
    assert body["type"] == "payment.completed"
    assert body["data"]["mpesaReceiptNumber"] == "UJ22T8IY01"
    assert shop.receiver.received[0].headers["webhook-id"] == event_id
    event = shop.event(event_id)
    assert (event.state, event.attempts, event.next_attempt_at) == ("delivered", 1, None)
    assert event.delivered_at is not None
    [attempt] = shop.attempts(event_id)
    assert (attempt["http_status"], attempt["answer"], attempt["error"]) == (
        200, "thanks, got it", None,
    )  # fmt: skip
    assert isinstance(attempt["latency_ms"], int)
    assert attempt["latency_ms"] >= 0


def test_job_delivered_again_for_a_delivered_event_sends_nothing(shop: Shop) -> None:
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)

    assert shop_webhooks.deliver(shop.h.container, event_id) is None

    assert len(shop.receiver.received) == 1
    assert len(shop.attempts(event_id)) == 1


def test_refused_attempt_is_kept_and_the_next_is_scheduled(shop: Shop) -> None:
    shop.answers.queue[:] = [503]
    event_id = shop.completed()
    before = utcnow()

    outcome = shop_webhooks.deliver(shop.h.container, event_id)

    assert outcome is not None
    assert outcome.state == "pending"
    event = shop.event(event_id)
    assert event.attempts == 1
    assert event.next_attempt_at is not None
    assert timedelta(seconds=299) < event.next_attempt_at - before < timedelta(seconds=310)
    [attempt] = shop.attempts(event_id)
    assert (attempt["http_status"], attempt["answer"]) == (503, "thanks, got it")


def test_job_for_an_attempt_not_due_yet_sends_nothing(shop: Shop) -> None:
    shop.answers.queue[:] = [503]
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)

    assert shop_webhooks.deliver(shop.h.container, event_id) is None  # a stale duplicate job

    assert len(shop.receiver.received) == 1


def test_unreachable_shop_counts_as_an_attempt_with_the_error(shop: Shop) -> None:
    shop.configure(shop_webhook_url=f"http://127.0.0.1:{services.free_port()}/hooks")
    event_id = shop.completed()

    shop_webhooks.deliver(shop.h.container, event_id)

    [attempt] = shop.attempts(event_id)
    assert attempt["http_status"] is None
    assert "ConnectError" in str(attempt["error"])
    assert shop.event(event_id).state == "pending"


def test_slow_shop_is_cut_off_at_the_total_timeout(shop: Shop) -> None:
    shop.answers.delay_s = 3.0
    headers = webhook_sender.headers(b"k" * 32, "msg_slow", "{}", time.time())

    answer = webhook_sender.send(shop.receiver.url, "{}", headers, total_s=1.0)

    assert answer.http_status is None
    assert answer.error == "no answer within 1 s"
    assert answer.latency_ms < 2000


def test_attempt_under_way_is_not_made_twice(shop: Shop) -> None:
    event_id = shop.completed()
    with shop.h.container.engine.begin() as conn:
        webhooks.update(conn, event_id, sending_until=utcnow() + timedelta(seconds=20))

    assert shop_webhooks.deliver(shop.h.container, event_id) is None
    with pytest.raises(shop_webhooks.Busy):
        shop_webhooks.redeliver(shop.h.container, event_id)
    assert shop.receiver.received == []


# Retrying, giving up, redelivering -----------------------------------------------------------


def test_scheduler_queues_due_events_once_and_the_retry_keeps_the_webhook_id(shop: Shop) -> None:
    shop.configure(shop_webhook_retry_s=(0.0,))
    shop.answers.queue[:] = [503]
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)
    shop.h.published.clear()

    queued = shop_webhooks.redrive(shop.h.container)
    again = shop_webhooks.redrive(shop.h.container)

    assert (queued, again) == (1, 0)
    assert [(j.actor, j.args) for j in shop.h.published] == [(DELIVER_WEBHOOK.actor, [event_id])]
    shop_webhooks.deliver(shop.h.container, event_id)
    assert [r.headers["webhook-id"] for r in shop.receiver.received] == [event_id, event_id]
    assert len(_verified(shop.receiver.accepted())) == 1
    assert shop.event(event_id).state == "delivered"


def test_event_not_due_is_not_queued(shop: Shop) -> None:
    shop.answers.queue[:] = [503]
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)

    assert shop_webhooks.redrive(shop.h.container) == 0
    assert shop_webhooks.redrive(shop.h.container, utcnow() + timedelta(seconds=301)) == 1


def test_event_refused_for_the_whole_schedule_fails_with_one_alert(shop: Shop) -> None:
    shop.configure(shop_webhook_retry_s=(0.0, 0.0))
    shop.answers.queue[:] = [500, 500, 500, 500]
    event_id = shop.completed()

    states = [shop_webhooks.deliver(shop.h.container, event_id) for _ in range(4)]

    assert [o.state if o else None for o in states] == ["pending", "pending", "failed", None]
    event = shop.event(event_id)
    assert (event.state, event.attempts, event.next_attempt_at) == ("failed", 3, None)
    assert [a["http_status"] for a in shop.attempts(event_id)] == [500, 500, 500]
    [alert] = [json.loads(r.body) for r in shop.alerts.received]
    assert alert["alert"] == "webhook_failed"
    assert alert["details"]["eventId"] == event_id
    assert f"khalex-pay webhooks redeliver {event_id}" in alert["message"]
    with shop.h.container.engine.connect() as conn:
        keys = conn.execute(sa.select(alerts.c.key)).scalars().all()
    assert keys == [f"webhook_failed:{event_id}"]
    assert shop_webhooks.redrive(shop.h.container, utcnow() + timedelta(days=4)) == 0


def test_an_alert_names_an_event_id_holding_a_phone_like_run_whole(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This id's tail `784484237` reads like a mobile number; log masking once hid its digits
    # in the alert, so the redeliver command it gave named no event.
    held = "msg_a7ccb299a7454107b901bdc784484237"
    monkeypatch.setattr(shop_webhooks, "new_event_id", lambda: held)
    shop.configure(shop_webhook_retry_s=())
    shop.answers.queue[:] = [500]
    event_id = shop.completed()
    assert event_id == held

    shop_webhooks.deliver(shop.h.container, event_id)

    [alert] = [json.loads(r.body) for r in shop.alerts.received]
    assert alert["details"]["eventId"] == event_id
    assert f"khalex-pay webhooks redeliver {event_id}" in alert["message"]


def test_redeliver_sends_a_failed_event_again_with_its_id(shop: Shop) -> None:
    shop.configure(shop_webhook_retry_s=())
    shop.answers.queue[:] = [500]
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)
    assert shop.event(event_id).state == "failed"

    outcome = shop_webhooks.redeliver(shop.h.container, event_id)

    assert outcome is not None
    assert outcome.answer.delivered
    assert shop.event(event_id).state == "delivered"
    assert [r.headers["webhook-id"] for r in shop.receiver.received] == [event_id, event_id]
    assert [a["manual"] for a in shop.attempts(event_id)] == [False, True]


def test_redeliver_of_an_unknown_event_is_none(shop: Shop) -> None:
    assert shop_webhooks.redeliver(shop.h.container, "msg_nope") is None


# The command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.setenv("DATABASE_URL", shop.h.container.settings.database_url)
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("SHOP_WEBHOOK_URL", shop.receiver.url)
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SECRET)
    return shop


def test_webhooks_list_shows_events_with_their_last_attempt(
    cli_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = cli_env
    shop.answers.queue[:] = [503]
    refused = shop.completed()
    shop_webhooks.deliver(shop.h.container, refused)
    delivered = shop.completed(2)
    shop_webhooks.deliver(shop.h.container, delivered)

    code = cli.main(["webhooks", "list"])
    out = capsys.readouterr().out.splitlines()
    pending_only = cli.main(["webhooks", "list", "--state", "pending", "--limit", "5"])
    pending_out = capsys.readouterr().out.splitlines()

    assert code == pending_only == 0
    assert [line.split()[0] for line in out] == [delivered, refused]
    assert [line.split()[2] for line in out] == ["payment", "payment"]
    assert "delivered" in out[0]
    assert "last HTTP 200 in" in out[0]
    assert "pending" in out[1]
    assert "last HTTP 503 in" in out[1]
    assert "next " in out[1]
    assert [line.split()[0] for line in pending_out] == [refused]


def test_webhooks_redeliver_sends_now_and_says_how_it_went(
    cli_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = cli_env
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)

    code = cli.main(["webhooks", "redeliver", event_id])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{event_id}: delivered (HTTP 200 in ")
    assert len(_verified(shop.receiver.received)) == 2


def test_webhooks_redeliver_of_an_unknown_id_is_one_error_line(
    cli_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["webhooks", "redeliver", "msg_unknown"])

    err = capsys.readouterr().err
    assert code == 1
    assert err == "khalex-pay: no webhook event 'msg_unknown'\n"


def test_webhooks_redeliver_that_is_refused_fails_with_the_answer(
    cli_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = cli_env
    shop.answers.queue[:] = [503, 503]
    event_id = shop.completed()
    shop_webhooks.deliver(shop.h.container, event_id)

    code = cli.main(["webhooks", "redeliver", event_id])

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith(f"khalex-pay: {event_id} not delivered (HTTP 503 in ")
    assert "thanks, got it" in err[0]
    assert "pending, next attempt" in err[0]


# Schema ------------------------------------------------------------------------------------


def test_scheduler_pass_finds_due_events_through_the_partial_index(shop: Shop) -> None:
    statements: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, params: object, *a: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "webhook_events" in statement:
            statements.append((statement, params))

    engine = shop.h.container.engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        shop_webhooks.redrive(shop.h.container)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)

    [(statement, params)] = statements
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, params).scalars())  # type: ignore[arg-type]
    assert "ix_webhook_events_due" in plan


def test_migration_creates_the_webhook_tables_as_declared(shop: Shop) -> None:
    with shop.h.container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    mine = (webhook_events.name, webhook_attempts.name)
    assert [d for d in diff if any(name in repr(d) for name in mine)] == []


# The worker ------------------------------------------------------------------------------------


def test_webhook_actor_has_its_own_queue_low_priority_and_explicit_limits() -> None:
    stub = StubBroker()
    for queue in QUEUES:
        stub.declare_queue(queue)

    actor = actors.register(stub, expiry_s=180)[DELIVER_WEBHOOK.actor]

    assert actor.queue_name == "webhooks"
    assert actor.priority == actors.WEBHOOK_PRIORITY > 0
    assert (actor.options["max_retries"], actor.options["time_limit"]) == (3, 60_000)


def test_webhook_job_without_a_free_thread_is_postponed_not_sent(shop: Shop) -> None:
    event_id = shop.completed()
    actors.bind(shop.h.container)
    slots = [actors._webhook_slots.acquire(blocking=False) for _ in range(actors.WEBHOOK_THREADS)]
    try:
        actors.deliver_webhook(event_id)  # every webhook thread is waiting on the shop
    finally:
        for _ in slots:
            actors._webhook_slots.release()

    assert shop.receiver.received == []
    next_at = shop.event(event_id).next_attempt_at
    assert next_at is not None
    assert next_at - utcnow() <= shop_webhooks.POSTPONE
    assert shop_webhooks.redrive(shop.h.container) == 0
    assert shop_webhooks.redrive(shop.h.container, utcnow() + timedelta(seconds=6)) == 1

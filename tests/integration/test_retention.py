"""Raw records go after RETENTION_DAYS, in small batches; payments and their events stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from operations import retention
from payments import callbacks
from payments import orders as order_cases
from store import deliveries, refusals
from store.db import utcnow
from store.retention import KINDS
from store.tables import (
    callback_inbox,
    daraja_exchanges,
    job_deliveries,
    order_events,
    orders,
    outbox,
    payment_events,
    payments,
    refused_requests,
)
from tests.factories import stk_callback
from tests.integration.conftest import Harness
from tests.integration.test_orders import new_order

pytestmark = pytest.mark.integration

#: Every table the purge may touch, with its time column.
AGED = (
    (callback_inbox, "received_at"), (daraja_exchanges, "sent_at"),
    (refused_requests, "received_at"), (outbox, "sent_at"), (outbox, "created_at"),
    (job_deliveries, "last_started_at"), (payments, "created_at"), (payment_events, "created_at"),
)  # fmt: skip


def _raw_records(h: Harness) -> None:
    """A paid payment with its callback, exchanges and jobs; a refused request; a delivery."""
    p = h.pushed()
    callbacks.process(
        h.container,
        callbacks.receive(
            h.container, stk_callback(p.checkout_request_id or ""), source_ip="196.201.214.200",
            token=p.callback_token, headers={},
        ).inbox_id,
    )  # fmt: skip
    h.container.flush_sent()  # or a late batch of sent marks would make the jobs young again
    with h.container.engine.begin() as conn:
        refusals.add(
            conn, path="/api/payments/initiate", status_code=400, code="malformed_json",
            field=None, reason="junk", idempotency_key=None, body=b"junk",
        )  # fmt: skip
        deliveries.started(conn, "msg-1", "payments", "send_push", [p.id])
        deliveries.finished(conn, "msg-1", None)
        conn.execute(outbox.update().values(sent_at=utcnow()))


def _age_everything(h: Harness, days: int) -> None:
    then = utcnow() - timedelta(days=days)
    with h.container.engine.begin() as conn:
        for table, column in AGED:
            conn.execute(table.update().where(table.c[column].is_not(None)).values({column: then}))


def _count(h: Harness, table: sa.Table) -> int:
    with h.container.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_raw_records_older_than_the_retention_are_purged_and_payments_kept(h: Harness) -> None:
    _raw_records(h)
    _age_everything(h, days=91)
    events = _count(h, payment_events)

    purged = retention.purge(h.container)

    assert purged == {
        "callback_inbox": 1, "daraja_exchanges": 1, "refused_requests": 1, "c2b_payments": 0,
        "outbox": 2, "job_deliveries": 1,
    }  # fmt: skip
    for table in (callback_inbox, daraja_exchanges, refused_requests, outbox, job_deliveries):
        assert _count(h, table) == 0, table.name
    assert (_count(h, payments), _count(h, payment_events)) == (1, events)


def test_records_younger_than_the_retention_are_kept(h: Harness) -> None:
    _raw_records(h)
    _age_everything(h, days=89)

    assert set(retention.purge(h.container).values()) == {0}
    assert _count(h, callback_inbox) == 1


def test_work_not_done_is_never_purged(h: Harness) -> None:
    _raw_records(h)
    with h.container.engine.begin() as conn:
        conn.execute(callback_inbox.update().values(state="received"))  # a worker still owes it
        conn.execute(outbox.update().values(sent_at=None))  # the relay still owes it
        deliveries.started(conn, "msg-1", "payments", "send_push", ["x"])  # running again
    _age_everything(h, days=200)

    purged = retention.purge(h.container)

    assert (purged["callback_inbox"], purged["outbox"], purged["job_deliveries"]) == (0, 0, 0)


def test_purge_deletes_in_small_batches_each_in_its_own_transaction(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        for n in range(7):
            refusals.add(
                conn, path="/x", status_code=400, code="malformed_json", field=None,
                reason=str(n), idempotency_key=None, body=b"{",
            )  # fmt: skip
    _age_everything(h, days=100)
    commits: list[object] = []
    count = commits.append
    sa.event.listen(h.container.engine, "commit", count)
    try:
        purged = retention.purge(h.container, batch=3)
    finally:
        sa.event.remove(h.container.engine, "commit", count)

    assert purged["refused_requests"] == 7
    # refused_requests takes three batches (3, 3, 1); each other kind one empty batch.
    assert len(commits) == 3 + len(KINDS) - 1


def test_orders_and_payments_older_than_the_retention_stay_whole_and_readable(
    h: Harness,
) -> None:
    order = order_cases.create(h.container, new_order(customer_phone="254712000444"))
    paid = order_cases.initiate_payment(h.container, order.order.id, "254712000444")
    _raw_records(h)
    _age_everything(h, days=400)
    with h.container.engine.begin() as conn:
        conn.execute(orders.update().values(created_at=utcnow() - timedelta(days=400)))
    kept = (_count(h, orders), _count(h, order_events), _count(h, payments))

    retention.purge(h.container)

    assert (_count(h, orders), _count(h, order_events), _count(h, payments)) == kept
    after = order_cases.get(h.container, order.order.id).order
    assert (after.customer_phone, after.total_amount) == ("254712000444", order.order.total_amount)
    assert h.get(paid.payment.id).phone_number == "254712000444"

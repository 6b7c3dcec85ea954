"""`/metrics` pinned against a known set of payments made through the real use cases.

Timestamps are then set to known values, so every histogram bucket has one right answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from litestar.testing import TestClient
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from daraja.wire import QueryResult
from operations.dlq import StubQueues
from operations.metrics import DatabaseCollector, QueueCollector
from payments import callbacks, initiation, reconciliation
from payments.jobs import QUERY_PAYMENT, QUEUES
from store import deliveries, outbox
from store.db import utcnow
from store.exchanges import StoreRecorder
from store.payments import PaymentRecord
from store.tables import callback_inbox
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness, new_payment

pytestmark = pytest.mark.integration

#: The scrape's "now": the payments below are dated relative to it.
NOW = utcnow().replace(microsecond=0)
T0 = NOW - timedelta(minutes=10)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class World:
    paid: PaymentRecord
    cancelled: PaymentRecord
    no_funds: PaymentRecord
    late: PaymentRecord
    created: PaymentRecord
    pushed: PaymentRecord


def _callback(h: Harness, p: PaymentRecord, code: int = 0, *, process: bool = True) -> int:
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", code, receipt=f"R{p.id[:8]}"),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    if process:
        callbacks.process(h.container, received.inbox_id)
    return received.inbox_id


def _dates(h: Harness, p: PaymentRecord, created: datetime, finished: datetime | None) -> None:
    with h.container.engine.begin() as conn:
        conn.execute(
            payments_table.update()
            .where(payments_table.c.id == p.id)
            .values(created_at=created, finished_at=finished)
        )


def _received(h: Harness, inbox_id: int, at: datetime) -> None:
    with h.container.engine.begin() as conn:
        conn.execute(
            callback_inbox.update().where(callback_inbox.c.id == inbox_id).values(received_at=at)
        )


def _make_world(h: Harness) -> World:
    """Six payments, one of each fate, dated so each lands in a known bucket."""
    paid = h.pushed("254711000001")
    paid_cb = _callback(h, paid)
    cancelled = h.pushed("254711000002")
    cancelled_cb = _callback(h, cancelled, 1032)
    no_funds = h.pushed("254711000003")
    h.daraja.query_answers.append(QueryResult(1, "The balance is insufficient"))
    reconciliation.query_payment(h.container, no_funds.id)
    late = h.pushed("254711000004")
    expiry = h.container.settings.payment_expiry_s
    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))
    late_cb = _callback(h, late)
    created = initiation.initiate(h.container, new_payment("254711000005")).payment
    pushed = h.pushed("254711000006")
    _callback(h, pushed, process=False)  # stored, not yet processed: the inbox backlog

    _dates(h, paid, T0, T0 + timedelta(seconds=3))
    _received(h, paid_cb, T0 + timedelta(seconds=2.7))  # 0.3 s before it settled
    _dates(h, cancelled, T0, T0 + timedelta(seconds=8))
    _received(h, cancelled_cb, T0 + timedelta(seconds=6))  # 2 s before
    _dates(h, no_funds, T0, T0 + timedelta(seconds=25))
    _dates(h, late, T0, T0 + timedelta(seconds=190))
    _received(h, late_cb, T0 + timedelta(seconds=400))  # after the expiry: not counted
    _dates(h, created, NOW - timedelta(seconds=100), None)
    _dates(h, pushed, NOW - timedelta(seconds=50), None)
    return World(paid, cancelled, no_funds, late, created, pushed)


def _more_daraja_calls(h: Harness) -> None:
    """Calls beyond the scripted pushes (200 in 5 ms each), one per outcome."""
    recorder = StoreRecorder(h.container.engine, None)
    for operation, status, error, elapsed_ms in (
        ("stk_query", 200, None, 300),
        ("stk_query", 500, None, 1200),
        ("stk_push", 400, None, 80),
        ("stk_push", None, "read timed out", 10_000),
    ):
        handle = recorder.request_sent(operation, "http://daraja", {})
        recorder.answer_received(handle, status, "{}", error, elapsed_ms)
    recorder.request_sent("stk_query", "http://daraja", {})  # still in flight: not counted


def _more_backlog(h: Harness, world: World) -> None:
    with h.container.engine.begin() as conn:
        outbox.add(conn, *QUERY_PAYMENT, world.pushed.id)
        outbox.add(conn, *QUERY_PAYMENT, world.created.id)
        deliveries.started(conn, "poison-1", "payments", "send_push", [world.created.id])
        deliveries.dead_lettered(conn, "poison-1", "kills its worker")


def _scrape(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def samples(h: Harness) -> Samples:
    world = _make_world(h)
    _more_daraja_calls(h)
    _more_backlog(h, world)
    h.container.flush_sent()  # published jobs are marked sent a moment later: settle that now
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(h.container.engine, clock=lambda: NOW))
    return _scrape(registry)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _buckets(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    return {
        dict(key)["le"]: value
        for (sample, key), value in samples.items()
        if sample == f"{name}_bucket" and {k: v for k, v in key if k != "le"} == labels
    }


def test_payments_are_counted_by_status(samples: Samples) -> None:
    by_status = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "khalex_payments"
    }

    assert by_status == {
        "created": 1, "sending": 0, "pushed": 1, "unknown": 0,
        "completed": 2, "failed": 1, "cancelled": 1,
    }  # fmt: skip


def test_failures_are_counted_by_reason_and_a_late_success_is_no_failure(
    samples: Samples,
) -> None:
    reasons = {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "khalex_payment_failures"
    }

    assert reasons == {"cancelled_by_user": 1, "insufficient_funds": 1}
    assert _value(samples, "khalex_late_successes_total") == 1


def test_daraja_calls_are_counted_by_operation_and_outcome(samples: Samples) -> None:
    calls = {
        (dict(labels)["operation"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "khalex_daraja_calls_total"
    }

    assert calls == {
        ("stk_push", "ok"): 5,
        ("stk_push", "http_4xx"): 1,
        ("stk_push", "transport_error"): 1,
        ("stk_query", "ok"): 1,
        ("stk_query", "http_5xx"): 1,
    }


def test_daraja_latency_histogram_buckets_each_answered_call(samples: Samples) -> None:
    name = "khalex_daraja_call_duration_seconds"

    push = _buckets(samples, name, operation="stk_push")
    query = _buckets(samples, name, operation="stk_query")

    assert push == {
        "0.05": 5, "0.1": 6, "0.25": 6, "0.5": 6, "1.0": 6, "2.5": 6, "5.0": 6, "10.0": 7,
        "30.0": 7, "+Inf": 7,
    }  # fmt: skip
    assert _value(samples, f"{name}_sum", operation="stk_push") == pytest.approx(10.105)
    assert (query["0.25"], query["0.5"], query["1.0"], query["2.5"]) == (0, 1, 1, 2)
    assert _value(samples, f"{name}_count", operation="stk_query") == 2
    assert _value(samples, f"{name}_sum", operation="stk_query") == pytest.approx(1.5)


def test_processing_time_histogram_runs_from_initiate_to_the_first_final_state(
    samples: Samples,
) -> None:
    name = "khalex_payment_processing_seconds"

    completed = _buckets(samples, name, status="completed")

    assert (completed["2.0"], completed["5.0"]) == (0, 1)  # paid in 3 s
    assert (completed["180.0"], completed["300.0"]) == (1, 2)  # the late one: expired at 190 s
    assert _value(samples, f"{name}_sum", status="completed") == pytest.approx(193)
    assert _buckets(samples, name, status="cancelled")["10.0"] == 1
    assert _buckets(samples, name, status="cancelled")["5.0"] == 0
    assert _buckets(samples, name, status="failed")["20.0"] == 0
    assert _buckets(samples, name, status="failed")["30.0"] == 1
    assert {dict(k).get("status") for (n, k) in samples if n == f"{name}_count"} == {
        "completed", "cancelled", "failed",
    }  # fmt: skip


def test_callback_to_final_counts_only_payments_a_callback_settled(samples: Samples) -> None:
    name = "khalex_callback_to_final_seconds"

    buckets = _buckets(samples, name)

    assert _value(samples, f"{name}_count") == 2  # the late callback came after the expiry
    assert (buckets["0.25"], buckets["0.5"], buckets["1.0"], buckets["2.5"]) == (0, 1, 1, 2)
    assert _value(samples, f"{name}_sum") == pytest.approx(2.3)


def test_reconciliation_lag_is_the_age_of_the_oldest_pushed_pending_payment(
    samples: Samples,
) -> None:
    # The created-only payment is older (100 s) but was never pushed: not a query's business.
    assert _value(samples, "khalex_reconciliation_lag_seconds") == 50


def test_backlogs_and_dead_jobs_are_counted(samples: Samples) -> None:
    assert _value(samples, "khalex_outbox_backlog") == 2
    assert _value(samples, "khalex_inbox_backlog") == 1
    assert _value(samples, "khalex_jobs_dead_lettered", queue="payments") == 1
    assert _value(samples, "khalex_jobs_dead_lettered", queue="callbacks") == 0
    assert _value(samples, "khalex_database_up") == 1


# --- Over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def stub_broker() -> StubBroker:
    broker = StubBroker()
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


@pytest.fixture
def client(h: Harness, stub_broker: StubBroker) -> Iterator[TestClient[Any]]:
    app = create_app(h.container, queues=StubQueues(stub_broker))
    with TestClient(app=app) as test_client:
        yield test_client


def test_metrics_endpoint_needs_no_token_and_reads_the_database(
    h: Harness, client: TestClient[Any]
) -> None:
    h.pushed("254711000009")

    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    assert scraped[("khalex_payments", (("status", "pushed"),))] == 1
    assert scraped[("khalex_broker_up", ())] == 1
    assert scraped[("khalex_queue_depth", (("queue", "payments"),))] == 0


def test_metrics_still_answer_when_the_broker_cannot_be_read(h: Harness) -> None:
    class Broken(StubQueues):
        def stats(self) -> list[Any]:
            raise ConnectionError("redis is down")

    registry = CollectorRegistry()
    registry.register(QueueCollector(Broken(StubBroker())))
    registry.register(DatabaseCollector(h.container.engine))

    samples = _scrape(registry)

    assert _value(samples, "khalex_broker_up") == 0
    assert _value(samples, "khalex_database_up") == 1
    assert not any(name == "khalex_queue_depth" for name, _ in samples)


def test_queue_gauges_read_the_stub_broker_in_dev_mode(stub_broker: StubBroker) -> None:
    import dramatiq

    born = int((NOW - timedelta(seconds=42)).timestamp() * 1000)
    for n in range(2):
        stub_broker.enqueue(
            dramatiq.Message(
                queue_name="payments", actor_name="send_push", args=(f"p-{n}",), kwargs={},
                options={}, message_timestamp=born + n,
            )
        )  # fmt: skip
    stub_broker.enqueue(
        dramatiq.Message(
            queue_name="reconcile", actor_name="query_payment", args=("p-9",), kwargs={},
            options={},
        ),
        delay=60_000,
    )  # fmt: skip
    registry = CollectorRegistry()
    registry.register(QueueCollector(StubQueues(stub_broker, clock=NOW.timestamp)))

    samples = _scrape(registry)

    assert _value(samples, "khalex_queue_depth", queue="payments") == 2
    assert _value(samples, "khalex_queue_oldest_age_seconds", queue="payments") == 42
    assert _value(samples, "khalex_queue_delayed", queue="reconcile") == 1
    assert _value(samples, "khalex_queue_depth", queue="reconcile") == 0


def test_scrape_reads_the_database_each_time(h: Harness, client: TestClient[Any]) -> None:
    def completed() -> float:
        text = client.get("/metrics").text
        return next(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "khalex_payments" and s.labels == {"status": "completed"}
        )

    before = completed()
    p = h.pushed("254711000010")
    _callback(h, p)

    assert (before, completed()) == (0, 1)


def test_payment_counts_do_not_depend_on_the_process_that_made_them(h: Harness) -> None:
    # Written straight to the database, as a worker process would: no in-process counter.
    p = h.pushed("254711000011")
    with h.container.engine.begin() as conn:
        conn.execute(
            sa.update(payments_table).where(payments_table.c.id == p.id).values(status="unknown")
        )
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(h.container.engine))

    assert _value(_scrape(registry), "khalex_payments", status="unknown") == 1

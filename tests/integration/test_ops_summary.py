"""`/api/ops/summary` and `/api/ops/stuck` for a known mix of payments, made by the use cases."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from daraja.wire import QueryResult
from operations import ops
from operations.dlq import NoQueues
from operations.operator_tokens import issue_token
from payments import callbacks, reconciliation
from store.db import utcnow
from store.payments import PaymentRecord
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

SECRET = "ops-test-secret-0123456789abcdef-0123456789"


def _callback(h: Harness, p: PaymentRecord, code: int = 0) -> None:
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", code, receipt=f"R{p.id[:8]}"),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)


def _date(h: Harness, p: PaymentRecord, created: datetime, took_s: float | None) -> None:
    finished = None if took_s is None else created + timedelta(seconds=took_s)
    with h.container.engine.begin() as conn:
        conn.execute(
            payments_table.update()
            .where(payments_table.c.id == p.id)
            .values(created_at=created, finished_at=finished)
        )


def _mix(h: Harness, now: datetime) -> None:
    """Six payments in the last hour, two more earlier today, one yesterday."""
    timed_out, late = h.pushed("254722000004"), h.pushed("254722000008")
    expiry = h.container.settings.payment_expiry_s
    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))
    _callback(h, late)  # paid after we gave up: completed, flagged late
    paid, paid_too = h.pushed("254722000001"), h.pushed("254722000002")
    _callback(h, paid)
    _callback(h, paid_too)
    cancelled = h.pushed("254722000003")
    _callback(h, cancelled, 1032)
    no_funds = h.pushed("254722000005")
    h.daraja.query_answers.append(QueryResult(1, "The balance is insufficient"))
    reconciliation.query_payment(h.container, no_funds.id)
    earlier, yesterday = h.pushed("254722000007"), h.pushed("254722000009")
    _callback(h, earlier)
    _callback(h, yesterday)
    waiting = h.pushed("254722000006")

    hour_ago, today, long_ago = (now - timedelta(minutes=30), now - timedelta(hours=5),
                                 now - timedelta(hours=30))  # fmt: skip
    for p, created, took_s in (
        (paid, hour_ago, 4), (paid_too, hour_ago, 10), (cancelled, hour_ago, 20),
        (timed_out, hour_ago, 180), (no_funds, hour_ago, 6), (waiting, hour_ago, None),
        (earlier, today, 2), (late, today, 190), (yesterday, long_ago, 1),
    ):  # fmt: skip
        _date(h, p, created, took_s)


def test_last_hour_counts_rates_and_times(h: Harness) -> None:
    now = utcnow()
    _mix(h, now)

    with h.container.engine.connect() as conn:
        hour = ops.summary(conn, now)["lastHour"]

    assert (hour.initiated, hour.pending, hour.completed, hour.failed, hour.cancelled) == (
        6, 1, 2, 2, 1,
    )  # fmt: skip
    assert (hour.final, hour.success_rate, hour.abandonment) == (5, 0.4, 0.4)
    assert dict(hour.failure_reasons) == {
        "cancelled_by_user": 1, "insufficient_funds": 1, "timeout": 1,
    }  # fmt: skip
    assert hour.late_successes == 0
    assert hour.durations == pytest.approx([4, 6, 10, 20, 180])
    assert ops.percentile(hour.durations, 50) == 10
    assert ops.percentile(hour.durations, 95) == 148  # 20 + 0.8 x (180 - 20)


def test_last_day_adds_earlier_payments_and_the_late_success(h: Harness) -> None:
    now = utcnow()
    _mix(h, now)

    with h.container.engine.connect() as conn:
        day = ops.summary(conn, now)["lastDay"]

    assert (day.initiated, day.completed, day.failed, day.cancelled, day.late_successes) == (
        8, 4, 2, 1, 1,
    )  # fmt: skip
    assert (day.success_rate, day.abandonment) == (0.5714, 0.2857)
    assert ops.percentile(day.durations, 50) == 10
    assert ops.percentile(day.durations, 95) == 187  # 180 + 0.7 x (190 - 180)
    assert day.buckets() == [
        (2.0, 1), (5.0, 1), (10.0, 2), (20.0, 1), (30.0, 0), (60.0, 0), (120.0, 0),
        (180.0, 1), (300.0, 1), (600.0, 0), (None, 0),
    ]  # fmt: skip


def test_summary_of_no_payments_has_no_rates(h: Harness) -> None:
    with h.container.engine.connect() as conn:
        hour = ops.summary(conn)["lastHour"]

    assert (hour.initiated, hour.success_rate, hour.abandonment) == (0, None, None)
    assert ops.percentile(hour.durations, 50) is None


# --- Over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    h.container.settings = dataclasses.replace(h.container.settings, jwt_secret=SECRET)
    app = create_app(h.container, queues=NoQueues())
    with TestClient(app=app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {issue_token(SECRET)}"
        yield test_client


def test_summary_endpoint_answers_both_windows_in_camel_case(
    h: Harness, client: TestClient[Any]
) -> None:
    _mix(h, utcnow())

    answer = client.get("/api/ops/summary").json()

    hour = answer["lastHour"]
    assert {k: hour[k] for k in ("initiated", "completed", "failed", "cancelled", "pending")} == {
        "initiated": 6, "completed": 2, "failed": 2, "cancelled": 1, "pending": 1,
    }  # fmt: skip
    assert (hour["successRate"], hour["abandonment"], hour["lateSuccesses"]) == (0.4, 0.4, 0)
    assert hour["processingSeconds"] == {"count": 5, "median": 10.0, "p95": 148.0}
    assert hour["failureReasons"] == {
        "cancelled_by_user": 1, "insufficient_funds": 1, "timeout": 1,
    }  # fmt: skip
    assert answer["lastDay"]["lateSuccesses"] == 1
    assert answer["lastDay"]["processingBuckets"][-1] == {"le": None, "count": 0}


def test_stuck_lists_pending_payments_past_the_query_delay_with_masked_phones(
    h: Harness, client: TestClient[Any]
) -> None:
    now = utcnow()
    old, fresh, done = (h.pushed("254733000001"), h.pushed("254733000002"),
                        h.pushed("254733000003"))  # fmt: skip
    _callback(h, done)
    _date(h, old, now - timedelta(seconds=95), None)
    _date(h, done, now - timedelta(seconds=300), 3)

    answer = client.get("/api/ops/stuck").json()

    assert (answer["olderThanSeconds"], answer["count"]) == (20, 1)
    [stuck] = answer["payments"]
    assert (stuck["paymentId"], stuck["status"], stuck["phoneNumber"]) == (
        old.id, "pushed", "2547****0001",
    )  # fmt: skip
    assert 95 <= stuck["ageSeconds"] < 120
    assert stuck["nextQueryAt"] is not None
    assert fresh.id not in str(answer)
    assert "254733000001" not in str(answer)

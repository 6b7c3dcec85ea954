"""`/metrics`: Prometheus collectors that read the sources of truth at every scrape.

No counter lives in a process: the API, the workers and the scheduler each change the
database and the broker, so a scrape of any API process reports the whole system. Queue
figures come from the broker (`operations.dlq`), everything else from SQL aggregates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from domain.payment import Status
from operations.dlq import QueueReader
from operations.ops import PROCESSING_BUCKETS_S, seconds_between
from payments.jobs import QUEUES
from store import inbox
from store.db import utcnow
from store.tables import (
    c2b_payments,
    callback_inbox,
    daraja_exchanges,
    job_deliveries,
    outbox,
    payments,
)

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the Daraja call latency buckets.
DARAJA_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Upper bounds (seconds) from a callback's arrival to its payment's final state.
CALLBACK_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Statuses of a payment whose push left and whose outcome we still wait for.
AWAITING_OUTCOME = ("pushed", "unknown")


def build_registry(engine: Engine, queues: QueueReader) -> CollectorRegistry:
    """A registry of its own per app, holding only the collectors below."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(queues))
    registry.register(DatabaseCollector(engine))
    return registry


class QueueCollector(Collector):
    """Depth, delayed, dead-lettered and oldest age per queue, from the broker."""

    def __init__(self, queues: QueueReader) -> None:
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("khalex_broker_up", "1 when the broker's queues could be read.")
        try:
            stats = self.queues.stats()
        except Exception as exc:  # a scrape must still answer, with the database figures
            log.warning("could not read the broker's queues for /metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        families = {
            "depth": _queue_gauge("khalex_queue_depth", "Messages ready to run."),
            "delayed": _queue_gauge("khalex_queue_delayed", "Messages waiting for a retry or ETA."),
            "dead_lettered": _queue_gauge("khalex_queue_dead_lettered", "Dead-lettered messages."),
            "oldest_age_s": _queue_gauge(
                "khalex_queue_oldest_age_seconds", "Age of the oldest ready message (0 if none)."
            ),
        }
        for queue in stats:
            for attribute, family in families.items():
                family.add_metric([queue.name], getattr(queue, attribute))
        yield from families.values()


def _queue_gauge(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=["queue"])


class DatabaseCollector(Collector):
    """Payments, Daraja calls, callbacks, outbox and dead jobs, counted in the database."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("khalex_database_up", "1 when the database answered the scrape.")
        try:
            with self.engine.connect() as conn:
                families = [family(conn, self.clock()) for family in FAMILIES]
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not read the database for /metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


# --- One function per metric family ---------------------------------------------------------


def payments_by_status(conn: sa.Connection, _: datetime) -> Metric:
    family = GaugeMetricFamily("khalex_payments", "Payments by stored status.", labels=["status"])
    found = dict(_grouped(conn, payments.c.status))
    for status in Status:
        family.add_metric([status.value], found.get(status.value, 0))
    return family


def failures_by_reason(conn: sa.Connection, _: datetime) -> Metric:
    family = GaugeMetricFamily(
        "khalex_payment_failures", "Failed and cancelled payments by reason.", labels=["reason"]
    )
    where = sa.and_(payments.c.failure_reason.is_not(None), payments.c.status != "completed")
    for reason, n in sorted(_grouped(conn, payments.c.failure_reason, where)):
        family.add_metric([reason], n)
    return family


def late_successes(conn: sa.Connection, _: datetime) -> Metric:
    n = _count(conn, payments, payments.c.late_success.is_(True))
    return CounterMetricFamily(
        "khalex_late_successes", "Payments paid after we had failed or expired them.", value=n
    )


def daraja_calls(conn: sa.Connection, _: datetime) -> Metric:
    family = CounterMetricFamily(
        "khalex_daraja_calls",
        "Answered Daraja calls by operation and outcome (ok, http_4xx, http_5xx, transport_error).",
        labels=["operation", "outcome"],
    )
    t = daraja_exchanges
    outcome = sa.case(
        (t.c.error.is_not(None), "transport_error"),
        (t.c.http_status < 300, "ok"),
        (t.c.http_status < 500, "http_4xx"),
        else_="http_5xx",
    )
    rows = conn.execute(
        sa.select(t.c.operation, outcome, sa.func.count())
        .where(t.c.answered_at.is_not(None))
        .group_by(t.c.operation, outcome)
        .order_by(t.c.operation, outcome)
    )
    for operation, result, n in rows:
        family.add_metric([operation, result], n)
    return family


def daraja_latency(conn: sa.Connection, _: datetime) -> Metric:
    t = daraja_exchanges
    seconds = t.c.elapsed_ms / 1000.0
    return _histogram(
        conn, "khalex_daraja_call_duration_seconds", "Daraja call latency by operation.",
        seconds, DARAJA_BUCKETS_S, where=t.c.elapsed_ms.is_not(None), label=t.c.operation,
        label_name="operation",
    )  # fmt: skip


def processing_time(conn: sa.Connection, _: datetime) -> Metric:
    seconds = seconds_between(payments.c.created_at, payments.c.finished_at)
    return _histogram(
        conn, "khalex_payment_processing_seconds",
        "From initiate to the first final state, by the status the payment has now.",
        seconds, PROCESSING_BUCKETS_S, where=payments.c.finished_at.is_not(None),
        label=payments.c.status, label_name="status",
    )  # fmt: skip


def callback_to_final(conn: sa.Connection, _: datetime) -> Metric:
    cb = callback_inbox
    first = (
        sa.select(cb.c.payment_id, sa.func.min(cb.c.received_at).label("received_at"))
        .where(cb.c.state == inbox.PROCESSED, cb.c.payment_id.is_not(None))
        .group_by(cb.c.payment_id)
        .subquery()
    )
    p = payments.join(first, first.c.payment_id == payments.c.id)
    return _histogram(
        conn, "khalex_callback_to_final_seconds",
        "From a processed callback's arrival to its payment's final state (callback-settled).",
        seconds_between(first.c.received_at, payments.c.finished_at), CALLBACK_BUCKETS_S,
        where=payments.c.finished_at >= first.c.received_at, select_from=p,
    )  # fmt: skip


def reconciliation_lag(conn: sa.Connection, now: datetime) -> Metric:
    oldest = conn.execute(
        sa.select(sa.func.min(payments.c.created_at)).where(payments.c.status.in_(AWAITING_OUTCOME))
    ).scalar()
    age = round((now - oldest).total_seconds(), 3) if oldest else 0.0
    return GaugeMetricFamily(
        "khalex_reconciliation_lag_seconds",
        "Age of the oldest pushed payment still without an outcome (0 if none).",
        value=max(0.0, age),
    )


def outbox_backlog(conn: sa.Connection, now: datetime) -> Metric:
    n = _count(conn, outbox, outbox.c.sent_at.is_(None))
    return GaugeMetricFamily("khalex_outbox_backlog", "Jobs not yet handed to the broker.", value=n)


def inbox_backlog(conn: sa.Connection, _: datetime) -> Metric:
    n = _count(conn, callback_inbox, callback_inbox.c.state == inbox.RECEIVED)
    return GaugeMetricFamily("khalex_inbox_backlog", "Stored callbacks not yet processed.", value=n)


def dead_jobs(conn: sa.Connection, _: datetime) -> Metric:
    family = GaugeMetricFamily(
        "khalex_jobs_dead_lettered",
        "Messages the poison guard dead-lettered (job_deliveries), by queue.",
        labels=["queue"],
    )
    where = job_deliveries.c.dead_lettered_at.is_not(None)
    found = dict(_grouped(conn, job_deliveries.c.queue, where))
    for queue in sorted({*QUEUES, *found}):
        family.add_metric([queue], found.get(queue, 0))
    return family


def paybill_confirmations(conn: sa.Connection, _: datetime) -> Metric:
    family = GaugeMetricFamily(
        "khalex_paybill_confirmations",
        "PayBill (C2B) confirmations by state (unmatched, refund_due, untrusted need a person).",
        labels=["state"],
    )
    where = c2b_payments.c.kind == "confirmation"
    found = dict(_grouped(conn, c2b_payments.c.state, where))
    for state in sorted({"received", "matched", "refund_due", "unmatched", "duplicate", *found}):
        family.add_metric([state], found.get(state, 0))
    return family


#: Every database family, in the order they are exposed.
FAMILIES: tuple[Callable[[sa.Connection, datetime], Metric], ...] = (
    payments_by_status, failures_by_reason, late_successes, daraja_calls, daraja_latency,
    processing_time, callback_to_final, reconciliation_lag, outbox_backlog, inbox_backlog,
    dead_jobs, paybill_confirmations,
)  # fmt: skip


# --- SQL helpers ----------------------------------------------------------------------------


def _grouped(
    conn: sa.Connection, column: sa.ColumnElement[str], where: sa.ColumnElement[bool] | None = None
) -> list[tuple[str, int]]:
    query = sa.select(column, sa.func.count()).group_by(column)
    if where is not None:
        query = query.where(where)
    return [(str(key), int(n)) for key, n in conn.execute(query)]


def _count(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
    )


def _histogram(
    conn: sa.Connection,
    name: str,
    text: str,
    value: sa.ColumnElement[Any],
    bounds: Sequence[float],
    *,
    where: sa.ColumnElement[bool],
    label: sa.ColumnElement[str] | None = None,
    label_name: str = "",
    select_from: sa.FromClause | None = None,
) -> Metric:
    """A histogram whose buckets are counted by SQL, one row per label value."""
    buckets = [sa.func.sum(sa.case((value <= bound, 1), else_=0)) for bound in bounds]
    keys = [label] if label is not None else []
    query = sa.select(*keys, sa.func.count(), sa.func.coalesce(sa.func.sum(value), 0), *buckets)
    if select_from is not None:
        query = query.select_from(select_from)
    query = query.where(where).group_by(*keys).order_by(*keys)
    family = HistogramMetricFamily(name, text, labels=[label_name] if label is not None else [])
    for row in conn.execute(query):
        labels = [str(v) for v in row[: len(keys)]]
        count, total, *cumulative = row[len(keys) :]
        family.add_metric(
            labels,
            [(str(float(b)), int(c or 0)) for b, c in zip(bounds, cumulative, strict=True)]
            + [("+Inf", int(count))],
            float(total),
        )
    return family

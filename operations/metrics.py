"""`/metrics`: Prometheus collectors that read the sources of truth at every scrape.

No counter lives in a process: the API, the workers and the scheduler each change the
database and the broker, so a scrape of any API process reports the whole system. Queue
figures come from the broker (`operations.dlq`), everything else from the database: counts
its triggers keep and the scheduler folds (`store.figures`), so a scrape reads a few small
tables however long the history is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

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
from operations.ops import PROCESSING_BUCKETS_S
from payments.jobs import QUEUES
from store import figures
from store.db import utcnow
from store.figures import CALLBACK_BUCKETS_S, CALLBACK_TO_FINAL, Counts

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the Daraja call latency buckets.
DARAJA_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
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
                found = Found(conn, figures.counts(conn), self.clock())
                found.counts.update(_added(found.counts, figures.callbacks_after_roll_up(conn)))
                families = [family(found) for family in FAMILIES]
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not read the database for /metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


class Found:
    """What one scrape read: the kept counts, and a connection for the live figures."""

    def __init__(self, conn: sa.Connection, counts: Counts, now: datetime) -> None:
        self.conn, self.counts, self.now = conn, counts, now

    def family(self, name: str) -> dict[tuple[str, str], tuple[int, float]]:
        """(label1, label2) -> (count, sum) of one family."""
        return {(l1, l2): v for (f, l1, l2), v in self.counts.items() if f == name}

    def by_label(self, name: str) -> dict[str, int]:
        return {l1: n for (l1, _), (n, _) in self.family(name).items()}


def _added(counts: Counts, more: Counts) -> Counts:
    return {
        key: (counts.get(key, (0, 0.0))[0] + n, counts.get(key, (0, 0.0))[1] + total)
        for key, (n, total) in more.items()
    }


# --- One function per metric family ---------------------------------------------------------


def payments_by_status(found: Found) -> Metric:
    family = GaugeMetricFamily("khalex_payments", "Payments by stored status.", labels=["status"])
    counted = found.by_label("payments")
    for status in Status:
        family.add_metric([status.value], counted.get(status.value, 0))
    return family


def failures_by_reason(found: Found) -> Metric:
    family = GaugeMetricFamily(
        "khalex_payment_failures", "Failed and cancelled payments by reason.", labels=["reason"]
    )
    for reason, n in sorted(found.by_label("failures").items()):
        family.add_metric([reason], n)
    return family


def late_successes(found: Found) -> Metric:
    n = found.by_label("late_successes").get("", 0)
    return CounterMetricFamily(
        "khalex_late_successes", "Payments paid after we had failed or expired them.", value=n
    )


def daraja_calls(found: Found) -> Metric:
    family = CounterMetricFamily(
        "khalex_daraja_calls",
        "Answered Daraja calls by operation and outcome (ok, http_4xx, http_5xx, transport_error).",
        labels=["operation", "outcome"],
    )
    for (operation, outcome), (n, _) in sorted(found.family("daraja_calls").items()):
        family.add_metric([operation, outcome], n)
    return family


def daraja_latency(found: Found) -> Metric:
    return _histogram(
        found.family("daraja_latency"), "khalex_daraja_call_duration_seconds",
        "Daraja call latency by operation.", DARAJA_BUCKETS_S, label_name="operation",
    )  # fmt: skip


def processing_time(found: Found) -> Metric:
    return _histogram(
        found.family("processing"), "khalex_payment_processing_seconds",
        "From initiate to the first final state, by the status the payment has now.",
        PROCESSING_BUCKETS_S, label_name="status",
    )  # fmt: skip


def callback_to_final(found: Found) -> Metric:
    return _histogram(
        found.family(CALLBACK_TO_FINAL), "khalex_callback_to_final_seconds",
        "From a processed callback's arrival to its payment's final state (callback-settled).",
        CALLBACK_BUCKETS_S,
    )  # fmt: skip


def reconciliation_lag(found: Found) -> Metric:
    oldest = figures.oldest_created(found.conn, AWAITING_OUTCOME)
    age = round((found.now - oldest).total_seconds(), 3) if oldest else 0.0
    return GaugeMetricFamily(
        "khalex_reconciliation_lag_seconds",
        "Age of the oldest pushed payment still without an outcome (0 if none).",
        value=max(0.0, age),
    )


def outbox_backlog(found: Found) -> Metric:
    n = figures.outbox_backlog(found.conn)
    return GaugeMetricFamily("khalex_outbox_backlog", "Jobs not yet handed to the broker.", value=n)


def inbox_backlog(found: Found) -> Metric:
    n = figures.inbox_backlog(found.conn)
    return GaugeMetricFamily("khalex_inbox_backlog", "Stored callbacks not yet processed.", value=n)


def dead_jobs(found: Found) -> Metric:
    family = GaugeMetricFamily(
        "khalex_jobs_dead_lettered",
        "Messages the poison guard dead-lettered (job_deliveries), by queue.",
        labels=["queue"],
    )
    dead = figures.dead_jobs_by_queue(found.conn)
    for queue in sorted({*QUEUES, *dead}):
        family.add_metric([queue], dead.get(queue, 0))
    return family


def paybill_confirmations(found: Found) -> Metric:
    family = GaugeMetricFamily(
        "khalex_paybill_confirmations",
        "PayBill (C2B) confirmations by state (unmatched, refund_due, untrusted need a person).",
        labels=["state"],
    )
    counted = {state: n for state, n in found.by_label("paybill").items() if n}
    for state in sorted({"received", "matched", "refund_due", "unmatched", "duplicate", *counted}):
        family.add_metric([state], counted.get(state, 0))
    return family


#: Every database family, in the order they are exposed.
FAMILIES: tuple[Callable[[Found], Metric], ...] = (
    payments_by_status, failures_by_reason, late_successes, daraja_calls, daraja_latency,
    processing_time, callback_to_final, reconciliation_lag, outbox_backlog, inbox_backlog,
    dead_jobs, paybill_confirmations,
)  # fmt: skip


def _histogram(
    buckets: dict[tuple[str, str], tuple[int, float]],
    name: str,
    text: str,
    bounds: Sequence[float],
    *,
    label_name: str = "",
) -> Metric:
    """A histogram from per-bucket counts and sums, one series per label value."""
    family = HistogramMetricFamily(name, text, labels=[label_name] if label_name else [])
    # An unlabelled histogram has its one series even before anything is counted.
    labels = sorted({l1 for l1, _ in buckets}) if label_name else [""]
    for label in labels:
        mine = {le: v for (l1, le), v in buckets.items() if l1 == label}
        running, cumulative = 0, []
        for bound in bounds:
            running += mine.get(figures.bucket_label(bound), (0, 0.0))[0]
            cumulative.append((str(float(bound)), running))
        count = sum(n for n, _ in mine.values())
        # Rounded to the microsecond: the same sum added in another order (before and after a
        # fold or roll-up) may differ in its last binary digits.
        total = round(sum(t for _, t in mine.values()), 6)
        family.add_metric([label] if label_name else [], [*cumulative, ("+Inf", count)], total)
    return family


#: Seconds between two folds of the counts (the scheduler's `metrics` job).
FOLD_INTERVAL_S = 15.0
#: Payments finished this long ago have had their first callback processed: the
#: callback-to-final roll-up counts them once and a scrape never reads them again.
CALLBACK_SETTLED_AFTER = timedelta(hours=1)


def fold(engine: Engine, now: datetime | None = None) -> None:
    """Fold the counts' deltas into their totals and roll up settled callbacks (one
    transaction), so a scrape reads only what changed since the last fold."""
    with engine.begin() as conn:
        figures.fold(conn)
        figures.roll_up_callbacks(conn, (now or utcnow()) - CALLBACK_SETTLED_AFTER)

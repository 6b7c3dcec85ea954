"""`khalex-pay scheduler`: the reconciliation loop and the alerts on APScheduler, one leader.

Each run of a job gets its own correlation id (`sched-…`), so the jobs a pass queues and
their log lines can be traced back to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from operations import alerts, metrics, retention
from operations.dlq import queue_reader
from payments import reconciliation, shop_webhooks
from payments.container import Container
from plumbing import correlation
from workers.leader import Leadership

log = logging.getLogger(__name__)

#: Seconds between two reconciliation passes.
TICK_S = 2.0
#: Prefix of the correlation ids of scheduler passes.
ID_PREFIX = "sched-"


class Leader(Protocol):
    def acquire(self) -> bool:
        """True while this process may act."""
        ...


class SharedLeadership:
    """One leader lock for all the scheduler's jobs, which APScheduler runs on several threads.

    The PostgreSQL advisory lock belongs to one session: a second connection of this very
    process could not take it, and one connection must not be used by two threads at once.
    """

    def __init__(self, engine: Engine) -> None:
        self._leadership = Leadership(engine)
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            return self._leadership.acquire()

    def release(self) -> None:
        with self._lock:
            self._leadership.release()


def reconcile_job(container: Container, leadership: Leader) -> None:
    if not leadership.acquire():
        return
    with correlation.bound(correlation.new_id(ID_PREFIX)):
        report = reconciliation.tick(container)
        if any(vars(report).values()):
            log.info("reconciliation pass: %s", vars(report))


def webhook_job(container: Container, leadership: Leader) -> None:
    """Queue the shop webhooks whose next attempt is due, on the leader only."""
    if not leadership.acquire():
        return
    with correlation.bound(correlation.new_id(ID_PREFIX)):
        queued = shop_webhooks.redrive(container)
        if queued:
            log.info("webhook pass: %s event(s) queued", queued)


def alert_job(
    container: Container,
    leadership: Leader,
    check: Callable[[Container], object],
) -> None:
    """Raise what needs an operator (`operations.alerts.run`), on the leader only."""
    if not leadership.acquire():
        return
    with correlation.bound(correlation.new_id(ID_PREFIX)):
        check(container)


def retention_job(container: Container, leadership: Leader) -> None:
    """Purge raw records past RETENTION_DAYS (`operations.retention`), on the leader only."""
    if not leadership.acquire():
        return
    with correlation.bound(correlation.new_id(ID_PREFIX)):
        retention.purge(container)


def metrics_job(container: Container, leadership: Leader) -> None:
    """Fold the /metrics counts (`operations.metrics.fold`), on the leader only."""
    if not leadership.acquire():
        return
    with correlation.bound(correlation.new_id(ID_PREFIX)):
        metrics.fold(container.engine)


def build_scheduler(
    container: Container, *, blocking: bool, tick_s: float = TICK_S
) -> BaseScheduler:
    """A scheduler running the reconciliation and webhook passes every `tick_s` seconds, the
    alert checks every ALERT_INTERVAL_S, the retention purge every few minutes and the
    fold of the /metrics counts every FOLD_INTERVAL_S."""
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    leadership = SharedLeadership(container.engine)
    queues = queue_reader(container.settings)

    def check(c: Container) -> None:
        alerts.run(c, queues=queues)

    every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 60}
    scheduler.add_job(
        reconcile_job, "interval", seconds=tick_s, args=(container, leadership),
        id="reconcile", **every,
    )  # fmt: skip
    scheduler.add_job(
        webhook_job, "interval", seconds=tick_s, args=(container, leadership),
        id="webhooks", **every,
    )  # fmt: skip
    scheduler.add_job(
        alert_job, "interval", seconds=container.settings.alert_interval_s,
        args=(container, leadership, check), id="alerts", **every,
    )  # fmt: skip
    scheduler.add_job(
        retention_job, "interval", seconds=retention.INTERVAL_S, args=(container, leadership),
        id="retention", **every,
    )  # fmt: skip
    scheduler.add_job(
        metrics_job, "interval", seconds=metrics.FOLD_INTERVAL_S, args=(container, leadership),
        id="metrics", **every,
    )  # fmt: skip
    return scheduler

"""`khalex-pay scheduler`: the reconciliation loop on APScheduler, one leader at a time."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from khalex_pay import reconciliation
from khalex_pay.container import Container
from workers.leader import Leadership

log = logging.getLogger(__name__)

#: Seconds between two reconciliation passes.
TICK_S = 2.0


def reconcile_job(container: Container, leadership: Leadership) -> None:
    if not leadership.acquire():
        return
    report = reconciliation.tick(container)
    if any(vars(report).values()):
        log.info("reconciliation pass: %s", vars(report))


def build_scheduler(
    container: Container, *, blocking: bool, tick_s: float = TICK_S
) -> BaseScheduler:
    """A scheduler whose one job is the reconciliation pass every `tick_s` seconds."""
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        reconcile_job,
        "interval",
        seconds=tick_s,
        args=(container, Leadership(container.engine)),
        id="reconcile",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=60,
    )
    return scheduler

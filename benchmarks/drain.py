"""(d) Worker drain: one `khalex-pay worker` process (8 threads) works off a queued backlog.

Two backlogs, one after the other: the STK pushes queued by the initiates (each one a real
HTTP push to `khalex-pay simulator`), then the callbacks stored by the intake. The clock
starts when the worker is spawned ("incl. start-up") and, from the payments' event rows,
runs from the first job done to the last ("first->last"). The reference is the same drain
of as many no-op messages by a plain Dramatiq worker of the same shape, in the same run
(benchmarks/reference/noop_worker.py): the worker's goals are ratios to its CPU per message.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker

from benchmarks import ceilings, procfs
from benchmarks.reference import NOOP_ACTOR, NOOP_QUEUE
from benchmarks.report import Figure
from benchmarks.services import Processes
from store.tables import payment_events, payments

#: How often the payments table is counted while the worker drains.
POLL_S = 0.05
#: Worker threads, as in the dramatiq-drain ceiling.
THREADS = 8


@dataclass(frozen=True)
class Drain:
    """What one drain measured."""

    jobs: int
    #: From spawning the worker to the last job done.
    with_start_s: float
    #: From the first job's event row to the last one's (the no-op drain: as polled).
    first_to_last_s: float
    cpu_us_per_job: float
    #: True when the CPU figure includes the worker's start-up (all jobs done at first look).
    cpu_includes_start: bool
    peak_rss_kib: int

    def figures(self, bench: str) -> list[Figure]:
        rate = (self.jobs - 1) / self.first_to_last_s if self.first_to_last_s > 0 else float("nan")
        cpu_note = "incl. start-up" if self.cpu_includes_start else "while draining"
        return [
            Figure(bench, "drain first->last", rate, "msgs/s", ceilings.DRAIN_RATE,
                   f"{self.jobs:,} jobs, 1 process x {THREADS} threads"),
            Figure(bench, "drain incl. start-up", self.jobs / self.with_start_s, "msgs/s",
                   ceilings.DRAIN_RATE_WITH_START, f"{self.with_start_s:.1f} s in all"),
            Figure(bench, "worker CPU", self.cpu_us_per_job, "us/msg", ceilings.DRAIN_CPU_US,
                   cpu_note),
        ]  # fmt: skip


def drain(
    procs: Processes, engine: sa.Engine, *, done: tuple[str, ...], event: str, timeout_s: float
) -> Drain:
    """Start a worker, wait until every payment's status is in `done`, stop the worker."""
    total = _count(engine, None)
    spawned = time.monotonic()
    worker = procs.start("worker", "worker", "--processes", "1", "--threads", str(THREADS))
    try:
        watched = _watch(worker, lambda: _count(engine, done), total, spawned + timeout_s)
    finally:
        procs.stop(worker)
    return watched.drain(total, spawned, first_to_last_s=_event_span(engine, event))


def reference(procs: Processes, redis_url: str, *, jobs: int, timeout_s: float) -> Drain:
    """Drain `jobs` no-op messages with a plain Dramatiq worker of the same shape."""
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    broker.declare_queue(NOOP_QUEUE)
    for n in range(jobs):
        broker.enqueue(dramatiq.Message(
            queue_name=NOOP_QUEUE, actor_name=NOOP_ACTOR, args=(f"{n:036d}",), kwargs={},
            options={},
        ))  # fmt: skip
    broker.close()
    client = redis.Redis.from_url(redis_url)
    spawned = time.monotonic()
    worker = procs.start_module(
        "noop-worker", "dramatiq", "benchmarks.reference.noop_worker",
        "--processes", "1", "--threads", str(THREADS),
    )  # fmt: skip

    def acked() -> int:
        # The Redis broker keeps each message in its queue's hash until it is acked.
        return jobs - int(client.hlen(f"dramatiq:{NOOP_QUEUE}.msgs"))

    try:
        watched = _watch(worker, acked, jobs, spawned + timeout_s)
    finally:
        procs.stop(worker)
        client.close()
    return watched.drain(jobs, spawned, first_to_last_s=watched.last_at - watched.first_at)


@dataclass(frozen=True)
class _Watched:
    """What was seen of a worker while it drained."""

    #: The worker's CPU and the jobs done when progress was first seen (0 and all of them
    #: when everything was done at the first look).
    first_cpu_s: float
    first_done: int
    first_at: float
    #: The worker's CPU, peak memory and the time once every job was done.
    cpu_s: float
    peak_rss_kib: int
    last_at: float

    def drain(self, total: int, spawned: float, *, first_to_last_s: float) -> Drain:
        measured = total - self.first_done
        cpu_us = (self.cpu_s - (self.first_cpu_s if measured else 0.0)) * 1e6 / (measured or total)
        return Drain(
            jobs=total, with_start_s=self.last_at - spawned, first_to_last_s=first_to_last_s,
            cpu_us_per_job=cpu_us, cpu_includes_start=not measured,
            peak_rss_kib=self.peak_rss_kib,
        )  # fmt: skip


def _watch(
    worker: subprocess.Popen[bytes], done: Callable[[], int], total: int, deadline: float
) -> _Watched:
    """Poll `done` until it reaches `total`; the worker's figures at first progress and at end."""
    first: tuple[float, int, float] | None = None
    while (finished := done()) < total:
        if first is None and finished:
            first = (procfs.tree_cpu_seconds(worker.pid), finished, time.monotonic())
        if worker.poll() is not None:
            raise RuntimeError("the worker exited during the drain")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker drained {finished} of {total} jobs in time")
        time.sleep(POLL_S)
    last_at = time.monotonic()
    first_cpu, first_done, first_at = first or (0.0, total, last_at)
    return _Watched(
        first_cpu_s=first_cpu, first_done=first_done, first_at=first_at,
        cpu_s=procfs.tree_cpu_seconds(worker.pid),
        peak_rss_kib=procfs.tree_peak_rss_kib(worker.pid), last_at=last_at,
    )  # fmt: skip


def _count(engine: sa.Engine, statuses: tuple[str, ...] | None) -> int:
    query = sa.select(sa.func.count()).select_from(payments)
    if statuses is not None:
        query = query.where(payments.c.status.in_(statuses))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _event_span(engine: sa.Engine, kind: str) -> float:
    query = sa.select(
        sa.func.min(payment_events.c.created_at), sa.func.max(payment_events.c.created_at)
    ).where(payment_events.c.kind == kind)
    with engine.connect() as conn:
        first, last = conn.execute(query).one()
    return (last - first).total_seconds() if first and last else 0.0

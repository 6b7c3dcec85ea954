"""(d) Worker drain: one `khalex-pay worker` process (8 threads) works off a queued backlog.

Two backlogs, one after the other: the STK pushes queued by the initiates (each one a real
HTTP push to `khalex-pay simulator`), then the callbacks stored by the intake. The clock
starts when the worker is spawned ("incl. start-up") and, from the payments' event rows,
runs from the first job done to the last ("first->last").
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import sqlalchemy as sa

from benchmarks import ceilings, procfs
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
    #: From the first job's event row to the last one's.
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
    first = _wait(worker, engine, done, total, spawned + timeout_s)
    with_start_s = time.monotonic() - spawned
    cpu_s = procfs.tree_cpu_seconds(worker.pid)
    peak = procfs.tree_peak_rss_kib(worker.pid)
    procs.stop(worker)
    seen_cpu, seen_done = first
    measured = total - seen_done
    cpu_us = (cpu_s - (seen_cpu if measured else 0.0)) * 1e6 / (measured or total)
    return Drain(
        jobs=total, with_start_s=with_start_s, first_to_last_s=_event_span(engine, event),
        cpu_us_per_job=cpu_us, cpu_includes_start=not measured, peak_rss_kib=peak,
    )  # fmt: skip


def _wait(
    worker: subprocess.Popen[bytes],
    engine: sa.Engine,
    done: tuple[str, ...],
    total: int,
    deadline: float,
) -> tuple[float, int]:
    """Poll until all `total` payments are done; the worker's CPU and the count at first sight."""
    first: tuple[float, int] | None = None
    while (finished := _count(engine, done)) < total:
        if first is None and finished:
            first = (procfs.tree_cpu_seconds(worker.pid), finished)
        if worker.poll() is not None:
            raise RuntimeError("the worker exited during the drain")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker drained {finished} of {total} jobs in time")
        time.sleep(POLL_S)
    return first or (0.0, total)


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

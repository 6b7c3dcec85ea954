"""(f) End to end at zero Daraja delay: initiate -> STK push -> Safaricom's callback -> completed.

Everything is real: `khalex-pay api`, `khalex-pay worker` (its defaults, as deployed) and
`khalex-pay simulator`, told to call back at once. The clock starts as the first initiate is
sent and stops at the last payment's `completed` event; the rate is set against the
initiate-only rate measured earlier in the same run (issue 12, goal 3: at least 0.25x).
As many payments as the initiate benchmark sends to warm up go through first, untimed, so the
fresh worker is up, its access token cached, and its threads' connections open: the figure is
the system's steady rate, as the initiate rate it is set against is the API's.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from typing import ClassVar

import httpx
import sqlalchemy as sa

from benchmarks import http_load, initiate, procfs
from benchmarks.report import Figure
from benchmarks.services import Processes
from store.tables import payment_events, payments

BENCH = "end to end"
#: How often the payments are counted while they complete. The span is read from the
#: events' own times, so a slower poll changes only when we notice the end, and loads the
#: database under test less.
POLL_S = 0.25
#: Longest the whole batch may take to complete.
TIMEOUT_S = 180.0


def measure(
    procs: Processes, engine: sa.Engine, urls: tuple[str, str], pids: tuple[int, int], *,
    key: str, count: int, offset: int, warm_up: int = 1,
) -> list[Figure]:  # fmt: skip
    """Pay `warm_up` payments, then `count` timed ones, end to end (phone numbers from
    `offset`); their rate and span, and the CPU each process spent per payment (`urls` and
    `pids`: the API's, the simulator's)."""
    api_url, simulator_url = urls
    _call_back_at_once(simulator_url)
    worker = procs.start("worker-e2e", "worker")
    try:
        # Untimed, as the initiate benchmark's first requests are: the fresh worker's
        # threads open their connections and its statements get prepared.
        _pay(engine, api_url, key, (warm_up, offset), worker)
        meter = _CpuMeter({"api": pids[0], "worker": worker.pid, "simulator": pids[1]})
        started = datetime.now(UTC)
        began = time.monotonic()
        load = _pay(engine, api_url, key, (count, offset + warm_up), worker)
        waited = time.monotonic() - began
        spent = meter.read()
    finally:
        procs.stop(worker)
    span = (_last_completed(engine) - started).total_seconds()
    rate = count / span if span > 0 else float("nan")
    note = f"{count:,} payments after {warm_up:,}, c={http_load.CONCURRENCY}, worker defaults"
    return [
        Figure(BENCH, "completed payments/s", rate, "payments/s", note=note),
        Figure(BENCH, "first initiate -> last completed", span, "s",
               note=f"initiates took {load.seconds:.1f} s; waited {waited:.1f} s in all"),
        *(Figure(BENCH, f"CPU per payment: {name}", seconds * 1000 / count, "ms", note=why)
          for name, (seconds, why) in spent.items()),
    ]  # fmt: skip


class _CpuMeter:
    """CPU time spent since it was made, by each process that pays: the two cores are
    shared, so the rate is bounded by their sum per payment."""

    NOTES: ClassVar[dict[str, str]] = {
        "api": "initiate + callback intake",
        "worker": "push + callback job, every worker process",
        "simulator": "push answer + callback sent",
        "postgres": "every PostgreSQL process",
        "redis": "redis-server",
        "benchmark": "load generator + polling",
    }

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._before = self._now()

    def _now(self) -> dict[str, float]:
        spent = {name: procfs.tree_cpu_seconds(pid) for name, pid in self._pids.items()}
        spent["postgres"] = procfs.named_cpu_seconds("postgres")
        spent["redis"] = procfs.named_cpu_seconds("redis-server")
        spent["benchmark"] = time.process_time()
        return spent

    def read(self) -> dict[str, tuple[float, str]]:
        after = self._now()
        spent = {name: (after[name] - self._before[name], self.NOTES[name]) for name in after}
        spent["all"] = (sum(s for s, _ in spent.values()), "the sum: 2 cores give 2,000 ms/s")
        return spent


def _call_back_at_once(simulator_url: str) -> None:
    body = json.dumps({"callbackDelayS": [0, 0]})
    answer = httpx.put(
        f"{simulator_url}/simulator/chaos", content=body,
        headers={"content-type": "application/json"}, timeout=10.0,
    )  # fmt: skip
    answer.raise_for_status()


def _pay(
    engine: sa.Engine,
    api_url: str,
    key: str,
    batch: tuple[int, int],
    worker: subprocess.Popen[bytes],
) -> http_load.Load:
    """Initiate `batch` (how many, first phone offset) and wait until all are completed."""
    count, offset = batch
    done_before = _completed(engine)
    load = http_load.post_all(api_url, initiate.calls(count, offset, key=key))
    bad = sum(n for status, n in load.statuses.items() if status != 202)
    if bad:
        raise RuntimeError(f"{BENCH}: {bad} initiates were not accepted: {load.statuses}")
    deadline = time.monotonic() + TIMEOUT_S
    while (done := _completed(engine) - done_before) < count:
        if worker.poll() is not None:
            raise RuntimeError(f"{BENCH}: the worker exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{BENCH}: {done} of {count} payments completed in time")
        time.sleep(POLL_S)
    return load


def _completed(engine: sa.Engine) -> int:
    query = sa.select(sa.func.count()).select_from(payments)
    with engine.connect() as conn:
        return int(conn.execute(query.where(payments.c.status == "completed")).scalar_one())


def _last_completed(engine: sa.Engine) -> datetime:
    query = sa.select(sa.func.max(payment_events.c.created_at)).where(
        payment_events.c.kind == "completed"
    )
    with engine.connect() as conn:
        last: datetime = conn.execute(query).scalar_one()
    return last

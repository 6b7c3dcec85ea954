"""`python -m benchmarks.scale [--quick] [--payments N]`: the read paths at a year of history.

One run: the simulator and one API process start on an empty database; initiates are timed
(the empty-table rate); a million finished payments and their companions are written
(`benchmarks.fill`) and the scheduler's fold runs once, as it would have meanwhile; then,
each with its goal (issue 12, goal 5) and verdict: GET /metrics, GET /api/ops/summary, a
status look-up's p99, one reconciliation pass with 200 payments in flight, and initiates
again, next to the empty-table rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks import fill, http_load, initiate, procfs, services
from benchmarks.report import Goal, goals_table, number
from benchmarks.services import Processes
from benchmarks.system import Ports, environment
from operations import metrics
from operations.operator_tokens import issue_token
from payments import reconciliation
from payments.container import Container
from plumbing.settings import load_settings
from store import api_keys
from workers.broker import build_broker, publisher

BENCH = "scale"
#: Finished payments written, and in a `--quick` run.
PAYMENTS, QUICK_PAYMENTS = 1_000_000, 2_000
#: Payments in flight during the reconciliation pass.
IN_FLIGHT = 200
#: Initiates per measurement (after WARM_UP untimed), and in a `--quick` run.
INITIATES, QUICK_INITIATES, WARM_UP = 1_000, 50, 100
#: GETs of /metrics and of the summary (the median is judged), status look-ups.
SCRAPES, LOOKUPS, QUICK_LOOKUPS = 15, 1_000, 50
#: Reconciliation passes measured (the median is judged), in a `--quick` run, and run first.
PASSES, QUICK_PASSES, PASS_WARM_UP = 7, 2, 5
JWT_SECRET = "bench-jwt-secret-0123456789abcdefghijklmnopqrstuv"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument("--payments", type=int, help="finished payments to write")
    args = parser.parse_args(argv)
    payments = args.payments or (QUICK_PAYMENTS if args.quick else PAYMENTS)
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="khalex-bench-scale-"))
    try:
        goals = run(logs, payments, quick=args.quick)
    except BaseException:
        print(f"benchmark failed; process logs kept in {logs}")
        raise
    shutil.rmtree(logs, ignore_errors=True)
    print(goals_table(goals))
    print(f"\n{'quick ' if args.quick else ''}run took {time.monotonic() - started:.0f} s")
    return 0


def run(logs: Path, payments: int, *, quick: bool) -> list[Goal]:
    ports = Ports(api=services.free_port(), simulator=services.free_port())
    with services.fresh_database() as database, services.fresh_redis() as redis:
        env = {**environment(database, redis, ports), "JWT_SECRET": JWT_SECRET}
        engine = sa.create_engine(database, pool_size=2)
        try:
            with Processes(env, logs) as procs:
                return _measure(procs, engine, ports, env, payments, quick=quick)
        finally:
            engine.dispose()


def _measure(
    procs: Processes, engine: sa.Engine, ports: Ports, env: dict[str, str], payments: int,
    *, quick: bool,
) -> list[Goal]:  # fmt: skip
    simulator = procs.start("simulator", "simulator", "--port", str(ports.simulator))
    api = procs.start("api", "api", "--port", str(ports.api))
    services.wait_for_http(f"{ports.simulator_url}/simulator/ledger", simulator)
    services.wait_for_http(f"{ports.api_url}/health/live", api)
    with engine.begin() as conn:
        _, key = api_keys.create(conn, "benchmark shop")
    count = QUICK_INITIATES if quick else INITIATES
    empty = _initiates(ports.api_url, api.pid, engine, key, count, offset=0)

    print(f"writing {payments:,} finished payments and their companions ...", file=sys.stderr)
    took = fill.fill(engine, payments)
    print("  " + ", ".join(f"{t} {s:.0f} s" for t, s in took.items()), file=sys.stderr)
    fold_s = _timed(lambda: metrics.fold(engine))  # the scheduler's first fold after the fill
    print(f"  the scheduler's first fold took {fold_s:.1f} s", file=sys.stderr)

    full = _initiates(ports.api_url, api.pid, engine, key, count, offset=2 * (count + WARM_UP))
    token = issue_token(JWT_SECRET)
    return [
        _get_goal(ports.api_url + "/metrics", {}, "GET /metrics (median)", 100.0),
        _get_goal(ports.api_url + "/api/ops/summary", {"authorization": f"Bearer {token}"},
                  "GET /api/ops/summary (median)", 100.0),
        _lookups(ports.api_url, payments, key, QUICK_LOOKUPS if quick else LOOKUPS),
        _reconciliation_pass(engine, env, quick=quick),
        Goal(BENCH, f"initiate rate at {payments:,} / empty", full.rate / empty.rate * 100,
             "%", 90.0, at_least=True,
             note=f"{number(full.rate)} vs {number(empty.rate)} req/s; API CPU "
                  f"{full.cpu_ms:.2f} vs {empty.cpu_ms:.2f} ms/req"),
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Rate:
    rate: float
    cpu_ms: float


def _initiates(
    base: str, api_pid: int, engine: sa.Engine, key: str, count: int, *, offset: int
) -> Rate:
    """Initiates' rate and API CPU, then those payments finished (out of every later step)."""
    http_load.post_all(base, initiate.calls(WARM_UP, offset, key=key))
    cpu = procfs.cpu_seconds(api_pid)
    load = http_load.post_all(base, initiate.calls(count, offset + WARM_UP, key=key))
    cpu_ms = (procfs.cpu_seconds(api_pid) - cpu) * 1000 / count
    if set(load.statuses) != {202}:
        raise RuntimeError(f"initiate answered {dict(load.statuses)}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE payments SET status = 'failed', failure_reason = 'timeout', "
            "finished_at = now() WHERE status = 'created'"
        ))  # fmt: skip
        conn.execute(sa.text("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL"))
    return Rate(load.rate, cpu_ms)


def _get_goal(url: str, headers: dict[str, str], name: str, limit_ms: float) -> Goal:
    with httpx.Client(headers=headers, timeout=60.0) as client:
        ms = []
        for _ in range(SCRAPES + 1):
            started = time.perf_counter()
            answer = client.get(url)
            ms.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    ms = ms[1:]  # the first warms the connection pool
    return Goal(BENCH, name, statistics.median(ms), "ms", limit_ms,
                note=f"{SCRAPES} GETs, max {max(ms):.0f} ms")  # fmt: skip


def _lookups(base: str, payments: int, key: str, count: int) -> Goal:
    """Status look-ups of random finished payments, one at a time, as a shop polls."""
    calls = [
        http_load.Call(f"/api/payments/status/{fill.payment_id(random.randint(1, payments))}",
                       b"", {"authorization": f"Bearer {key}"}, method="GET")
        for _ in range(count)
    ]  # fmt: skip
    http_load.post_all(base, calls[:20], concurrency=1)
    load = http_load.post_all(base, calls, concurrency=1)
    if set(load.statuses) != {200}:
        raise RuntimeError(f"status look-ups answered {dict(load.statuses)}")
    return Goal(BENCH, "status look-up p99", load.p(99), "ms", 5.0,
                note=f"{count:,} GETs one at a time, p50 {load.p(50):.1f} ms")  # fmt: skip


def _reconciliation_pass(engine: sa.Engine, env: dict[str, str], *, quick: bool) -> Goal:
    """Scheduler passes that each find IN_FLIGHT payments due for a query (the median judged).

    The scheduler passes every two seconds for as long as it runs, so a pass meets a warm
    process: a pooled connection, prepared statements, the broker's scripts loaded. Warm-up
    passes bring this process there first; each measured pass finds the same payments due
    again, and is timed alone (the UPDATE that makes them due is not).
    """
    fill.in_flight(engine, IN_FLIGHT)
    settings = load_settings(env)
    broker = build_broker(settings)
    container = Container.build(settings, publisher(broker))
    walls, cpus, marks = [], [], []
    try:
        for n in range(PASS_WARM_UP + (QUICK_PASSES if quick else PASSES)):
            _make_due(engine)
            # The previous pass's jobs are marked sent off its path, within 50 ms, long
            # before the scheduler's next pass; here the next pass follows at once, so the
            # marks are settled first, timed apart (the note gives their median).
            mark_s = _timed(container.flush_sent)
            cpu = time.process_time()
            seconds = _timed(lambda: _tick(container))
            if n >= PASS_WARM_UP:
                walls.append(seconds * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                marks.append(mark_s * 1000)
    finally:
        container.engine.dispose()
        broker.close()
    return Goal(BENCH, f"reconciliation pass, {IN_FLIGHT} in flight (median)",
                statistics.median(walls), "ms", 50.0,
                note=f"{len(walls)} passes, {min(walls):.0f}-{max(walls):.0f} ms: queue the "
                     f"queries, relay them; our CPU {statistics.median(cpus):.0f} ms; their "
                     f"sent marks, apart, {statistics.median(marks):.0f} ms")  # fmt: skip


def _make_due(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE payments SET next_query_at = now() - interval "
                             "'1 second' WHERE status = 'pushed'"))  # fmt: skip


def _tick(container: Container) -> None:
    report = reconciliation.tick(container)
    if report.queries != IN_FLIGHT:
        raise RuntimeError(f"the pass queued {report.queries} queries, not {IN_FLIGHT}")


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())

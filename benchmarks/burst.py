"""`python -m benchmarks.burst [--quick]`: a flash sale against a slow Daraja (issue 12, goal 4).

One run, same PostgreSQL, Redis and simulator: BURST customers pay at the same instant,
first with the simulator answering at once, then with every Daraja call taking
LATENCY_S. For Khalex Pay (one API process, `khalex-pay worker` with its defaults) it
reports the initiate p99 of each and the time from the burst until the last push was
accepted (the prompt is on the phone); then the same burst against the inline peer
(`benchmarks.peers.inline`), which calls Daraja inside the request.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks import http_load, initiate, services
from benchmarks.peers import inline
from benchmarks.report import Goal, goals_table, number
from benchmarks.services import Processes
from benchmarks.system import Ports, environment
from store import api_keys

BENCH = "burst"
#: Customers paying at once, and in a `--quick` run.
BURST, QUICK_BURST = 200, 20
#: Seconds every Daraja call takes in the slow phase, and in a `--quick` run.
LATENCY_S, QUICK_LATENCY_S = 2.0, 0.5
#: Longest we wait for a burst's pushes to be accepted.
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Burst:
    p99_ms: float
    last_prompt_s: float


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="khalex-bench-burst-"))
    try:
        goals = run(logs, *((QUICK_BURST, QUICK_LATENCY_S) if args.quick else (BURST, LATENCY_S)))
    except BaseException:
        print(f"benchmark failed; process logs kept in {logs}")
        raise
    shutil.rmtree(logs, ignore_errors=True)
    print(goals_table(goals))
    print(f"\n{'quick ' if args.quick else ''}run took {time.monotonic() - started:.0f} s")
    return 0


def run(logs: Path, size: int, latency_s: float = LATENCY_S) -> list[Goal]:
    ports = Ports(api=services.free_port(), simulator=services.free_port())
    peer_port = services.free_port()
    with services.fresh_database() as database, services.fresh_redis() as redis:
        env = environment(database, redis, ports)
        engine = sa.create_engine(database, pool_size=2)
        inline.create_table(engine)
        try:
            with Processes(env, logs) as procs:
                simulator = procs.start("simulator", "simulator", "--port", str(ports.simulator))
                api = procs.start("api", "api", "--port", str(ports.api))
                procs.start("worker", "worker")
                peer = procs.start_module(
                    "peer", "benchmarks.peers.inline", "--port", str(peer_port)
                )
                services.wait_for_http(f"{ports.simulator_url}/simulator/ledger", simulator)
                services.wait_for_http(f"{ports.api_url}/health/live", api)
                services.wait_for_http(f"http://127.0.0.1:{peer_port}/pay", peer)
                return _measure(engine, ports, peer_port, size, latency_s)
        finally:
            engine.dispose()


def _measure(
    engine: sa.Engine, ports: Ports, peer_port: int, size: int, latency_s: float
) -> list[Goal]:
    with engine.begin() as conn:
        _, key = api_keys.create(conn, "benchmark shop")
    peer_url = f"http://127.0.0.1:{peer_port}"
    _latency(ports, 0.0)
    _ours(ports.api_url, engine, key, 10, offset=0)  # warm-up: pools, the access token
    _peer(peer_url, 10, offset=0)
    fast = _ours(ports.api_url, engine, key, size, offset=10)
    peer_fast = _peer(peer_url, size, offset=10)
    _latency(ports, latency_s)
    slow = _ours(ports.api_url, engine, key, size, offset=10 + size)
    peer_slow = _peer(peer_url, size, offset=10 + size)
    ratio_note = f"{number(slow.p99_ms)} vs {number(fast.p99_ms)} ms at zero latency"
    peer_note = (
        f"inline peer: p99 {number(peer_slow.p99_ms)} ms (vs {number(peer_fast.p99_ms)} ms), "
        f"last prompt {peer_slow.last_prompt_s:.1f} s"
    )
    return [
        Goal(BENCH, f"initiate p99, Daraja at {latency_s:g} s / at 0 s",
             slow.p99_ms / fast.p99_ms, "x", 1.2, note=ratio_note),
        Goal(BENCH, f"last prompt out after a burst of {size}", slow.last_prompt_s, "s", 6.0,
             note=f"at zero latency {fast.last_prompt_s:.1f} s"),
        Goal(BENCH, "inline peer: initiate p99 / ours", peer_slow.p99_ms / slow.p99_ms, "x", 1.0,
             at_least=True, note=peer_note),
    ]  # fmt: skip


def _latency(ports: Ports, seconds: float) -> None:
    body = json.dumps({"latencyMs": int(seconds * 1000)})
    answer = httpx.put(f"{ports.simulator_url}/simulator/chaos", content=body,
                       headers={"content-type": "application/json"})  # fmt: skip
    answer.raise_for_status()


def _ours(base: str, engine: sa.Engine, key: str, size: int, *, offset: int) -> Burst:
    """`size` initiates at once; the p99, and when the last of their pushes was accepted."""
    calls = initiate.calls(size, offset, key=key)
    started = datetime.now(UTC)
    load = http_load.post_all(base, calls, concurrency=size)
    if set(load.statuses) != {202}:
        raise RuntimeError(f"initiate answered {dict(load.statuses)}")
    last = _last_accepted(engine, started, size)
    return Burst(load.p(99), (last - started).total_seconds())


def _last_accepted(engine: sa.Engine, since: datetime, size: int) -> datetime:
    deadline = time.monotonic() + TIMEOUT_S
    query = sa.text(
        "SELECT count(*), max(answered_at) FROM daraja_exchanges "
        "WHERE operation = 'stk_push' AND http_status = 200 AND sent_at >= :since"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            count, last = conn.execute(query, {"since": since}).one()
        if count >= size:
            return last  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise TimeoutError(f"only {count} of {size} pushes were accepted within {TIMEOUT_S} s")


def _peer(base: str, size: int, *, offset: int) -> Burst:
    """The same burst against the inline peer: its answer comes after Daraja's."""
    calls = [
        http_load.Call("/pay", json.dumps({
            "amount": 100 + i % 2_000, "phoneNumber": str(initiate.FIRST_PHONE + 500_000 + i),
        }).encode(), {"content-type": "application/json"})
        for i in range(offset, offset + size)
    ]  # fmt: skip
    started = time.perf_counter()
    load = http_load.post_all(base, calls, concurrency=size)
    if set(load.statuses) != {201}:
        raise RuntimeError(f"the inline peer answered {dict(load.statuses)}")
    return Burst(load.p(99), time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())

"""A small closed-loop HTTP load generator: C connections, each sending its next request as
soon as the previous one is answered (as wrk does), timing every request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import httpx

from benchmarks.report import percentile

#: Connections kept busy at once; the ceilings were measured with wrk at 32.
CONCURRENCY = 32


@dataclass(frozen=True)
class Call:
    """One request to send."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    """What a run measured."""

    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int]
    #: CPU this process spent sending: the load generator shares the 2 cores with the API.
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def p(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)


def post_all(base: str, calls: Sequence[Call], concurrency: int = CONCURRENCY) -> Load:
    """POST every call to `base` over `concurrency` connections."""
    cpu_before = time.process_time()
    load = asyncio.run(_post_all(base, calls, concurrency))
    return replace(load, client_cpu_s=time.process_time() - cpu_before)


async def _post_all(base: str, calls: Sequence[Call], concurrency: int) -> Load:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue = iter(calls)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def connection() -> None:
            for call in queue:  # the iterator is shared: each call is sent once
                started = time.perf_counter()
                answer = await client.post(call.path, content=call.body, headers=call.headers)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[answer.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Load(seconds, latencies, statuses)

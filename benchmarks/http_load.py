"""A small closed-loop HTTP load generator: C keep-alive connections, each sending its next
request as soon as the previous one is answered (as wrk does), timing every request.

It speaks just enough HTTP/1.1 over asyncio streams to POST and read a Content-Length
answer: a general client (httpx) spends 2-3 ms of CPU per request, as much as half of what
the server spends, and this machine has only 2 cores to share between them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from benchmarks.report import percentile

#: Connections kept busy at once; the ceilings were measured with wrk at 32.
CONCURRENCY = 32
#: Status recorded for a request whose connection broke before an answer came.
BROKEN = 0


@dataclass(frozen=True)
class Call:
    """One request to send."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


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
    """Send every call to `base` (`http://host:port`) over `concurrency` connections."""
    cpu_before = time.process_time()
    load = asyncio.run(_post_all(base, calls, concurrency))
    return replace(load, client_cpu_s=time.process_time() - cpu_before)


async def _post_all(base: str, calls: Sequence[Call], concurrency: int) -> Load:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue = iter(calls)  # shared by every connection: each call is sent once

    async def connection() -> None:
        async for status, ms in _send_each(host, port, queue):
            statuses[status] += 1
            latencies.append(ms)

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Load(time.perf_counter() - started, latencies, statuses)


async def _send_each(
    host: str, port: int, queue: Iterator[Call]
) -> AsyncIterator[tuple[int, float]]:
    """Send calls from `queue` one after another on one connection; yield (status, ms)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for call in queue:
            started = time.perf_counter()
            try:
                writer.write(_request(host, port, call))
                status = await _answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                status = BROKEN
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            yield status, (time.perf_counter() - started) * 1000
    finally:
        writer.close()


def _request(host: str, port: int, call: Call) -> bytes:
    headers = {"host": f"{host}:{port}", **call.headers, "content-length": str(len(call.body))}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{call.method} {call.path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + call.body


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one answer (Content-Length framed); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0].split()[1])

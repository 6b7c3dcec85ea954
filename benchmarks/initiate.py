"""(b) `POST /api/payments/initiate` over HTTP: throughput, latency and the API's CPU per request.

Every request is a new customer (a distinct phone number, so none is refused as "payment in
progress") and carries its own Idempotency-Key, as the checkout page sends it.
"""

from __future__ import annotations

import json
import uuid

from benchmarks import ceilings, procfs
from benchmarks.http_load import CONCURRENCY, Call, Load, post_all
from benchmarks.report import Figure

BENCH = "initiate (HTTP)"
#: First phone number used: 2547 1000 0000 upwards never meets a simulator test number.
FIRST_PHONE = 254_710_000_000


def calls(count: int, offset: int = 0, *, key: str) -> list[Call]:
    """`count` initiate requests for distinct customers, numbered from `offset`, as the
    shop's server sends them (with its API key: authentication is part of the cost)."""
    return [_call(offset + i, key) for i in range(count)]


def _call(i: int, key: str) -> Call:
    body = {
        "amount": 100 + i % 2_000, "phoneNumber": str(FIRST_PHONE + i),
        "productId": "board-01", "productName": "Tournament chess board",
        "customerName": "Wanjiru", "customerEmail": "wanjiru@example.com",
    }  # fmt: skip
    headers = {
        "content-type": "application/json", "idempotency-key": str(uuid.uuid4()),
        "authorization": f"Bearer {key}",
    }  # fmt: skip
    return Call("/api/payments/initiate", json.dumps(body).encode(), headers)


def measure(base: str, api_pid: int, count: int, offset: int, *, key: str) -> list[Figure]:
    """Send `count` initiates (after the `offset` already sent to warm up) and report them."""
    cpu_before = procfs.cpu_seconds(api_pid)
    load = post_all(base, calls(count, offset, key=key))
    cpu_ms = (procfs.cpu_seconds(api_pid) - cpu_before) * 1000 / count
    return figures(BENCH, load, cpu_ms, expected_status=202)


def figures(bench: str, load: Load, cpu_ms: float, expected_status: int) -> list[Figure]:
    """Rate, p50, p99 and API CPU per request, each next to the HTTP ceiling."""
    bad = sum(n for status, n in load.statuses.items() if status != expected_status)
    if bad:
        raise RuntimeError(f"{bench}: {bad} answers were not {expected_status}: {load.statuses}")
    sent = len(load.latencies_ms)
    note = f"{sent:,} requests, c={CONCURRENCY}"
    client = f"load generator used {load.client_cpu_s * 1000 / sent:.2f} ms CPU/req"
    return [
        Figure(bench, "throughput", load.rate, "req/s", ceilings.HTTP_PAYMENT_RPS, note),
        Figure(bench, "latency p50", load.p(50), "ms", ceilings.HTTP_PAYMENT_P50_MS),
        Figure(bench, "latency p99", load.p(99), "ms", ceilings.HTTP_PAYMENT_P99_MS),
        Figure(bench, "api CPU", cpu_ms, "ms/req", ceilings.HTTP_PAYMENT_CPU_MS, client),
    ]

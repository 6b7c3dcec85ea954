"""The rows of shared/PERF-CEILINGS.md (2 cores, 2026-11-26) our figures are judged against.

Ceilings are best cases of the hardware and libraries measured with wrk/pgbench and
throwaway prototypes; our figures carry more work per request (validation, idempotency
key, outbox row, relay), so read them as ratios, not as pass/fail thresholds.
"""

from __future__ import annotations

from benchmarks.report import Ceiling

#: The throwaway HTTP prototype (one INSERT + one Dramatiq enqueue) on one uvicorn worker
#: loaded by wrk at 32 connections: our `khalex-pay api` runs one uvicorn process too.
_HTTP_1W = "http-payment uvicorn 1w c=32"
HTTP_PAYMENT_RPS = Ceiling(630, "req/s", _HTTP_1W)
HTTP_PAYMENT_P50_MS = Ceiling(47.69, "ms", _HTTP_1W)
HTTP_PAYMENT_P99_MS = Ceiling(111.30, "ms", _HTTP_1W)
HTTP_PAYMENT_CPU_MS = Ceiling(1.541, "ms/req", _HTTP_1W + " app CPU")

#: Dramatiq draining no-op messages with one worker process of 8 threads.
_DRAIN = "dramatiq-drain 1 proc x 8 thr"
DRAIN_RATE = Ceiling(2020, "msgs/s", _DRAIN + ", 1st fetch->last ack")
DRAIN_RATE_WITH_START = Ceiling(1973, "msgs/s", _DRAIN + ", incl. start-up")
DRAIN_CPU_US = Ceiling(356, "us/msg", _DRAIN + " worker CPU")

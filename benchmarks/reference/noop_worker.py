"""A Dramatiq actor that does nothing: the yardstick for the worker's CPU per job.

Issue 12 set its worker goals (4 ms per STK push, 2 ms per callback job) beside a no-op
Dramatiq drain that cost 0.36 ms per message on the machine it was measured on. Draining
no-op messages with Dramatiq's defaults, in one process of as many threads as the worker's
drains use, in the same run, gives what fetching, decoding and acking a message costs on
the machine at hand, so the worker's goals can be read as ratios to it.
Run: `python -m dramatiq benchmarks.reference.noop_worker -p 1 -t 8` (REDIS_URL from the
environment); `benchmarks.drain.reference` queues the backlog and times the drain.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.reference import NOOP_ACTOR, NOOP_QUEUE

dramatiq.set_broker(RedisBroker(url=os.environ["REDIS_URL"]))  # type: ignore[no-untyped-call]


@dramatiq.actor(actor_name=NOOP_ACTOR, queue_name=NOOP_QUEUE, max_retries=0)
def noop(payment_id: str) -> None:
    """Nothing: what the drain measures is Dramatiq's own cost per message."""

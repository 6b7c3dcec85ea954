"""The Dramatiq actors: thin wrappers that run one use case each with this process's container.

Every job is idempotent (a compare-and-set guards each state change), so a message delivered
twice, late or after a crash does no harm.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq

from payments import c2b, callbacks, initiation, reconciliation, shop_webhooks
from payments.container import Container
from payments.jobs import (
    DELIVER_WEBHOOK,
    PROCESS_C2B,
    PROCESS_CALLBACK,
    QUERY_PAYMENT,
    SEND_PUSH,
)

_container: Container | None = None


def bind(container: Container) -> None:
    """Give the actors of this process their dependencies (called once at start)."""
    global _container  # noqa: PLW0603 - one container per worker process, set at boot
    _container = container


def _c() -> Container:
    if _container is None:
        raise RuntimeError("workers.actors.bind() was not called in this process")
    return _container


#: Longest wait we honour from Daraja before resending a refused push: the scheduler
#: re-drives `created` payments after 30 s anyway.
MAX_PUSH_RETRY_DELAY_MS = 25_000


def send_push(payment_id: str) -> None:
    try:
        initiation.send_push(_c(), payment_id)
    except initiation.PushDeferred as exc:
        if exc.retry_after_s is None:
            raise
        # Daraja said how long to wait (a locked subscriber: about a minute).
        delay = min(int(exc.retry_after_s * 1000), MAX_PUSH_RETRY_DELAY_MS)
        raise dramatiq.Retry(str(exc), delay=delay) from exc


def process_callback(inbox_id: int) -> None:
    callbacks.process(_c(), inbox_id)


def process_c2b(record_id: str) -> None:
    c2b.process(_c(), record_id)


def query_payment(payment_id: str) -> None:
    reconciliation.query_payment(_c(), payment_id)


#: Worker threads of one process that may wait on the shop's webhook at once: a shop that is
#: slow to answer (up to 10 s an attempt) never holds every thread the payment jobs need.
WEBHOOK_THREADS = 2
_webhook_slots = threading.BoundedSemaphore(WEBHOOK_THREADS)
#: Dramatiq runs the waiting job with the lowest priority first: payment jobs before webhooks.
WEBHOOK_PRIORITY = 10


def deliver_webhook(event_id: str) -> None:
    if not _webhook_slots.acquire(blocking=False):
        # Leave the thread to other work; the scheduler queues the event again shortly.
        shop_webhooks.postpone(_c(), event_id)
        return
    try:
        shop_webhooks.deliver(_c(), event_id)
    finally:
        _webhook_slots.release()


def _retry_push(retries: int, exc: BaseException) -> bool:
    # Refused-before-processing pushes come back as PushDeferred; the attempt count that
    # decides when to give up lives in PostgreSQL (payments.push_attempts), not here.
    return retries < initiation.MAX_PUSH_ATTEMPTS + 2


def register(broker: dramatiq.Broker, *, expiry_s: int) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare the actors on `broker` with explicit retry, time and age limits.

    Never Dramatiq's defaults (20 retries over ~30 days, 10 min time limit): a payment job
    that cannot finish within the payment's lifetime is better dead-lettered and seen.
    """
    max_age = expiry_s * 1000
    return {
        SEND_PUSH.actor: dramatiq.actor(
            queue_name=SEND_PUSH.queue, actor_name=SEND_PUSH.actor, broker=broker,
            retry_when=_retry_push, min_backoff=2_000, max_backoff=20_000,
            time_limit=60_000, max_age=max_age,
        )(send_push),
        PROCESS_CALLBACK.actor: dramatiq.actor(
            queue_name=PROCESS_CALLBACK.queue, actor_name=PROCESS_CALLBACK.actor, broker=broker,
            max_retries=10, min_backoff=1_000, max_backoff=30_000, time_limit=30_000,
        )(process_callback),
        PROCESS_C2B.actor: dramatiq.actor(
            queue_name=PROCESS_C2B.queue, actor_name=PROCESS_C2B.actor, broker=broker,
            max_retries=10, min_backoff=1_000, max_backoff=30_000, time_limit=30_000,
        )(process_c2b),
        QUERY_PAYMENT.actor: dramatiq.actor(
            queue_name=QUERY_PAYMENT.queue, actor_name=QUERY_PAYMENT.actor, broker=broker,
            max_retries=2, min_backoff=2_000, max_backoff=10_000, time_limit=60_000,
            max_age=max_age,
        )(query_payment),
        # The shop's answers are kept per attempt and retried on SHOP_WEBHOOK_RETRY_S from
        # the database; Dramatiq retries only our own failures (the database), briefly.
        DELIVER_WEBHOOK.actor: dramatiq.actor(
            queue_name=DELIVER_WEBHOOK.queue, actor_name=DELIVER_WEBHOOK.actor, broker=broker,
            max_retries=3, min_backoff=1_000, max_backoff=10_000, time_limit=60_000,
            priority=WEBHOOK_PRIORITY,
        )(deliver_webhook),
    }  # fmt: skip

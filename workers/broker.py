"""The Dramatiq broker: Redis in production, an in-process stub for `khalex-pay dev`."""

from __future__ import annotations

from uuid import uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis

from payments.container import Publish
from payments.jobs import QUEUES
from plumbing.settings import Settings
from store.outbox import Job
from workers.correlation import OPTION, CorrelationMiddleware

#: A worker silent this long is presumed dead and its unacked messages go back in line.
#: Dramatiq's 60 s default plus its 0.1 % maintenance roll left a killed worker's message
#: waiting ~13 min when measured; payments cannot wait that long.
HEARTBEAT_TIMEOUT_MS = 15_000
#: Chance per million broker calls of running that recovery pass (Dramatiq's default: 1 000).
#: An idle worker calls about once a second per queue, so at 25 % a dead worker's messages
#: come back a few seconds after its heartbeat times out. The pass itself is cheap: it looks
#: for silent workers in one sorted set.
MAINTENANCE_CHANCE = 250_000


def build_broker(settings: Settings, *, in_process: bool = False) -> dramatiq.Broker:
    """A broker with every queue declared; `in_process` (or no REDIS_URL) gives the stub.

    Its jobs run under the correlation id their message carries (`CorrelationMiddleware`).
    """
    broker: dramatiq.Broker
    if settings.redis_url and not in_process:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.redis_url,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE,
        )
    else:
        broker = StubBroker()
    broker.add_middleware(CorrelationMiddleware())
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def publisher(broker: dramatiq.Broker) -> Publish:
    """Publish outbox jobs as Dramatiq messages (ids only, never personal data).

    The message carries the job's correlation id in its options (`correlation_id`). On
    Redis the publisher also has `many(jobs)`, which sends a batch in one round trip.
    """
    if isinstance(broker, RedisBroker):
        return RedisPublisher(broker)

    def publish(job: Job) -> None:
        broker.enqueue(_message(job))

    return publish


def _message(job: Job, **extra: object) -> dramatiq.Message[object]:
    options: dict[str, object] = {"outbox_id": job.id, **extra}
    if job.correlation_id:
        options[OPTION] = job.correlation_id
    return dramatiq.Message(
        queue_name=job.queue, actor_name=job.actor, args=tuple(job.args), kwargs={},
        options=options,
    )  # fmt: skip


class RedisPublisher:
    """Publish to a RedisBroker, one job at a time or a batch in one pipeline."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker

    def __call__(self, job: Job) -> None:
        self.broker.enqueue(_message(job))

    def many(self, jobs: list[Job]) -> None:
        """Enqueue every job with one round trip to Redis, as `RedisBroker.enqueue` would
        one by one (same Lua script, same middleware hooks); a relay of hundreds of jobs
        would otherwise wait on hundreds of round trips. Raises if the pipeline fails;
        some jobs may then be enqueued already (the relay sends them again; jobs tolerate
        a duplicate)."""
        broker = self.broker
        pipe = broker.client.pipeline(transaction=False)
        dispatch = broker.scripts["dispatch"]
        # What stays the same for the whole batch, worked out once.
        common = [broker.broker_id, broker.heartbeat_timeout, broker.dead_message_ttl]
        max_unpack_size = broker._max_unpack_size()  # type: ignore[no-untyped-call]
        now = current_millis()
        sent = []
        for job in jobs:
            redis_message_id = str(uuid4())
            message = _message(job, redis_message_id=redis_message_id)
            broker.emit_before("enqueue", message, None)
            args = [
                "enqueue", now, message.queue_name, *common,
                broker._should_do_maintenance("enqueue"), max_unpack_size,
                redis_message_id, message.encode(),
            ]  # fmt: skip
            dispatch(keys=[broker.namespace], args=args, client=pipe)
            sent.append(message)
        pipe.execute()
        for message in sent:
            broker.emit_after("enqueue", message, None)

"""Dramatiq's queues as operators see them: depth, delayed, dead letters; replay and purge.

Read from where the messages are, never from counters kept by one process: the Redis keys
of Dramatiq's Redis broker in production, the in-memory queues of the stub broker in
`khalex-pay dev`. This module is the only reader of those keys: the API, `/metrics`, the
alerts and the `dlq` commands all read here, and agree on a message's age (`waited_s`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from queue import Queue
from typing import Any, Protocol

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from sqlalchemy.engine import Engine

from domain.phone import mask_msisdns_in
from payments.jobs import QUEUES
from plumbing.settings import Settings
from store import deliveries

log = logging.getLogger(__name__)

#: Key prefix of Dramatiq's Redis broker (its default; `workers.broker` keeps it).
NAMESPACE = "dramatiq"
#: Most dead letters listed per queue by default (the CLI and the API).
LIST_LIMIT = 100
#: Message options a replay drops: the spent retry budget, the old schedule and failure,
#: and the Redis id (the broker gives the new copy its own).
SPENT_OPTIONS = frozenset({"retries", "eta", "traceback", "requeue_timestamp", "redis_message_id"})
#: Seconds the API waits for Redis when reading the queues.
REDIS_TIMEOUT_S = 2.0
#: Called after each message a long operation handled: (done, total).
Progress = Callable[[int, int], None]


class BrokerUnavailable(Exception):
    """The broker's queues could not be read (Redis down or unreachable)."""


@dataclass(frozen=True)
class QueueStats:
    """One queue: ready messages, delayed ones (incl. retries), dead letters, oldest wait."""

    name: str
    depth: int
    delayed: int
    dead_lettered: int
    oldest_age_s: float  # age of the oldest ready message; 0 when none is waiting


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, with its arguments reduced to ids."""

    queue: str
    entry_id: str  # the broker's id for this copy (Redis: the XQ member)
    message_id: str  # Dramatiq's id, the same across retries (job_deliveries' key)
    actor: str
    args: list[str | int]
    dead_lettered_at: datetime | None  # unknown for the stub broker
    retries: int
    error: str | None


class QueueReader(Protocol):
    """What the API and `/metrics` ask of the broker."""

    queues: tuple[str, ...]

    def stats(self) -> list[QueueStats]: ...

    def dead_letters(
        self, queue: str | None = None, limit: int = LIST_LIMIT
    ) -> list[DeadLetter]: ...


def queue_reader(settings: Settings) -> QueueReader:
    """The reader for this process: Redis when configured, else the dev stub broker."""
    if settings.redis_url:
        # Short timeouts: a scrape or an ops page must answer even when Redis does not.
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        return RedisQueues(client)
    # `khalex-pay dev` sets its StubBroker as the global broker before building the app.
    broker = dramatiq.broker.global_broker
    if isinstance(broker, StubBroker):
        return StubQueues(broker)
    return NoQueues()


class NoQueues:
    """No broker to read (a process without Redis or a stub broker): nothing to show."""

    queues: tuple[str, ...] = ()

    def stats(self) -> list[QueueStats]:
        return []

    def dead_letters(self, queue: str | None = None, limit: int = LIST_LIMIT) -> list[DeadLetter]:
        return []


# --- Redis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    ready: str  # LIST of ids waiting
    bodies: str  # HASH id -> message, ready and in flight
    delayed_bodies: str  # HASH id -> message on the delay queue (retries, eta)
    dead: str  # ZSET id -> when it was dead-lettered (ms)
    dead_bodies: str  # HASH id -> message


def _keys(namespace: str, queue: str) -> _Keys:
    base = f"{namespace}:{queue}"
    return _Keys(base, f"{base}.msgs", f"{base}.DQ.msgs", f"{base}.XQ", f"{base}.XQ.msgs")


class RedisQueues:
    """Dramatiq's Redis keys, read (and for the CLI, repaired) directly.

    Parameters:
      client: a Redis client on the broker's database.
      queues: the queue names to report (every Khalex Pay queue by default).
      namespace: the broker's key prefix.
    """

    def __init__(
        self,
        client: redis.Redis[bytes],
        queues: Sequence[str] = QUEUES,
        *,
        namespace: str = NAMESPACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.queues = tuple(queues)
        self.namespace = namespace
        self._clock = clock

    def stats(self) -> list[QueueStats]:
        try:
            return self._stats()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"cannot read the queues in Redis: {exc}") from exc

    def _stats(self) -> list[QueueStats]:
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            keys = _keys(self.namespace, queue)
            pipe.llen(keys.ready)
            pipe.hlen(keys.delayed_bodies)
            pipe.zcard(keys.dead)
        counts = iter(pipe.execute())
        return [
            QueueStats(
                name=queue,
                depth=next(counts),
                delayed=next(counts),
                dead_lettered=next(counts),
                oldest_age_s=self._oldest_age(queue),
            )
            for queue in self.queues
        ]

    def _oldest_age(self, queue: str) -> float:
        keys = _keys(self.namespace, queue)
        # The head can be fetched and acked between our two reads; look again, then give up.
        for _ in range(3):
            head = self.client.lindex(keys.ready, 0)
            if head is None:
                return 0.0
            body = self.client.hget(keys.bodies, head)
            if body is not None:
                return waited_s(dramatiq.Message.decode(body), self._clock())
        return 0.0

    def dead_letters(self, queue: str | None = None, limit: int = LIST_LIMIT) -> list[DeadLetter]:
        """Dead letters of `queue` (or of every queue), newest first, `limit` per queue."""
        found: list[DeadLetter] = []
        try:
            for name in self._selected(queue):
                keys = _keys(self.namespace, name)
                entries = self.client.zrevrange(keys.dead, 0, limit - 1, withscores=True)
                found.extend(self._read(name, entries))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"cannot read the dead letters in Redis: {exc}") from exc
        return found

    def _read(self, queue: str, entries: list[tuple[bytes, float]]) -> Iterable[DeadLetter]:
        if not entries:
            return []
        keys = _keys(self.namespace, queue)
        bodies = self.client.hmget(keys.dead_bodies, [entry for entry, _ in entries])
        return [
            _dead_letter(queue, entry.decode(), body, _from_ms(score))
            for (entry, score), body in zip(entries, bodies, strict=True)
            if body is not None
        ]

    def _selected(self, queue: str | None) -> tuple[str, ...]:
        if queue is None:
            return self.queues
        if queue not in self.queues:
            raise ValueError(f"unknown queue {queue!r}; queues are {', '.join(self.queues)}")
        return (queue,)

    def all_entries(self, queue: str | None = None) -> list[tuple[str, str]]:
        """Every dead letter as (queue, entry id), oldest first: a snapshot to work through."""
        return [
            (name, entry.decode())
            for name in self._selected(queue)
            for entry in self.client.zrange(_keys(self.namespace, name).dead, 0, -1)
        ]

    def find(self, ref: str, queue: str | None = None) -> list[tuple[str, str]]:
        """Dead letters whose entry id or Dramatiq message id is `ref`, as (queue, entry id)."""
        matches: list[tuple[str, str]] = []
        for name in self._selected(queue):
            keys = _keys(self.namespace, name)
            if self.client.zscore(keys.dead, ref) is not None:
                matches.append((name, ref))
                continue
            for entry, body in self.client.hscan_iter(keys.dead_bodies):
                if dramatiq.Message.decode(body).message_id == ref:
                    matches.append((name, entry.decode()))
        return matches

    def take(self, queue: str, entry_id: str) -> dramatiq.Message[Any] | None:
        """The dead message `entry_id`, or None if it is gone (replayed or purged meanwhile)."""
        body = self.client.hget(_keys(self.namespace, queue).dead_bodies, entry_id)
        return None if body is None else dramatiq.Message.decode(body)

    def forget(self, queue: str, entry_ids: Sequence[str]) -> None:
        """Delete dead letters, both the id and the body, in one transaction."""
        if not entry_ids:
            return
        keys = _keys(self.namespace, queue)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(keys.dead, *entry_ids)
        pipe.hdel(keys.dead_bodies, *entry_ids)
        pipe.execute()

    def broker(self) -> dramatiq.Broker:
        """A broker on the same Redis keys, to enqueue replayed messages as workers expect."""
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            client=self.client, namespace=self.namespace
        )
        return broker


def waited_s(message: dramatiq.Message[Any], now_s: float) -> float:
    """Seconds a ready `message` has waited: since it was sent or, for a retry or a delayed
    job, since its `eta` (when it became ready again), never since its first send."""
    ready_ms = max(message.message_timestamp, int(message.options.get("eta") or 0))
    return round(max(0.0, now_s - ready_ms / 1000), 3)


def _dead_letter(queue: str, entry_id: str, body: bytes, at: datetime | None) -> DeadLetter:
    message = dramatiq.Message.decode(body)
    options = message.options
    return DeadLetter(
        queue=queue,
        entry_id=entry_id,
        message_id=message.message_id,
        actor=message.actor_name,
        args=ids_only(message.args),
        dead_lettered_at=at,
        retries=int(options.get("retries") or 0),
        error=_last_line(options.get("traceback")),
    )


def ids_only(args: Iterable[object]) -> list[str | int]:
    """Message arguments safe to show: ids pass, other text is masked, the rest only named."""
    return [_shown(arg) for arg in args]


def _shown(arg: object) -> str | int:
    if isinstance(arg, bool) or not isinstance(arg, str | int):
        return f"<{type(arg).__name__}>"
    if isinstance(arg, int):
        return arg
    try:
        uuid.UUID(arg)  # a payment id, as jobs carry: masking could garble its digits
    except ValueError:
        return mask_msisdns_in(arg)
    return arg


def _last_line(traceback: object) -> str | None:
    if not isinstance(traceback, str) or not traceback.strip():
        return None
    return mask_msisdns_in(traceback.strip().splitlines()[-1])[:500]


def _from_ms(score: float) -> datetime:
    return datetime.fromtimestamp(score / 1000, UTC)


# --- The stub broker (`khalex-pay dev`) ------------------------------------------------------


class StubQueues:
    """The in-memory queues of a `StubBroker`, read in the process that owns it."""

    def __init__(
        self,
        broker: StubBroker,
        queues: Sequence[str] = QUEUES,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.queues = tuple(queues)
        self._clock = clock

    def stats(self) -> list[QueueStats]:
        return [self._stats(queue) for queue in self.queues]

    def _stats(self, queue: str) -> QueueStats:
        ready = self.broker.queues.get(queue)
        delayed = self.broker.queues.get(dq_name(queue))
        return QueueStats(
            name=queue,
            depth=ready.qsize() if ready else 0,
            # A worker holds delayed messages in memory until due, still unfinished here.
            delayed=delayed.unfinished_tasks if delayed else 0,
            dead_lettered=len(self.broker.dead_letters_by_queue.get(queue, ())),
            oldest_age_s=self._oldest_age(ready),
        )

    def _oldest_age(self, ready: Queue[bytes] | None) -> float:
        if ready is None:
            return 0.0
        with ready.mutex:
            head = ready.queue[0] if ready.queue else None
        if head is None:
            return 0.0
        return waited_s(dramatiq.Message.decode(head), self._clock())

    def dead_letters(self, queue: str | None = None, limit: int = LIST_LIMIT) -> list[DeadLetter]:
        names = self.queues if queue is None else (queue,)
        found: list[DeadLetter] = []
        for name in names:
            messages = list(self.broker.dead_letters_by_queue.get(name, ()))[-limit:]
            found.extend(
                _dead_letter(name, m.message_id, m.encode(), None) for m in reversed(messages)
            )
        return found


# --- Repairs (the `khalex-pay dlq` commands) -------------------------------------------------


def fresh_copy(message: dramatiq.Message[Any], now_ms: int) -> dramatiq.Message[Any]:
    """`message` as a new job: same id and arguments, a full retry budget, born now.

    Born now because the actors' age limit would otherwise dead-letter an old message
    again at once; the same id so its delivery count in job_deliveries stays its own.
    """
    options = {k: v for k, v in message.options.items() if k not in SPENT_OPTIONS}
    return dramatiq.Message(
        queue_name=message.queue_name.removesuffix(".DQ"),
        actor_name=message.actor_name,
        args=message.args,
        kwargs=message.kwargs,
        options=options,
        message_id=message.message_id,
        message_timestamp=now_ms,
    )


def reset_deliveries(engine: Engine, message_id: str) -> None:
    """Clear the poison guard's count for `message_id`, so its next run is allowed."""
    with engine.begin() as conn:
        deliveries.reset(conn, message_id)


def replay(
    queues: RedisQueues,
    engine: Engine,
    entries: Sequence[tuple[str, str]],
    progress: Progress | None = None,
) -> int:
    """Put dead letters back on their queues; returns how many went back.

    Order matters: the poison count is cleared before the message is visible to workers,
    and the dead letter is deleted only after the broker took the copy, so a crash in
    between leaves a job to run twice (every job is idempotent), never a lost one.
    """
    broker = queues.broker()
    replayed = 0
    for done, (queue, entry_id) in enumerate(entries, start=1):
        message = queues.take(queue, entry_id)
        if message is not None:
            reset_deliveries(engine, message.message_id)
            broker.enqueue(fresh_copy(message, int(time.time() * 1000)))
            queues.forget(queue, [entry_id])
            replayed += 1
            log.info("replayed %s (%s) on %s", message.message_id, message.actor_name, queue)
        if progress:
            progress(done, len(entries))
    return replayed


#: Dead letters deleted per Redis transaction when purging.
PURGE_BATCH = 100


def purge(
    queues: RedisQueues, entries: Sequence[tuple[str, str]], progress: Progress | None = None
) -> int:
    """Delete the listed dead letters (a snapshot: ones arriving meanwhile stay)."""
    by_queue: dict[str, list[str]] = {}
    for queue, entry_id in entries:
        by_queue.setdefault(queue, []).append(entry_id)
    done = 0
    for queue, ids in by_queue.items():
        for start in range(0, len(ids), PURGE_BATCH):
            batch = ids[start : start + PURGE_BATCH]
            queues.forget(queue, batch)
            done += len(batch)
            if progress:
                progress(done, len(entries))
    return done


def dead_deliveries(conn: sa.Connection, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Messages the poison guard dead-lettered (job_deliveries), newest first, masked."""
    return [
        {**row, "args": ids_only(row["args"] or []), "last_error": _masked(row["last_error"])}
        for row in deliveries.dead(conn, limit)
    ]


def _masked(text: str | None) -> str | None:
    return mask_msisdns_in(text) if text else None

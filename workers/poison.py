"""Stop poison messages: a job whose runs keep dying with their worker goes to the dead letters.

Dramatiq does not count a run cut short by SIGKILL or the OOM killer as a retry, so such a
message would be redelivered for ever. Each start and finish is counted instead, and a
message that started `max_unfinished` times without finishing is dead-lettered, with its
record written to the database (`job_deliveries`: the dead-letter listings, alerts and
metrics read it there).

On Redis (production) the counts live in a hash per message id next to Dramatiq's own keys:
one round trip per job, no database write for a job that runs normally. A run that failed
is counted finished at once (its retry, the same message, may start on any thread soon);
a run that succeeded is acknowledged and never delivered again, so its finish rides with
the next start on the same thread (or that thread's shutdown). Should the worker die in
between, a message it finished but had not yet acknowledged counts one run too many.
The in-process broker of `khalex-pay dev` counts in the database, as the record is kept.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

import dramatiq
import redis
from dramatiq.middleware import Middleware, SkipMessage
from sqlalchemy.engine import Engine

from store import deliveries
from store.db import autocommit

log = logging.getLogger(__name__)

#: Runs that may die with their worker before the message is dead-lettered.
MAX_UNFINISHED = 3
#: Redis key of one message's counts: `<prefix>:<message id>`.
KEY_PREFIX = "khalex-pay:deliveries"
#: How long the counts of a message that has not finished every run are kept. A message
#: that kills its worker comes back within seconds (the broker's heartbeat timeout) and
#: retries back off for at most minutes, so a day is far more than its runs can span.
COUNT_TTL_MS = 24 * 3600 * 1000

#: Count a start; returns starts minus finishes. The key expires if the message never ends.
#: KEYS[2], when given, is an earlier message whose finish is counted first (as `_FINISH`).
_START = """
if KEYS[2] then
  local done = redis.call('HINCRBY', KEYS[2], 'finished', 1)
  if done >= tonumber(redis.call('HGET', KEYS[2], 'started') or '0') then
    redis.call('DEL', KEYS[2])
  else
    redis.call('PEXPIRE', KEYS[2], ARGV[1])
  end
end
local started = redis.call('HINCRBY', KEYS[1], 'started', 1)
local finished = tonumber(redis.call('HGET', KEYS[1], 'finished') or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return started - finished
"""
#: Count a finish; a message with no run left unfinished needs no count at all (a later
#: delivery would start from zero unfinished either way), so its key goes.
_FINISH = """
local finished = redis.call('HINCRBY', KEYS[1], 'finished', 1)
local started = tonumber(redis.call('HGET', KEYS[1], 'started') or '0')
if finished >= started then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return started - finished
"""


class Counter(Protocol):
    """Where the starts and finishes of each message are counted."""

    def started(self, message: Any) -> int:
        """Count one more start of `message`; returns how many starts never finished."""
        ...

    def finished(self, message: Any, error: str | None) -> None:
        """Count one finish of `message` (`error`: how it failed, if it did)."""
        ...

    def forget(self, message: Any) -> None:
        """Drop `message`'s counts: it is dead-lettered, its record is in the database."""
        ...

    def flush(self) -> None:
        """Count now any finish this thread still holds (the thread is ending)."""
        ...


class RedisCounter:
    """Counts in a Redis hash per message id: one script call per job (see the module)."""

    def __init__(self, client: redis.Redis[Any], *, prefix: str = KEY_PREFIX) -> None:
        self._redis = client
        self._prefix = prefix
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)
        self._held = threading.local()  # `pending`: the key of a success not yet counted

    def _key(self, message: Any) -> str:
        return f"{self._prefix}:{message.message_id}"

    def _take_held(self) -> str | None:
        held: str | None = getattr(self._held, "pending", None)
        self._held.pending = None
        return held

    def started(self, message: Any) -> int:
        held = self._take_held()
        keys = [self._key(message)] if held is None else [self._key(message), held]
        return int(self._start(keys=keys, args=[COUNT_TTL_MS]))

    def finished(self, message: Any, error: str | None) -> None:
        self.flush()  # none held in a worker thread (its start took it); kept exact anyway
        if error is None:
            self._held.pending = self._key(message)  # acknowledged next: never redelivered
        else:
            self._finish(keys=[self._key(message)], args=[COUNT_TTL_MS])

    def forget(self, message: Any) -> None:
        self._redis.delete(self._key(message))

    def flush(self) -> None:
        held = self._take_held()
        if held is not None:
            self._finish(keys=[held], args=[COUNT_TTL_MS])


class DatabaseCounter:
    """Counts in `job_deliveries`, one statement per start and finish (no Redis: dev)."""

    def __init__(self, engine: Engine) -> None:
        # Each write is one statement, committed by itself: no BEGIN and COMMIT round trips.
        self._engine = autocommit(engine)

    def started(self, message: Any) -> int:
        with self._engine.begin() as conn:
            return deliveries.started(
                conn, message.message_id, message.queue_name, message.actor_name,
                list(message.args),
            )  # fmt: skip

    def finished(self, message: Any, error: str | None) -> None:
        with self._engine.begin() as conn:
            deliveries.finished(conn, message.message_id, error)

    def forget(self, message: Any) -> None:
        """The counts are the record itself here: nothing to drop."""

    def flush(self) -> None:
        """Every finish is written when it happens: nothing held."""


class PoisonGuard(Middleware):
    """Dead-letters a message that started more than `max_unfinished` times unfinished.

    `counter` defaults to the database's (`DatabaseCounter`); workers on Redis pass a
    `RedisCounter`. The dead-letter record is written to the database either way.
    """

    def __init__(
        self,
        engine: Engine,
        max_unfinished: int = MAX_UNFINISHED,
        *,
        counter: Counter | None = None,
    ) -> None:
        self.engine = autocommit(engine)
        self.counter = counter if counter is not None else DatabaseCounter(engine)
        self.max_unfinished = max_unfinished

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        unfinished = self.counter.started(message)
        if unfinished <= self.max_unfinished:
            return
        reason = f"started {unfinished} times without finishing: it kills its worker"
        # A crash between here and the end of `dead_lettered` only counts the message
        # again at its next delivery, which dead-letters it then.
        with self.engine.begin() as conn:
            deliveries.dead_lettered(
                conn, message.message_id, reason, queue=message.queue_name,
                actor=message.actor_name, args=list(message.args), started=unfinished,
            )  # fmt: skip
        self.counter.forget(message)
        log.error("dead-lettering %s (%s): %s", message.message_id, message.actor_name, reason)
        message.fail()
        raise SkipMessage(reason)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self.counter.finished(message, repr(exception) if exception else None)

    after_skip_message = after_process_message

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: Any) -> None:
        self.counter.flush()

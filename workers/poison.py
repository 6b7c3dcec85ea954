"""Stop poison messages: a job whose runs keep dying with their worker goes to the dead letters.

Dramatiq does not count a run cut short by SIGKILL or the OOM killer as a retry, so such a
message would be redelivered for ever. Each start and finish is counted in the database
instead; a message that started `max_unfinished` times without finishing is dead-lettered.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage
from sqlalchemy.engine import Engine

from store import deliveries
from store.db import autocommit

log = logging.getLogger(__name__)

#: Runs that may die with their worker before the message is dead-lettered.
MAX_UNFINISHED = 3


class PoisonGuard(Middleware):
    def __init__(self, engine: Engine, max_unfinished: int = MAX_UNFINISHED) -> None:
        # Each write is one statement, committed by itself: no BEGIN and COMMIT round trips
        # around the two a job costs. A crash between counting a start and marking the
        # message dead only counts it again at its next delivery, which marks it then.
        self.engine = autocommit(engine)
        self.max_unfinished = max_unfinished

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self.engine.begin() as conn:
            unfinished = deliveries.started(
                conn, message.message_id, message.queue_name, message.actor_name,
                list(message.args),
            )  # fmt: skip
            if unfinished <= self.max_unfinished:
                return
            reason = f"started {unfinished} times without finishing: it kills its worker"
            deliveries.dead_lettered(conn, message.message_id, reason)
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
        with self.engine.begin() as conn:
            deliveries.finished(conn, message.message_id, repr(exception) if exception else None)

    after_skip_message = after_process_message

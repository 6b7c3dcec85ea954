"""Run each job under the correlation id its message carries, and log how the job ended.

The publisher copies the outbox row's correlation id into the message options; while the
job runs, its log lines, Sentry events and the outbox rows it writes (the jobs it queues)
carry the same id. A message without one (queued before ids existed) gets a fresh id.
"""

from __future__ import annotations

import logging
import threading
import time
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from payments.jobs import QUERY_PAYMENT, SEND_PUSH
from plumbing import correlation

log = logging.getLogger(__name__)

#: The message option that carries the correlation id.
OPTION = "correlation_id"
#: Actors whose first argument is a payment id, named on their log lines.
PAYMENT_ACTORS = frozenset({SEND_PUSH.actor, QUERY_PAYMENT.actor})


class CorrelationMiddleware(Middleware):
    """Sets `plumbing.correlation` around each job (worker threads each keep their own)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _stack(self) -> list[tuple[Token[str | None], float]]:
        stack: list[tuple[Token[str | None], float]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        correlation_id = message.options.get(OPTION)
        if not isinstance(correlation_id, str) or not correlation.is_valid(correlation_id):
            correlation_id = correlation.new_id("job-")
            message.options[OPTION] = correlation_id  # a retry keeps the same id
        self._stack().append((correlation.bind(correlation_id), time.monotonic()))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        stack = self._stack()
        if not stack:
            return
        token, started = stack.pop()
        try:
            _log_end(message, time.monotonic() - started, exception)
        finally:
            correlation.unbind(token)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # Another middleware skipped the job (a poison message); it logged why.
        stack = self._stack()
        if stack:
            correlation.unbind(stack.pop()[0])


def _log_end(message: Any, elapsed_s: float, exception: BaseException | None) -> None:
    extra: dict[str, object] = {"job": message.actor_name, "message_id": message.message_id}
    if message.actor_name in PAYMENT_ACTORS and message.args:
        extra["payment_id"] = str(message.args[0])
    elapsed_ms = round(elapsed_s * 1000)
    if exception is None:
        log.info("job %s finished in %d ms", message.actor_name, elapsed_ms, extra=extra)
    else:
        log.warning(
            "job %s failed after %d ms: %s", message.actor_name, elapsed_ms,
            type(exception).__name__, extra=extra,
        )  # fmt: skip

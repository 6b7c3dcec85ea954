"""The correlation id: one id that follows a payment from its HTTP request through every job.

The API sets it per request (from `X-Request-ID`, or a new one), outbox rows carry it, the
publisher puts it in the Dramatiq message, and the worker sets it again around each job, so
jobs queued from inside a job inherit it. Every log line and Sentry event names it.
Standard library only: the store, the API and the workers all read it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from domain.phone import mask_msisdns_in

#: The request (and answer) header that carries the id.
HEADER = "X-Request-ID"
#: Longest id we accept from a caller (it is stored in `outbox.correlation_id`).
MAX_LENGTH = 64
#: What a caller's id may hold: enough for UUIDs, ULIDs and most tracing ids, nothing that
#: could break a log line or a header.
_SAFE = re.compile(r"[A-Za-z0-9._:\-]+")

#: Hex digits 0-9 written as the letters after a-f, so a hex id holds no digit at all.
_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_id(prefix: str = "") -> str:
    """A fresh random id of 32 letters (128 bits) after `prefix` (e.g. "sched-").

    Letters only: a run of hex digits can look like a phone number to log masking, and an
    id must read the same in logs as in rows.
    """
    return prefix + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS)


def is_valid(value: str) -> bool:
    """True for a caller's id we may keep: 1 to 64 safe characters and no phone number.

    An id holding what looks like a phone number (a run such as 0712345678) is refused: it
    would be stored unmasked in rows and messages, and read differently in the masked log
    lines. The caller gets a new id in the answer.
    """
    if not 0 < len(value) <= MAX_LENGTH or not _SAFE.fullmatch(value):
        return False
    return mask_msisdns_in(value) == value


def current() -> str | None:
    """The id of the request or job this code runs for, if any."""
    return _current.get()


def bind(correlation_id: str) -> Token[str | None]:
    """Set the id until `unbind(token)`; for hooks that cannot wrap a block (middleware)."""
    return _current.set(correlation_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)


@contextmanager
def bound(correlation_id: str | None = None) -> Iterator[str]:
    """Run the block under `correlation_id` (a new one if None), then restore the old one."""
    value = correlation_id or new_id()
    token = bind(value)
    try:
        yield value
    finally:
        unbind(token)

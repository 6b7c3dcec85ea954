"""`GET /api/payments/{paymentId}/events`: a payment's changes as server-sent events.

The page's alternative to polling (CONTRACT §11). The handler reads the database at a modest
pace (no pub/sub: nothing new to run) and sends one `payment` event, carrying the Payment
answer, whenever what the caller sees changes; a comment line keeps proxies from closing an
idle stream. The stream ends after a final state, or after `MAX_STREAM_S` (the client then
polls, paced by `pollAfterMs`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import msgspec
from litestar import get
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.callers import Caller
from api.openapi_docs import PAYMENT_EVENTS
from api.payments import status_as
from api.types import Deps
from payments.container import Container

#: How often the stream re-reads the payment (one primary-key read per open stream).
POLL_S = 1.0
#: Seconds of silence before a heartbeat comment.
HEARTBEAT_S = 15.0
#: Longest a stream stays open; a payment expires (PAYMENT_EXPIRY_S) well before.
MAX_STREAM_S = 15 * 60
#: Statuses after which nothing more is expected.
FINAL = frozenset({"completed", "failed", "cancelled"})
#: Fields that change with every read and are not a state change.
_VOLATILE = ("updatedAt",)


@get(
    "/api/payments/{payment_id:str}/events", sync_to_thread=True, tags=["payments"],
    media_type="text/event-stream", **PAYMENT_EVENTS,
)  # fmt: skip
def payment_events(payment_id: FromPath[str], container: Deps, caller: Caller) -> ServerSentEvent:
    """Server-sent events: a `payment` event (the Payment JSON) per change, until final.

    Who may read which payment as for the status endpoint: a checkout token only its own
    order's payments (else 404). A `: heartbeat` comment every 15 s while waiting.
    """
    first = status_as(container, caller, payment_id)  # 404 before any stream starts
    return ServerSentEvent(_changes(container, caller, payment_id, first))


async def _changes(
    container: Container, caller: Caller, payment_id: str, first: dict[str, object]
) -> AsyncIterator[ServerSentEventMessage]:
    last = first
    yield _event(first)
    started = quiet_since = time.monotonic()
    while last["status"] not in FINAL and time.monotonic() - started < MAX_STREAM_S:
        await anyio.sleep(POLL_S)
        try:
            now = await anyio.to_thread.run_sync(status_as, container, caller, payment_id)
        except Exception:
            now = last
        if _seen(now) != _seen(last):
            last, quiet_since = now, time.monotonic()
            yield _event(now)
        elif time.monotonic() - quiet_since >= HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield ServerSentEventMessage(data=None, comment="heartbeat")


def _seen(answer: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in answer.items() if k not in _VOLATILE}


def _event(answer: dict[str, object]) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        event="payment", data=msgspec.json.encode(answer).decode(), id=str(answer["updatedAt"])
    )

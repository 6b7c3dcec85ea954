"""Give every request a correlation id: the caller's `X-Request-ID` if sound, else a new one.

The id is set for the request's code (its log lines, the outbox rows it writes, hence the
jobs those become) and echoed in the answer's `X-Request-ID`, so a shop can quote it.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from plumbing import correlation

_HEADER_KEY = correlation.HEADER.lower().encode("latin-1")


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: run each HTTP request under its correlation id."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        correlation_id = caller_id(scope) or correlation.new_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[correlation.HEADER] = correlation_id
            await send(message)

        with correlation.bound(correlation_id):
            await app(scope, receive, send_with_id)

    return middleware


def caller_id(scope: Scope) -> str | None:
    """The request's `X-Request-ID` when it is a sound id, else None (a new one is made)."""
    for name, value in scope["headers"]:
        if name.lower() == _HEADER_KEY:
            text = value.decode("latin-1").strip()
            return text if correlation.is_valid(text) else None
    return None

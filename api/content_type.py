"""Shop requests must be JSON (CONTRACT.md §8): anything else is 415.

A browser sends `text/plain` (or a form) cross-site without asking first; requiring
`application/json` makes any other site's page unable to post to us unless CORS lets it.
Safaricom's callbacks are not the shop's requests: they keep their own door (§4).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import ApiError

#: Methods that carry a body.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: Paths under /api that are not the shop's: Daraja posts there as it likes.
_NOT_SHOP = ("/api/payments/webhook", "/api/payments/c2b/")


async def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An app-wide guard: a shop request with a body must say `Content-Type: application/json`.

    Async though it never waits: Litestar runs a sync guard in its thread pool, a hop per
    request that costs more than the check."""
    scope = connection.scope
    if scope.get("method") not in _WITH_BODY:
        return
    path = scope.get("root_path", "") + scope["path"]  # `connection.url.path`, not parsed
    if not path.startswith(("/api/", "/demo/")):  # /demo: dev mode's demo shop
        return
    if path.startswith(_NOT_SHOP):
        return
    media_type = connection.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the request as JSON, with Content-Type: application/json.",
        )

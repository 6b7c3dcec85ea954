"""Every shop request we refuse (4xx) is kept with its reason: nothing that reached us is lost.

The shop can see what its frontend sent and why it was refused (`refused_requests`, capped
and purged with the other raw records after RETENTION_DAYS).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from api.errors import ApiError
from api.types import AnyRequest
from payments.container import Container
from store import refusals

log = logging.getLogger(__name__)

#: Refusals not kept: no credentials (401), too large (413), not JSON (415) and rate limited
#: (429) are what a flood is made of, and keeping them would let anyone fill the disk.
NOT_KEPT = frozenset({401, 413, 415, 429})


@contextmanager
def kept(
    container: Container, request: AnyRequest, body: bytes, key: str | None = None
) -> Iterator[None]:
    """Run the block; an ApiError 4xx it raises is kept first, then raised on."""
    try:
        yield
    except ApiError as exc:
        if 400 <= exc.status_code < 500 and exc.status_code not in NOT_KEPT:
            keep(container, request, exc, key, body)
        raise


def keep(
    container: Container, request: AnyRequest, error: ApiError, key: str | None, body: bytes
) -> None:
    """Store the refused request; failing to keep it must not change the answer."""
    try:
        with container.engine.begin() as conn:
            refusals.add(
                conn,
                path=request.url.path,
                status_code=error.status_code,
                code=error.code,
                field=error.field,
                reason=error.message,
                idempotency_key=key,
                body=body,
            )
    except (sa.exc.SQLAlchemyError, ValueError):
        log.exception("could not keep refused request (%s)", error.code)

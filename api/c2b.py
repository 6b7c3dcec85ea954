"""Safaricom's PayBill (C2B) validation and confirmation URLs (README "PayBill fallback").

Registered once per shortcode with `khalex-pay c2b register`. With C2B_URL_SECRET set, the
registered URLs end with that secret (`/api/payments/c2b/confirmation/<secret>`): Daraja
keeps whatever URL was registered, so a secret path segment works as the STK callbacks'
per-payment token does. The paths hold no "mpesa" or "safaricom", which Daraja refuses.
"""

from __future__ import annotations

import sqlalchemy as sa
from litestar import Controller, MediaType, Response, post
from litestar.params import FromPath, RawBody

from api.client_address import client_address
from api.errors import ApiError, payments_unavailable
from api.openapi_docs import C2B_CONFIRMATION, C2B_VALIDATION
from api.types import AnyRequest, Deps
from payments import c2b
from payments.container import Container


class C2bController(Controller):
    path = "/api/payments/c2b"
    tags = ["payments"]  # noqa: RUF012 - Litestar declares it an instance attribute

    @post("/validation", sync_to_thread=True, status_code=200, **C2B_VALIDATION)
    def validation(
        self, request: AnyRequest, container: Deps, body: RawBody
    ) -> Response[dict[str, object]]:
        """Daraja asks whether to take a PayBill payment: an order reference is judged."""
        return _receive(request, container, "validation", body, None)

    @post("/validation/{secret:str}", sync_to_thread=True, status_code=200, **C2B_VALIDATION)
    def validation_with_secret(
        self, request: AnyRequest, container: Deps, body: RawBody, secret: FromPath[str]
    ) -> Response[dict[str, object]]:
        """The validation URL with C2B_URL_SECRET as its last segment."""
        return _receive(request, container, "validation", body, secret)

    @post("/confirmation", sync_to_thread=True, status_code=200, **C2B_CONFIRMATION)
    def confirmation(
        self, request: AnyRequest, container: Deps, body: RawBody
    ) -> Response[dict[str, object]]:
        """Daraja tells of a PayBill payment: stored, then matched to its order by a worker."""
        return _receive(request, container, "confirmation", body, None)

    @post("/confirmation/{secret:str}", sync_to_thread=True, status_code=200, **C2B_CONFIRMATION)
    def confirmation_with_secret(
        self, request: AnyRequest, container: Deps, body: RawBody, secret: FromPath[str]
    ) -> Response[dict[str, object]]:
        """The confirmation URL with C2B_URL_SECRET as its last segment."""
        return _receive(request, container, "confirmation", body, secret)


def _receive(
    request: AnyRequest, container: Container, kind: str, body: bytes, token: str | None
) -> Response[dict[str, object]]:
    source_ip = client_address(request, container.settings.trusted_proxies)
    try:
        answer = c2b.receive(
            container, kind, body, source_ip=source_ip, token=token, headers=dict(request.headers)
        )
    except sa.exc.OperationalError as exc:
        # Not stored: a validation then falls back to the registered ResponseType.
        raise payments_unavailable(container.settings.shop_contact, exc) from exc
    if answer.status_code == 200:
        return Response(answer.body, status_code=200, media_type=MediaType.JSON)
    code = "callback_refused" if answer.status_code == 403 else "invalid_callback"
    raise ApiError(answer.status_code, code, answer.reason or "refused", c2bId=answer.record_id)

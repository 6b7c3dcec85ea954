"""The shop's payment endpoints and Safaricom's callback endpoint (CONTRACT.md §4)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from litestar import Controller, MediaType, Response, get, post
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_202_ACCEPTED

from api import callers
from api import orders as order_api
from api.errors import ApiError
from api.schemas import decode_object, parse_initiate, present
from api.types import AnyRequest, Deps
from khalex_pay import callbacks, initiation
from khalex_pay.container import Container
from store import payments, refusals
from store.payments import PhoneBusy

log = logging.getLogger(__name__)

#: Seconds a client should wait before initiating again for a phone with a payment in flight.
RETRY_AFTER_BUSY_S = 30
#: Longest Idempotency-Key we keep (Stripe's limit).
MAX_IDEMPOTENCY_KEY = 255


class PaymentController(Controller):
    path = "/api/payments"
    tags = ["payments"]  # noqa: RUF012 - Litestar declares it an instance attribute

    @post("/initiate", sync_to_thread=True, status_code=HTTP_202_ACCEPTED)
    def initiate(
        self, request: AnyRequest, container: Deps, body: RawBody
    ) -> Response[dict[str, object]]:
        """Start an M-Pesa payment; the STK push is sent by a worker. Poll the Location URL.

        Body: amount (integer KES 1..250000), phoneNumber, productId, productName,
        customerName, customerEmail, optional orderId. Optional header Idempotency-Key.
        To pay an order: {orderId, phoneNumber}; the rest comes from the order.
        """
        key = request.headers.get("idempotency-key")
        try:
            result = _initiate(container, body, key, request.headers.get("authorization"))
        except ApiError as exc:
            if 400 <= exc.status_code < 500:
                _keep_refused(container, request, exc, key, body)
            raise
        headers = {"Location": f"/api/payments/status/{result.payment.id}"}
        if result.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(present(result.payment), status_code=202, headers=headers)

    @get("/status/{ref:str}", sync_to_thread=True)
    def status(self, ref: FromPath[str], container: Deps) -> dict[str, object]:
        """A payment by its paymentId or its Daraja CheckoutRequestID."""
        with container.engine.connect() as conn:
            record = payments.find(conn, ref)
        if record is None:
            raise ApiError(404, "payment_not_found", f"No payment {ref!r}.")
        return present(record)

    @post("/webhook", sync_to_thread=True, status_code=200, include_in_schema=True)
    def webhook(
        self, request: AnyRequest, container: Deps, body: RawBody
    ) -> Response[dict[str, object]]:
        """Daraja's STK callback: stored durably, then processed by a worker."""
        return _receive(request, container, body, None)

    @post("/webhook/{token:str}", sync_to_thread=True, status_code=200)
    def webhook_with_token(
        self, request: AnyRequest, container: Deps, body: RawBody, token: FromPath[str]
    ) -> Response[dict[str, object]]:
        """Daraja's STK callback on a payment's own URL (the token ties it to the payment)."""
        return _receive(request, container, body, token)


def _initiate(
    container: Container, body: bytes, key: str | None, authorization: str | None
) -> initiation.Initiated:
    data = decode_object(body)
    order_id = data.get("orderId")
    if order_id is not None and (not isinstance(order_id, str) or not 0 < len(order_id) <= 64):
        raise ApiError(422, "invalid_field", "orderId must be an order's id.", "orderId")
    # Paying an order needs a caller (§8). The seed body without credentials is left as it
    # was until the initiate endpoint as a whole requires one.
    caller = (
        callers.resolve(container, authorization) if authorization or order_id is not None else None
    )
    pays_order = caller is not None and order_api.wants_order(data, caller)
    new = None if pays_order else parse_initiate(body)
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters."
        )
    try:
        if new is None:
            assert caller is not None
            return order_api.initiate_for_order(container, data, caller, key)
        return initiation.initiate(container, new, key)
    except initiation.IdempotencyKeyReused as exc:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request.",
        ) from exc
    except PhoneBusy as exc:
        raise ApiError(
            409,
            "payment_in_progress",
            "A payment for this phone number is still waiting for the customer.",
            "phoneNumber",
            headers={"Retry-After": str(RETRY_AFTER_BUSY_S)},
            paymentId=exc.payment_id or None,
        ) from exc
    except sa.exc.OperationalError as exc:
        raise _unavailable(container, exc) from exc


def _keep_refused(
    container: Container, request: AnyRequest, error: ApiError, key: str | None, body: bytes
) -> None:
    # Nothing that reached us is lost: a refused request is kept with its reason, so the
    # shop can see what its frontend sent. Failing to keep it must not change the answer.
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
    except sa.exc.SQLAlchemyError:
        log.exception("could not keep refused request (%s)", error.code)


def _receive(
    request: AnyRequest, container: Container, body: bytes, token: str | None
) -> Response[dict[str, object]]:
    source_ip = request.client.host if request.client else None
    try:
        received = callbacks.receive(
            container, body, source_ip=source_ip, token=token, headers=dict(request.headers)
        )
    except sa.exc.OperationalError as exc:
        # Not stored: answering non-200 is honest, though Safaricom will not send it again.
        raise _unavailable(container, exc) from exc
    if received.status_code == 200:
        return Response(dict(callbacks.ACCEPTED), status_code=200, media_type=MediaType.JSON)
    code = "callback_refused" if received.status_code == 403 else "invalid_callback"
    raise ApiError(
        received.status_code, code, received.reason or "refused", inboxId=received.inbox_id
    )


def _unavailable(container: Container, cause: Exception) -> ApiError:
    # An ERROR line, so operators (and Sentry, through logging) see every refused payment.
    log.error("answering 503: the database is unavailable (%s)", type(cause).__name__)
    return ApiError(
        503,
        "payments_unavailable",
        "M-Pesa payments are unavailable right now. Please order by phone.",
        contact=container.settings.shop_contact,
        headers={"Retry-After": "30"},
    )

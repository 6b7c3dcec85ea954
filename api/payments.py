"""The shop's payment endpoints and Safaricom's callback endpoint (CONTRACT.md §4)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from litestar import Controller, MediaType, Response, get, post
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_202_ACCEPTED

from api import orders as order_api
from api import refused
from api.callers import Caller, Checkout, may_read_payment
from api.client_address import client_address
from api.errors import ApiError, payments_unavailable
from api.openapi_docs import CALLBACK, PAYMENT_INITIATE, PAYMENT_STATUS
from api.payment_config import require_rollout
from api.rate_limits import Limits, RateLimits
from api.schemas import MAX_IDEMPOTENCY_KEY, decode_object, parse_initiate, present
from api.types import AnyRequest, Deps
from payments import callbacks, initiation
from payments.container import Container
from store import payments
from store.payments import NewPayment, PhoneBusy

log = logging.getLogger(__name__)

#: Seconds a client should wait before initiating again for a phone with a payment in flight.
RETRY_AFTER_BUSY_S = 30


class PaymentController(Controller):
    path = "/api/payments"
    tags = ["payments"]  # noqa: RUF012 - Litestar declares it an instance attribute

    @post("/initiate", sync_to_thread=True, status_code=HTTP_202_ACCEPTED, **PAYMENT_INITIATE)
    def initiate(
        self,
        request: AnyRequest,
        container: Deps,
        rate_limits: Limits,
        caller: Caller,
        body: RawBody,
    ) -> Response[dict[str, object]]:
        """Start an M-Pesa payment: answers at once, pending; the prompt follows in seconds.

        The shop's server may send the whole payment; to pay an order, send only
        {orderId, phoneNumber} (the rest comes from the order). A checkout token pays only
        its own order. Follow the payment at `Location` (or its events).
        """
        return initiate_as(request, container, rate_limits, caller, body)

    @get("/status/{ref:str}", sync_to_thread=True, **PAYMENT_STATUS)
    def status(self, ref: FromPath[str], container: Deps, caller: Caller) -> dict[str, object]:
        """A payment by its paymentId or (shop server and operators) its CheckoutRequestID."""
        return status_as(container, caller, ref)

    @post("/webhook", sync_to_thread=True, status_code=200, **CALLBACK)
    def webhook(
        self, request: AnyRequest, container: Deps, body: RawBody
    ) -> Response[dict[str, object]]:
        """Daraja's STK callback: stored durably, then processed by a worker."""
        return _receive(request, container, body, None)

    @post("/webhook/{token:str}", sync_to_thread=True, status_code=200, **CALLBACK)
    def webhook_with_token(
        self, request: AnyRequest, container: Deps, body: RawBody, token: FromPath[str]
    ) -> Response[dict[str, object]]:
        """Daraja's STK callback on a payment's own URL (the token ties it to the payment)."""
        return _receive(request, container, body, token)


def initiate_as(
    request: AnyRequest, container: Container, rate_limits: RateLimits, caller: Caller, body: bytes
) -> Response[dict[str, object]]:
    """Initiate for `caller` (the endpoint, and dev mode's demo page as the shop's server)."""
    key = request.headers.get("idempotency-key")
    with refused.kept(container, request, body, key):
        require_rollout(container.settings, caller)  # outside the M-Pesa rollout: 503
        address = client_address(request, container.settings.trusted_proxies)
        result = _initiate(container, rate_limits, caller, body, key, address)
    headers = {"Location": f"/api/payments/status/{result.payment.id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(present(result.payment, caller), status_code=202, headers=headers)


def status_as(container: Container, caller: Caller, ref: str) -> dict[str, object]:
    """The payment `ref` names, if `caller` may read it; else 404 as for an unknown one."""
    try:
        with container.reads.connect() as conn:
            record = payments.get(conn, ref)
            if record is None and not isinstance(caller, Checkout):
                # CheckoutRequestIDs end with the customer's MSISDN: never a token's key.
                record = payments.by_checkout(conn, ref)
    except sa.exc.OperationalError as exc:
        raise payments_unavailable(container.settings.shop_contact, exc) from exc
    if record is None or not may_read_payment(caller, record.order_id):
        raise ApiError(404, "payment_not_found", "No such payment.")
    return present(record, caller)


def _initiate(  # noqa: PLR0917 - the request's parts, in the order they are checked
    container: Container,
    rate_limits: RateLimits,
    caller: Caller,
    body: bytes,
    key: str | None,
    address: str,
) -> initiation.Initiated:
    try:
        data = decode_object(body)
        _check_key(key)
        # An order's payment ({orderId, phoneNumber}), or the seed body from the shop's
        # server (a checkout token always pays an order).
        asked: NewPayment | order_api.OrderPayment = (
            order_api.order_payment(data, caller)
            if order_api.wants_order(data, caller)
            else parse_initiate(body)
        )
    except ApiError:
        # A refused request counts against the address and key too, and past their limits
        # the answer is 429, not what is wrong with the request.
        rate_limits.initiate_by(address, caller)
        raise
    # The address, key and phone limits in one count (one round trip to Redis).
    phone = asked.phone if isinstance(asked, order_api.OrderPayment) else asked.phone_number
    rate_limits.initiate_by(address, caller, phone)
    try:
        if isinstance(asked, order_api.OrderPayment):
            result = order_api.initiate_for_order(container, asked, key)
        else:
            result = initiation.initiate(container, asked, key)
    except initiation.IdempotencyKeyReused as exc:
        raise _key_reused() from exc
    except PhoneBusy as exc:
        raise ApiError(
            409,
            "payment_in_progress",
            "A payment for this phone number is still waiting for the customer.",
            "phoneNumber",
            headers={"Retry-After": str(RETRY_AFTER_BUSY_S)},
            paymentId=_readable(container, caller, exc.payment_id),
        ) from exc
    except sa.exc.OperationalError as exc:
        raise payments_unavailable(container.settings.shop_contact, exc) from exc
    if result.replayed and not may_read_payment(caller, result.payment.order_id):
        raise _key_reused()  # another caller's key: never hand its payment over
    return result


def _check_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and _printable_ascii(key)):
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters."
        )


def _readable(container: Container, caller: Caller, payment_id: str) -> str | None:
    """`payment_id` if `caller` may read that payment, else None (never name a stranger's)."""
    if not payment_id:
        return None
    with container.engine.connect() as conn:
        busy = payments.get(conn, payment_id)
    return payment_id if busy and may_read_payment(caller, busy.order_id) else None


def _key_reused() -> ApiError:
    return ApiError(
        409, "idempotency_key_reused", "This Idempotency-Key was used with a different request."
    )


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _receive(
    request: AnyRequest, container: Container, body: bytes, token: str | None
) -> Response[dict[str, object]]:
    # Behind a trusted proxy, the allow-list must see Safaricom's address, not the proxy's.
    source_ip = client_address(request, container.settings.trusted_proxies)
    try:
        received = callbacks.receive(
            container, body, source_ip=source_ip, token=token, headers=dict(request.headers)
        )
    except sa.exc.OperationalError as exc:
        # Not stored: answering non-200 is honest, though Safaricom will not send it again.
        raise payments_unavailable(container.settings.shop_contact, exc) from exc
    if received.status_code == 200:
        return Response(dict(callbacks.ACCEPTED), status_code=200, media_type=MediaType.JSON)
    code = "callback_refused" if received.status_code == 403 else "invalid_callback"
    raise ApiError(
        received.status_code, code, received.reason or "refused", inboxId=received.inbox_id
    )

"""What the OpenAPI at `/schema/openapi.json` says beyond the handlers' signatures.

The handlers read raw bodies (so that bad bytes get our own answers), and raise our error
envelope: Litestar cannot see either. Handlers name their answers with `errors(...)`, their
raw JSON body with an Operation class (`INITIATE_BODY`), or take a whole entry as keyword
arguments (`@get(..., **openapi_docs.OPS)`), so the document names every answer the API
really gives. tests/security/test_openapi_conformance.py holds the API to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

#: The one security scheme: `Authorization: Bearer <x>`, x a shop API key, a checkout
#: token or an operator token (README "Who may call what").
BEARER = "bearer"
COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="A shop API key, a checkout token (JWT) or an operator token (JWT).",
        )
    }
)


class ErrorDetail(msgspec.Struct):
    """What went wrong; some errors add keys (paymentId, inboxId, contact)."""

    code: str
    message: str
    field: str | None


class ErrorEnvelope(msgspec.Struct):
    """Every error answer: `{"error": {"code", "message", "field"}}`."""

    error: ErrorDetail


#: Why each status is answered, for the document.
_WHY = {
    400: "Malformed JSON, or a request Litestar could not read.",
    401: "Missing or bad credentials (`unauthenticated`).",
    403: "A valid token without the role, or a callback that failed the source checks.",
    404: "Unknown, or beyond the caller's scope (answered as if it did not exist).",
    409: "Conflict: a payment in flight for the phone, or an Idempotency-Key reused.",
    413: "The body is over 64 KiB.",
    415: "The body is not `Content-Type: application/json`.",
    422: "Well-formed JSON that is not a valid request; `field` names the first bad field.",
    429: "Rate limited (`rate_limited`); `Retry-After` says when to try again.",
    503: "Unavailable (database or broker down); `Retry-After`, and the shop's contact.",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error envelope, documented for each of `statuses`."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope, description=_WHY[status], generate_examples=False
        )
        for status in statuses
    }


def _json_body(schema: Schema, description: str) -> type[Operation]:
    """An Operation class that documents a JSON request body the handler reads raw."""

    @dataclass
    class WithJsonBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)},
                description=description,
                required=True,
            )

    return WithJsonBody


def _text(max_length: int) -> Schema:
    return Schema(type=OpenAPIType.STRING, min_length=1, max_length=max_length)


_INITIATE_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=[
        "amount",
        "phoneNumber",
        "productId",
        "productName",
        "customerName",
        "customerEmail",
    ],
    properties={
        "amount": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=250_000),
        "phoneNumber": Schema(
            type=OpenAPIType.STRING,
            description="07XXXXXXXX, 01XXXXXXXX, 7XXXXXXXX, +2547…, 2547…, 2541…",
            examples=["0712345678"],
        ),
        "productId": _text(100),
        "productName": _text(200),
        "customerName": _text(200),
        "customerEmail": Schema(
            type=OpenAPIType.STRING, format=OpenAPIFormat.EMAIL, max_length=254
        ),
        "orderId": _text(64),
    },
)

_CALLBACK_BODY = Schema(
    type=OpenAPIType.OBJECT,
    description='Daraja\'s STK callback: `{"Body": {"stkCallback": {...}}}`.',
    properties={"Body": Schema(type=OpenAPIType.OBJECT)},
)

_C2B_BODY = Schema(
    type=OpenAPIType.OBJECT,
    description=(
        "Daraja's C2B request: TransactionType, TransID, TransTime, TransAmount, "
        "BusinessShortCode, BillRefNumber, InvoiceNumber, OrgAccountBalance, "
        "ThirdPartyTransID, MSISDN, FirstName, MiddleName, LastName."
    ),
    properties={
        "TransID": Schema(type=OpenAPIType.STRING),
        "TransAmount": Schema(type=OpenAPIType.STRING),
        "BillRefNumber": Schema(type=OpenAPIType.STRING),
    },
)

#: For handlers that need a caller.
SECURED: list[SecurityRequirement] = [{BEARER: []}]

#: Paying an order: the amount and the rest come from the order (a differing amount: 409).
_ORDER_PAYMENT_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["orderId", "phoneNumber"],
    properties={
        "orderId": _text(64),
        "phoneNumber": Schema(type=OpenAPIType.STRING, examples=["0712345678"]),
        "amount": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=250_000),
    },
)
#: Initiate reads its body raw; this documents it: the seed's body, or an order to pay.
INITIATE_BODY = _json_body(
    Schema(any_of=[_INITIATE_BODY, _ORDER_PAYMENT_BODY]),
    "The payment to start (shop server), or the order to pay ({orderId, phoneNumber}).",
)
#: Daraja calls these with no credentials; the path token and the source decide (README).
CALLBACK: dict[str, Any] = {
    "responses": errors(400, 403, 413, 503),
    "operation_class": _json_body(_CALLBACK_BODY, "Stored as received, whatever the bytes."),
}
#: Daraja's PayBill (C2B) requests: the source, and the URL's secret when set, decide.
C2B: dict[str, Any] = {
    "responses": errors(400, 403, 413, 503),
    "operation_class": _json_body(_C2B_BODY, "Stored as received, whatever the bytes."),
}
OPS: dict[str, Any] = {
    "responses": errors(401, 403, 503),
    "security": SECURED,
}
OPS_PAGE: dict[str, Any] = {
    "responses": errors(400, 401, 403, 503),
    "security": SECURED,
}
OPS_LIST: dict[str, Any] = {
    "responses": errors(400, 401, 403, 404, 503),
    "security": SECURED,
}
METRICS: dict[str, Any] = {
    "responses": {
        200: ResponseSpec(
            data_container=str,
            media_type="text/plain",
            description="Prometheus text exposition.",
            generate_examples=False,
        ),
        **errors(401),
    },
    # Open unless METRICS_TOKEN is set.
    "security": [{}, {BEARER: []}],
}
READY: dict[str, Any] = {
    "responses": {
        503: ResponseSpec(
            data_container=dict[str, object],
            description="The database or Redis does not answer; `failed` names which.",
            generate_examples=False,
        )
    }
}

# --- The orders API (CONTRACT §7): entries for api/orders.py's handlers -------------------

_ORDER_ITEM = Schema(
    type=OpenAPIType.OBJECT,
    required=["productId", "productName", "quantity", "unitPrice"],
    properties={
        "productId": _text(100),
        "productName": _text(200),
        "quantity": Schema(type=OpenAPIType.INTEGER, minimum=1),
        "unitPrice": Schema(type=OpenAPIType.INTEGER, minimum=1),
    },
)
_ORDER_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["customerName", "customerPhone", "items"],
    properties={
        "customerName": _text(200),
        "customerEmail": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.EMAIL),
        "customerPhone": Schema(type=OpenAPIType.STRING, examples=["0712345678"]),
        "deliveryAddress": _text(500),
        "items": Schema(type=OpenAPIType.ARRAY, items=_ORDER_ITEM, min_items=1),
        "deliveryFee": Schema(type=OpenAPIType.INTEGER, minimum=0),
        "notes": _text(1000),
    },
)
_MOVE_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["status"],
    properties={
        "status": Schema(
            type=OpenAPIType.STRING, enum=["processing", "shipped", "delivered", "cancelled"]
        )
    },
)
ORDER_CREATE: dict[str, Any] = {
    "responses": errors(400, 401, 404, 409, 413, 415, 422, 503),
    "operation_class": _json_body(_ORDER_BODY, "The order; totals are computed here."),
    "security": SECURED,
}
ORDER_READ: dict[str, Any] = {"responses": errors(401, 404, 503), "security": SECURED}
ORDER_LIST: dict[str, Any] = {"responses": errors(401, 404, 422, 503), "security": SECURED}
ORDER_MOVE: dict[str, Any] = {
    "responses": errors(400, 401, 404, 409, 413, 415, 422, 503),
    "operation_class": _json_body(_MOVE_BODY, "Where the order moves."),
    "security": SECURED,
}


# --- The Payment answer (README "HTTP API") ----------------------------------------------


class Payment(msgspec.Struct, rename="camel"):
    """A payment as the caller sees it: the phone masked; Daraja's ids null for a page."""

    payment_id: str
    status: Literal["pending", "completed", "failed", "cancelled"]
    amount: int
    currency: str
    phone_number: str
    product_id: str
    product_name: str
    order_id: str | None
    checkout_request_id: str | None
    merchant_request_id: str | None
    mpesa_receipt_number: str | None
    transaction_date: str | None
    result_code: int | None
    result_desc: str | None
    failure_reason: str | None
    late_success: bool
    message: str
    next_action: Literal["wait_for_pin", "retry", "pay_by_paybill", "none"]
    poll_after_ms: int
    created_at: str
    updated_at: str


def payment(status: int, description: str) -> dict[int, ResponseSpec]:
    """The Payment answer, documented for `status` (202 for initiate, 200 for status)."""
    return {
        status: ResponseSpec(
            data_container=Payment, description=description, generate_examples=False
        )
    }

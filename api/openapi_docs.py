"""What the OpenAPI at `/schema/openapi.json` says beyond the handlers' signatures.

The handlers read raw bodies (so that bad bytes get our own answers), build their answers as
dicts, and raise our error envelope: Litestar cannot see any of it. So each handler takes a
whole entry here as keyword arguments (`@get(..., **openapi_docs.ORDER_READ)`): its answers
(the Structs of api/answers.py, with examples), its errors, who may call it (`security`),
and an Operation class (`documented(...)`) for its JSON body (the request Structs of
api/schemas.py and api/order_schemas.py), the Idempotency-Key header and the Location and
Retry-After answer headers. tests/security/test_openapi_conformance.py holds the API to the
document, tests/integration/test_answers.py every real answer to its Struct, and
docs/API.md is generated from it (`uv run python -m scripts.api_docs`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from msgspec import Meta

from api import answers
from api.answers import ErrorEnvelope, Payment
from api.order_schemas import (
    ORDER_REQUEST_EXAMPLE,
    STATUS_CHANGE_EXAMPLE,
    OrderRequest,
    StatusChangeRequest,
)
from api.schemas import (
    INITIATE_EXAMPLE,
    MAX_IDEMPOTENCY_KEY,
    ORDER_PAYMENT_EXAMPLE,
    InitiateRequest,
    OrderPaymentRequest,
)

# --- Who may call: the security schemes (README "Callers") ----------------------------------

#: `Authorization: Bearer <x>`; each kind of x is its own scheme, so each operation names
#: which callers it takes.
SHOP_KEY, CHECKOUT, OPERATOR, METRICS_TOKEN = (
    "shopApiKey", "checkoutToken", "operatorToken", "metricsToken",
)  # fmt: skip
COMPONENTS = Components(
    security_schemes={
        SHOP_KEY: SecurityScheme(
            type="http", scheme="bearer",
            description="The shop server's API key (`kp_…`, from `khalex-pay keys create`).",
        ),
        CHECKOUT: SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT",
            description="A checkout token for one order (HS256, `aud: khalex-pay`, "
            "`orderId` claim, at most one hour): the shop's page.",
        ),
        OPERATOR: SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT",
            description="An operator token with the `ops` role (`khalex-pay ops-token`).",
        ),
        METRICS_TOKEN: SecurityScheme(
            type="http", scheme="bearer",
            description="METRICS_TOKEN, when set; else /metrics is open.",
        ),
    }
)  # fmt: skip
#: Any caller: the shop's server, the shop's page (its own order only) or an operator.
SECURED: list[SecurityRequirement] = [{SHOP_KEY: []}, {CHECKOUT: []}, {OPERATOR: []}]
#: The shop's server or an operator (a checkout token is answered 404).
SHOP_SERVER: list[SecurityRequirement] = [{SHOP_KEY: []}, {OPERATOR: []}]
#: Operators only.
OPERATORS: list[SecurityRequirement] = [{OPERATOR: []}]


# --- Errors -----------------------------------------------------------------------------


def _error(code: str, message: str, field: str | None = None, **extra: object) -> Example:
    value = {"error": {"code": code, "message": message, "field": field, **extra}}
    return Example(summary=code, value=_as(ErrorEnvelope, value))


def _as(container: type[msgspec.Struct], value: object) -> msgspec.Struct:
    """`value` as its Struct: checked against it now, and its nulls kept in the document
    (Litestar drops None from plain dicts when it writes the document)."""
    return msgspec.convert(value, container, strict=True)


INVALID_PHONE = (
    "Phone number must be a Kenyan mobile number (07…, 01…, 2547… or 2541…); "
    "landlines cannot pay with M-Pesa."
)
#: Why each status is answered, for the document, and an example of it.
_WHY: dict[int, tuple[str, Example]] = {
    400: (
        "Malformed JSON, or a path or query parameter that is not valid (`field` names it).",
        _error("malformed_json", "The body is not valid JSON: malformed data at byte 12"),
    ),
    401: (
        "Missing or bad credentials (`unauthenticated`, with `WWW-Authenticate: Bearer`).",
        _error(
            "unauthenticated", "Credentials are required: Authorization: Bearer <API key or token>."
        ),
    ),
    403: (
        "A valid token without the role, or a callback that failed the source checks.",
        _error("forbidden", "This token does not carry the ops role."),
    ),
    404: (
        "Unknown, or beyond the caller's scope (answered as if it did not exist).",
        _error("payment_not_found", "No such payment."),
    ),
    409: (
        "Conflict: a payment in flight (`Retry-After`), an Idempotency-Key reused, an order "
        "already paid or that cannot move so.",
        _error(
            "payment_in_progress",
            "A payment for this phone number is still waiting for the customer.",
            "phoneNumber",
            paymentId="6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b44",
        ),
    ),
    413: ("The body is over 64 KiB.", _error("body_too_large", "Request Entity Too Large")),
    415: (
        "The body is not `Content-Type: application/json`.",
        _error(
            "unsupported_media_type",
            "Send the request as JSON, with Content-Type: application/json.",
        ),
    ),
    422: (
        "Well-formed JSON that is not a valid request; `field` names the first bad field.",
        _error("invalid_phone_number", INVALID_PHONE, "phoneNumber"),
    ),
    429: (
        "Rate limited (`rate_limited`); `Retry-After` says when to try again.",
        _error(
            "rate_limited",
            "Too many payment requests for this phone number; try again in 42 seconds.",
            "phoneNumber",
        ),
    ),
    503: (
        "Unavailable (database or broker down, or M-Pesa not offered to this checkout): "
        "`contact` is the shop's call-to-order line; `Retry-After` when worth retrying.",
        _error(
            "payments_unavailable",
            "M-Pesa payments are unavailable right now. Please order by phone.",
            contact="Call or WhatsApp Khalex Chess on 0700 000 000 to order by phone.",
        ),
    ),
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error envelope, documented (with an example) for each of `statuses`."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope,
            description=_WHY[status][0],
            generate_examples=False,
            examples=[_WHY[status][1]],
        )
        for status in statuses
    }


def answer(
    status: int, container: type[msgspec.Struct], description: str, *examples: Example
) -> dict[int, ResponseSpec]:
    """`container`, documented as the answer for `status`, with `examples` of it."""
    return {
        status: ResponseSpec(
            data_container=container,
            description=description,
            generate_examples=False,
            examples=[Example(summary=e.summary, value=_as(container, e.value)) for e in examples]
            or None,
        )
    }


def payment(status: int, description: str) -> dict[int, ResponseSpec]:
    """The Payment answer, documented for `status` (202 for initiate, 200 for status)."""
    return answer(
        status, Payment, description,
        Example(summary="pending", value=answers.PAYMENT_PENDING_EXAMPLE),
        Example(summary="completed", value=answers.PAYMENT_COMPLETED_EXAMPLE),
    )  # fmt: skip


# --- Headers ------------------------------------------------------------------------------


def _header(description: str, *, required: bool = False, **schema: Any) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, **schema), description=description, required=required
    )


_LOCATION = _header("The new resource's URL (for a payment: its status URL).", required=True)
_REPLAYED = _header("`true` when an Idempotency-Key replayed an earlier answer.", enum=["true"])
_RETRY_AFTER_WHY = "Seconds to wait before trying again."
_RETRY_AFTER = _header(_RETRY_AFTER_WHY, pattern="^[0-9]+$")
#: Headers answers with each status may carry (those `required` always do).
_RESPONSE_HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "201": {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED},
    "202": {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED},
    "409": {"Retry-After": _RETRY_AFTER},
    "429": {"Retry-After": _header(_RETRY_AFTER_WHY, required=True, pattern="^[0-9]+$")},
    "503": {"Retry-After": _RETRY_AFTER},
}
IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_IDEMPOTENCY_KEY),
    description="Any unique string (a UUID): the same key with the same request answers the "
    "first answer again (`Idempotent-Replayed: true`); with another request, 409.",
    examples={"uuid": Example(value="8c0b6a52-3f1e-4d7a-9b2c-5e4f3a2d1c0b")},
)


#: What each path or query parameter names (Litestar documents only its name and type).
PARAMETERS = {
    "ref": "A paymentId, or (shop server and operators) Daraja's CheckoutRequestID.",
    "payment_id": "The payment's `paymentId`.",
    "order_id": "The order's `orderId`.",
    "token": "The payment's own callback token (part of the callback URL Daraja was given).",
    "secret": "C2B_URL_SECRET: the last segment of the registered PayBill (C2B) URLs.",
    "status": "Only orders in this status.",
    "state": "Only PayBill requests in this state: received, matched, refund_due, unmatched, "
    "duplicate, untrusted, rejected (confirmations), accepted, declined (validations). "
    "Default: the confirmations that paid no order (unmatched, refund_due, untrusted).",
    "limit": "At most this many entries: orders 1 to 100 (default 20), PayBill payments 1 to "
    "500 (default 50), operators' other lists 1 to 1,000 (default 100)",
    "cursor": "The `nextCursor` of the previous page.",
    "queue": "Only this queue.",
}

# --- Operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A JSON request body the handler reads raw, documented by Structs (any of them)."""

    structs: tuple[type[msgspec.Struct], ...]
    description: str
    examples: Mapping[str, Mapping[str, object]]


def documented(body: Body | None = None, *, idempotent: bool = False) -> type[Operation]:
    """An Operation class that adds what Litestar cannot see to an operation.

    The JSON `body` the handler reads raw; what each parameter names; the
    `Idempotency-Key` request header (when `idempotent`); Location, Retry-After and
    Idempotent-Replayed on the answers that carry them; and an explicit empty `security`
    on operations that take no credentials.
    """

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = _request_body(body)
            for parameter in self.parameters or []:
                if isinstance(parameter, Parameter) and not parameter.description:
                    parameter.description = PARAMETERS.get(parameter.name)
            if idempotent:
                self.parameters = [*(self.parameters or []), IDEMPOTENCY_KEY]
            for status, response in (self.responses or {}).items():
                if isinstance(response, OpenAPIResponse) and status in _RESPONSE_HEADERS:
                    response.headers = {**(response.headers or {}), **_RESPONSE_HEADERS[status]}
            if self.security is None:
                self.security = []  # stated: no credentials (Litestar would leave it out)

    return Documented


def _request_body(body: Body) -> RequestBody:
    schemas = [json_schema(struct) for struct in body.structs]
    schema = schemas[0] if len(schemas) == 1 else Schema(any_of=schemas)
    examples: dict[str, Example | Reference] = {
        name: Example(summary=name, value=dict(v)) for name, v in body.examples.items()
    }
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=schema, examples=examples)},
        description=body.description,
        required=True,
    )


#: Schema's fields by their JSON Schema keyword (`minLength` is `min_length`).
_KEYWORDS = {f.metadata.get("alias", f.name): f.name for f in fields(Schema)}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def json_schema(struct: type[msgspec.Struct]) -> Schema:
    """`struct`'s JSON Schema (msgspec's own), inline, as Litestar's Schema object."""
    document = msgspec.json.schema(struct)
    return _schema(document, document.get("$defs", {}))


def _schema(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    if "$ref" in node:
        return _schema(defs[node["$ref"].rpartition("/")[2]], defs)
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key != "$defs":
            kwargs[_KEYWORDS.get(key) or _CAMEL.sub("_", key).lower()] = _value(key, value, defs)
    return Schema(**kwargs)


def _value(key: str, value: Any, defs: Mapping[str, Any]) -> Any:
    if key == "properties":
        return {k: _schema(v, defs) for k, v in value.items()}
    if key in ("items", "additionalProperties") and isinstance(value, dict):
        return _schema(value, defs)
    if key in ("anyOf", "oneOf", "allOf"):
        return [_schema(v, defs) for v in value]
    if key == "type":
        return OpenAPIType(value)
    if key == "description":
        return inspect.cleandoc(value)  # a Struct's docstring
    return value


#: Operations without a body (those without `security` state `security: []`: no credentials).
NO_BODY = documented()
INITIATE_BODY = documented(
    Body(
        (InitiateRequest, OrderPaymentRequest),
        "The payment to start (shop server), or the order to pay ({orderId, phoneNumber}).",
        {"payment": INITIATE_EXAMPLE, "orderPayment": ORDER_PAYMENT_EXAMPLE},
    ),
    idempotent=True,
)


class StkCallback(msgspec.Struct):
    """Daraja's STK callback, `{"Body": {"stkCallback": {...}}}`; stored whatever the bytes."""

    Body: dict[str, Any]


_CALLBACK_EXAMPLE = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": "ws_CO_30112026104112504712345678",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 1500},
                    {"Name": "MpesaReceiptNumber", "Value": "TKU4Q7XH2P"},
                    {"Name": "TransactionDate", "Value": 20261130104131},
                    {"Name": "PhoneNumber", "Value": 254712345678},
                ]
            },
        }
    }
}
#: Daraja calls these with no credentials; the path token and the source decide (README).
CALLBACK: dict[str, Any] = {
    "responses": {
        **answer(
            200, answers.CallbackAck, "Stored; Daraja need not send it again.",
            Example(summary="accepted", value=answers.CALLBACK_ACK_EXAMPLE),
        ),
        **errors(400, 403, 413, 503),
    },
    "operation_class": documented(
        Body(
            (StkCallback,), "Stored as received, whatever the bytes.",
            {"completed": _CALLBACK_EXAMPLE},
        )
    ),
}  # fmt: skip


class C2bRequest(msgspec.Struct):
    """Daraja's PayBill (C2B) validation or confirmation request (every value a string);
    stored whatever the bytes. A confirmation needs `TransID` and `TransAmount`, a
    validation `TransAmount`; an order is matched by `BillRefNumber` and the amount, never
    by the payer, whose fields are kept only in the stored body."""

    TransAmount: Annotated[
        str, Meta(description="Shillings, e.g. `4500.00`; with cents it pays no order.")
    ]
    TransID: Annotated[str, Meta(description="M-Pesa's receipt; one receipt is counted once.")] = ""
    TransactionType: Annotated[str, Meta(description="`Pay Bill`.")] = ""
    TransTime: Annotated[str, Meta(description="`YYYYMMDDHHmmss`, Nairobi time.")] = ""
    BusinessShortCode: Annotated[str, Meta(description="The PayBill number.")] = ""
    BillRefNumber: Annotated[
        str, Meta(description="The account reference typed: an order's is `KP` + 10 hex.")
    ] = ""
    InvoiceNumber: str = ""
    OrgAccountBalance: str = ""
    ThirdPartyTransID: str = ""
    MSISDN: Annotated[
        str, Meta(description="The payer's number, masked (a SHA-256 digest on v2).")
    ] = ""
    FirstName: str = ""
    MiddleName: str = ""
    LastName: str = ""


C2B_EXAMPLE: dict[str, object] = {
    "TransactionType": "Pay Bill", "TransID": "TKU5R2MN8Q", "TransTime": "20261130105510",
    "TransAmount": "4500.00", "BusinessShortCode": "522533", "BillRefNumber": "KP0B6E2F4C8D",
    "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "",
    "MSISDN": "2547 ***** 678", "FirstName": "WANJIRU", "MiddleName": "", "LastName": "KAMAU",
}  # fmt: skip
#: Daraja's PayBill (C2B) requests, with no credentials: the source, and the URL's secret
#: when C2B_URL_SECRET is set, decide (README "The PayBill fallback").
C2B_VALIDATION: dict[str, Any] = {
    "responses": {
        **answer(
            200, answers.C2bAck, "Stored; Daraja is told to take the payment, or (an order "
            "it cannot pay) to decline it.",
            Example(summary="accepted", value=answers.C2B_ACCEPTED_EXAMPLE),
            Example(summary="declined: not the order's total", value=answers.C2B_DECLINED_EXAMPLE),
        ),
        **errors(400, 403, 413, 503),
    },
    "operation_class": documented(
        Body((C2bRequest,), "Stored as received, whatever the bytes.", {"order": C2B_EXAMPLE})
    ),
}  # fmt: skip
C2B_CONFIRMATION: dict[str, Any] = {
    "responses": {
        **answer(
            200, answers.C2bAck, "Stored; a worker matches it to its order.",
            Example(summary="accepted", value=answers.C2B_ACCEPTED_EXAMPLE),
        ),
        **errors(400, 403, 413, 503),
    },
    "operation_class": documented(
        Body((C2bRequest,), "Stored as received, whatever the bytes.", {"order": C2B_EXAMPLE})
    ),
}  # fmt: skip


def _ops(
    container: type[msgspec.Struct], description: str, example: dict[str, object], *statuses: int
) -> dict[str, Any]:
    return {
        "responses": {
            **answer(200, container, description, Example(summary="example", value=example)),
            **errors(401, 403, 503, *statuses),
        },
        "security": OPERATORS,
        "operation_class": NO_BODY,
    }


OPS_QUEUES = _ops(answers.Queues, "Each queue of the broker.", answers.QUEUES_EXAMPLE)
OPS_SUMMARY = _ops(answers.Summary, "The last hour and day.", answers.SUMMARY_EXAMPLE)
OPS_STUCK = _ops(answers.Stuck, "Stuck payments, oldest first.", answers.STUCK_EXAMPLE)
OPS_REFUNDS_DUE = _ops(
    answers.RefundsDue, "Orders owing a refund, newest first.", answers.REFUNDS_DUE_EXAMPLE, 400
)
OPS_PAYBILL = _ops(
    answers.PaybillPayments, "PayBill requests, newest first (by default: money that paid no "
    "order).", answers.PAYBILL_PAYMENTS_EXAMPLE, 400,
)  # fmt: skip
OPS_DEAD_LETTERS = _ops(
    answers.DeadLetters, "Dead letters per queue, and the poison guard's.",
    answers.DEAD_LETTERS_EXAMPLE, 400, 404,
)  # fmt: skip
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
    "security": [{}, {METRICS_TOKEN: []}],
    "operation_class": NO_BODY,
}
LIVE: dict[str, Any] = {
    "responses": answer(
        200, answers.Live, "The process runs.", Example(summary="ok", value={"status": "ok"})
    ),
    "operation_class": NO_BODY,
}
READY: dict[str, Any] = {
    "responses": {
        **answer(200, answers.Readiness, "The database and Redis answer.",
                 Example(summary="ready", value=answers.READY_EXAMPLE)),
        **answer(503, answers.Readiness,
                 "The database or Redis does not answer; `failed` names which.",
                 Example(summary="not ready", value=answers.NOT_READY_EXAMPLE)),
    },
    "operation_class": NO_BODY,
}  # fmt: skip
PAYMENTS_CONFIG: dict[str, Any] = {
    "responses": {
        **answer(200, answers.PaymentsConfig, "What the page may offer.",
                 Example(summary="example", value=answers.PAYMENTS_CONFIG_EXAMPLE)),
        **errors(401),
    },
    "security": SECURED,
    "operation_class": NO_BODY,
}  # fmt: skip
PAYMENT_STATUS: dict[str, Any] = {
    "responses": {**errors(400, 401, 404, 503), **payment(200, "The payment.")},
    "security": SECURED,
    "operation_class": NO_BODY,
}
PAYMENT_INITIATE: dict[str, Any] = {
    "responses": {
        **errors(400, 401, 404, 409, 413, 415, 422, 429, 503),
        **payment(202, "Accepted: the payment, pending; Location is its status URL."),
    },
    "security": SECURED,
    "operation_class": INITIATE_BODY,
}
_EVENT = 'event: payment\nid: 2026-11-30T07:41:32.117Z\ndata: {"paymentId": …}\n\n'
PAYMENT_EVENTS: dict[str, Any] = {
    "responses": {
        200: ResponseSpec(
            data_container=str,
            media_type="text/event-stream",
            description="Server-sent events: `event: payment` with the Payment JSON as `data`, "
            "at once and at each change; `: heartbeat` comments; ends after a final status.",
            generate_examples=False,
            examples=[Example(summary="a change", value=_EVENT)],
        ),
        **errors(400, 401, 404, 503),
    },
    "security": SECURED,
    "operation_class": NO_BODY,
}

# --- The orders API (api/orders.py) ---------------------------------------------------------

_ORDER_EXAMPLE = Example(summary="example", value=answers.ORDER_EXAMPLE)
ORDER_CREATE: dict[str, Any] = {
    "responses": {
        **answer(201, answers.CreatedOrder, "Created (or replayed): the order and its "
                 "checkout token; Location is its URL.",
                 Example(summary="created", value=answers.CREATED_ORDER_EXAMPLE)),
        **errors(400, 401, 404, 409, 413, 415, 422, 503),
    },
    "operation_class": documented(
        Body((OrderRequest,), "The order; totals are computed here.",
             {"order": ORDER_REQUEST_EXAMPLE}),
        idempotent=True,
    ),
    "security": SHOP_SERVER,
}  # fmt: skip
ORDER_READ: dict[str, Any] = {
    "responses": {
        **answer(
            200,
            answers.Order,
            "The order.",
            _ORDER_EXAMPLE,
            Example(summary="paid by PayBill", value=answers.PAYBILL_PAID_ORDER_EXAMPLE),
        ),
        **errors(400, 401, 404, 503),
    },
    "security": SECURED,
    "operation_class": NO_BODY,
}
ORDER_LIST: dict[str, Any] = {
    "responses": {
        **answer(200, answers.OrderPage, "A page of orders, newest first.",
                 Example(summary="example", value=answers.ORDER_PAGE_EXAMPLE)),
        **errors(400, 401, 404, 422, 503),
    },
    "security": SHOP_SERVER,
    "operation_class": NO_BODY,
}  # fmt: skip
ORDER_MOVE: dict[str, Any] = {
    "responses": {
        **answer(200, answers.Order, "The order, moved.", _ORDER_EXAMPLE),
        **errors(400, 401, 404, 409, 413, 415, 422, 503),
    },
    "operation_class": documented(
        Body((StatusChangeRequest,), "Where the order moves.", {"shipped": STATUS_CHANGE_EXAMPLE})
    ),
    "security": SHOP_SERVER,
}


# --- The reference's prose: the OpenAPI's description, and docs/API.md's opening -----------

#: Every `error.code`, with its status and what the client should make of it.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The body is not JSON."),
    "invalid_parameter": (400, "A path or query parameter is not valid; `field` names it."),
    "bad_request": (400, "A request the server could not read."),
    "invalid_callback": (
        400,
        "A callback body that is not an STK callback (kept, `inboxId`), or not a PayBill "
        "request (kept, `c2bId`).",
    ),
    "invalid_state": (400, "`state` is not a PayBill request's state."),
    "unauthenticated": (401, "No credentials, or bad ones (`WWW-Authenticate: Bearer`)."),
    "forbidden": (403, "A valid token without the role the endpoint needs."),
    "callback_refused": (
        403,
        "A callback or PayBill request that failed the source checks, or the secret URL's "
        "(kept, `inboxId` or `c2bId`).",
    ),
    "not_found": (404, "No such endpoint, or one beyond the caller's scope."),
    "payment_not_found": (404, "No such payment, or not the caller's to read."),
    "order_not_found": (404, "No such order, or not the caller's to read."),
    "queue_not_found": (404, "No such queue."),
    "method_not_allowed": (405, "The path exists; the method does not."),
    "payment_in_progress": (
        409,
        "A payment for this phone or order is still waiting for the customer: wait "
        "`Retry-After` seconds. `paymentId` names it when the caller may read it.",
    ),
    "idempotency_key_reused": (409, "This Idempotency-Key came with another request."),
    "amount_mismatch": (409, "`amount` is not the order's total (`totalAmount`)."),
    "order_already_paid": (409, "The order is paid; it takes no more payments."),
    "order_cancelled": (409, "The order was cancelled; it takes no payment."),
    "invalid_transition": (409, "The order cannot move there from `currentStatus`."),
    "body_too_large": (413, "The body is over 64 KiB."),
    "unsupported_media_type": (415, "Send JSON, with `Content-Type: application/json`."),
    "invalid_body": (422, "The body is JSON but not an object."),
    "missing_field": (422, "A required field is missing; `field` names it."),
    "invalid_field": (422, "A field is not valid; `field` names it (`items[0].productId`)."),
    "invalid_amount": (422, "Not whole shillings 1 to 250,000 (an order's total too)."),
    "invalid_quantity": (422, "An item's quantity is not a whole number 1 to 1,000."),
    "invalid_phone_number": (422, "Not a Kenyan mobile number."),
    "invalid_email": (422, "Not an e-mail address."),
    "invalid_idempotency_key": (422, "Idempotency-Key must be 1 to 255 printable characters."),
    "invalid_cursor": (422, "`cursor` must be a `nextCursor` this API gave."),
    "total_mismatch": (422, "`totalAmount` is not Σ quantity x unitPrice + deliveryFee."),
    "rate_limited": (
        429,
        "Too many initiates for this phone, address or key: wait `Retry-After` seconds. "
        "`field` is `phoneNumber` for the per-phone limit.",
    ),
    "internal_error": (500, "Our fault; nothing was lost. Retry with the same Idempotency-Key."),
    "payments_unavailable": (
        503,
        "M-Pesa cannot be taken now (or not for this checkout): show `contact`, the shop's "
        "call-to-order line. `Retry-After` when it is worth retrying.",
    ),
    "broker_unavailable": (503, "The queue broker does not answer (operators' endpoints)."),
}

OVERVIEW = """\
Khalex Pay takes M-Pesa payments for a shop: the shop asks for a payment, Khalex Pay sends
the customer's phone an M-Pesa prompt (STK push) and follows the payment to its end.
Amounts are whole Kenyan shillings (KES); phone numbers in answers are always masked
(`2547****5678`).

## Who may call

Every request names its caller with `Authorization: Bearer <credential>`; each operation
below says which credentials it takes.

- **The shop's server** holds an API key (`kp_…`, from `khalex-pay keys create`). It may
  initiate with the whole payment, create, list and move orders, and read every payment.
- **The shop's page** holds a checkout token: a JWT (HS256 with the shop's `JWT_SECRET`,
  `aud: "khalex-pay"`, an `orderId` claim, `exp` at most one hour ahead), answered by
  `POST /api/orders` as `checkoutToken`. It pays and reads only its own order; its payment
  answers carry `checkoutRequestId` and `merchantRequestId` as null, and its order answers
  no name or address and the e-mail masked.
- **Operators** hold an operator token (`khalex-pay ops-token`) for `/api/ops/*`, and read
  every payment and order.

No valid credentials: `401 unauthenticated`. Whatever lies beyond a caller's scope answers
`404`, as if it did not exist (never 403). Requests with a body must be
`Content-Type: application/json` (else 415), at most 64 KiB (else 413).

## Paying: initiate, then follow the payment

1. `POST /api/payments/initiate` answers `202` with the Payment, `pending`, and `Location`:
   its status URL. Paying an order sends only `{"orderId", "phoneNumber"}`: the amount and
   the rest come from the order, never from the browser.
2. Follow it until `status` is `completed`, `failed` or `cancelled`, either way:
   - **Polling** `GET /api/payments/status/{paymentId}`, waiting `pollAfterMs` between
     reads (0 once final). `nextAction` tells the page what to offer: `wait_for_pin`,
     `retry`, `pay_by_paybill` (see `GET /api/payments/config`) or `none`.
   - **Server-sent events** `GET /api/payments/{paymentId}/events`: one `event: payment`
     whose `data` is the Payment at once and at each change, a `: heartbeat` comment after
     15 s of quiet; the stream ends after a final status (or 15 minutes: then poll).

A payment never stays pending: it ends by Safaricom's callback, by asking Daraja, or by
expiring (`failureReason: timeout`; money that still comes later completes it, with
`lateSuccess: true`).

## The PayBill fallback

When the prompt cannot be used (`nextAction: pay_by_paybill`, or M-Pesa not offered), the
customer pays by hand: `GET /api/payments/config` gives the PayBill number and, for a
checkout token, the order's own account reference (`KP` and 10 hex digits of its id).
Safaricom then calls Khalex Pay's PayBill (C2B) URLs, `/api/payments/c2b/validation` and
`/api/payments/c2b/confirmation` (not for the shop to call), and a worker matches the payment
to its order by that reference and the order's total. Such an order is confirmed with
`paymentId` naming the PayBill payment, listed in the order's `paybillPayments` with its
receipt; money that cannot pay it (another amount, an order already paid) is a refund due.
Operators see the PayBill payments that paid no order at `GET /api/ops/paybill`.

## Idempotency

Send `Idempotency-Key` (1 to 255 printable characters, e.g. a UUID) with
`POST /api/payments/initiate` and `POST /api/orders`. The same key with the same request
answers the first answer again, as it is now, with `Idempotent-Replayed: true`: so a retry
after a timeout never pays twice. The same key with another request (or another caller's
key) is `409 idempotency_key_reused`.

## Limits

Initiates are rate limited per phone number, per client address and per key or token:
past a limit, `429 rate_limited` with `Retry-After`, before anything is stored or sent.
One payment may wait for a phone (or an order) at a time: `409 payment_in_progress` with
`Retry-After`.

## Webhooks to the shop

With `SHOP_WEBHOOK_URL` set, Khalex Pay POSTs each payment's end to the shop's server, so it
need not poll: `payment.completed`, `payment.failed`, `payment.cancelled`,
`order.confirmed`, `order.cancelled`, `order.refund_due`, as
`{"type", "timestamp", "data": {...}}`; an order's event that a PayBill payment caused adds
`"paidVia": "paybill"` and the payment's `receipt` to `data`. They are signed as the
Standard Webhooks spec says (`webhook-id`, `webhook-timestamp`, `webhook-signature`
headers; HMAC-SHA256 with `SHOP_WEBHOOK_SECRET`): verify them, e.g. with the
`standardwebhooks` package. Answer any 2xx quickly; anything else is retried for about 3
days. Each event comes at least once: drop repeats by `webhook-id`. (Safaricom's own
callbacks to `/api/payments/webhook/{token}` and `/api/payments/c2b/*` are not for the shop
to call.)
"""

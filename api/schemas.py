"""Request parsing with field-named errors, and the Payment answer (camelCase, masked)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from api.callers import Caller, sees_checkout_request_id
from api.errors import ApiError
from domain.money import MAX_AMOUNT, MIN_AMOUNT, InvalidAmount, parse_amount
from domain.next_step import next_step
from domain.payment import Status, customer_message, public_status
from domain.phone import InvalidPhoneNumber, mask_msisdn, normalise_msisdn
from store.payments import NewPayment, PaymentRecord

#: Text fields of an initiate request: (JSON name, longest allowed, required).
TEXT_FIELDS = (
    ("productId", 100, True),
    ("productName", 200, True),
    ("customerName", 200, True),
    ("customerEmail", 254, True),
    ("orderId", 64, False),
)
#: Longest Idempotency-Key kept (Stripe's limit).
MAX_IDEMPOTENCY_KEY = 255
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Control characters and lone surrogates: never in a name, and PostgreSQL refuses NUL.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


#: Whole shillings M-Pesa takes in one payment.
Amount = Annotated[int, Meta(ge=MIN_AMOUNT, le=MAX_AMOUNT, description="Whole shillings (KES).")]
#: A Kenyan mobile number in any form `normalise_msisdn` reads.
Phone = Annotated[
    str,
    Meta(
        description="07XXXXXXXX, 01XXXXXXXX, 7XXXXXXXX, +2547…, 2547… or 2541…",
        examples=["0712345678"],
    ),
]

#: Text fields of 1 to N characters (stripped of spaces; no control characters).
Text64 = Annotated[str, Meta(min_length=1, max_length=64)]
Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Text200 = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[str, Meta(max_length=254, description="An e-mail address.")]


class InitiateRequest(msgspec.Struct, rename="camel"):
    """The whole payment, from the shop's server. `orderId` pays that order instead."""

    # Documents the body; `parse_initiate` reads it, naming the first bad field.

    amount: Amount
    phone_number: Phone
    product_id: Text100
    product_name: Text200
    customer_name: Text200
    customer_email: Email
    order_id: Text64 | None = None


class OrderPaymentRequest(msgspec.Struct, rename="camel"):
    """Paying an order: the rest comes from the order. A checkout token may leave out
    `orderId` (its own order). `amount`, if sent, must be the order's total (else 409
    `amount_mismatch`)."""

    order_id: Text64
    phone_number: Phone
    amount: Amount | None = None


INITIATE_EXAMPLE: dict[str, object] = {
    "amount": 1500,
    "phoneNumber": "0712345678",
    "productId": "board-01",
    "productName": "Tournament chess board",
    "customerName": "Wanjiru Kamau",
    "customerEmail": "wanjiru@example.com",
}
ORDER_PAYMENT_EXAMPLE: dict[str, object] = {
    "orderId": "0b6e2f4c-8d1a-4c3e-b7f2-5a9d1e6c3b80",
    "phoneNumber": "0712345678",
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`: 400 when it is not JSON, 422 when it is not an object."""
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        # RecursionError: nesting deeper than the interpreter allows is not a request either.
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object.")
    return data


def parse_initiate(body: bytes) -> NewPayment:
    """Validate an initiate request, naming the first bad field."""
    data = decode_object(body)
    if "amount" not in data:
        raise ApiError(422, "missing_field", "amount is required.", "amount")
    try:
        amount = parse_amount(data["amount"])
    except InvalidAmount as exc:
        raise ApiError(422, "invalid_amount", str(exc), "amount") from exc
    phone = data.get("phoneNumber")
    if phone is None:
        raise ApiError(422, "missing_field", "phoneNumber is required.", "phoneNumber")
    if not isinstance(phone, str):
        raise ApiError(422, "invalid_phone_number", "phoneNumber must be a string.", "phoneNumber")
    try:
        msisdn = normalise_msisdn(phone)
    except InvalidPhoneNumber as exc:
        raise ApiError(422, "invalid_phone_number", str(exc), "phoneNumber") from exc
    text = {name: text_field(data, name, limit, required) for name, limit, required in TEXT_FIELDS}
    if not EMAIL.match(text["customerEmail"] or ""):
        raise ApiError(
            422, "invalid_email", "customerEmail is not an e-mail address.", "customerEmail"
        )
    return NewPayment(
        amount=amount,
        phone_number=msisdn,
        product_id=text["productId"] or "",
        product_name=text["productName"] or "",
        customer_name=text["customerName"] or "",
        customer_email=text["customerEmail"] or "",
        order_id=text["orderId"],
    )


def text_field(
    data: dict[str, Any], name: str, limit: int, required: bool, *, label: str | None = None
) -> str | None:
    """The stripped string `data[name]` (None if absent or blank and not required).

    `label` names the field in errors when it sits deeper in the body (`items[0].productId`).
    """
    label = label or name
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(422, "missing_field", f"{label} is required.", label)
        return None
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field", f"{label} must be a string.", label)
    value = value.strip()
    if _UNPRINTABLE.search(value):
        raise ApiError(422, "invalid_field", f"{label} must not hold control characters.", label)
    if required and not value:
        raise ApiError(422, "invalid_field", f"{label} must not be empty.", label)
    if len(value) > limit:
        raise ApiError(422, "invalid_field", f"{label} must be at most {limit} characters.", label)
    return value or None


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def present(record: PaymentRecord, caller: Caller | None = None) -> dict[str, object]:
    """A payment as `caller` sees it: camelCase, phone masked, no e-mail.

    Daraja's ids (the CheckoutRequestID ends with the customer's MSISDN) only for the shop
    server and operators; null for a checkout token, or when no caller is named.
    """
    domain = record.to_domain()
    step = next_step(Status(record.status), record.failure_reason)
    daraja_ids = caller is not None and sees_checkout_request_id(caller)
    return {
        "paymentId": record.id,
        "status": public_status(Status(record.status)),
        "amount": record.amount,
        "currency": record.currency,
        "phoneNumber": mask_msisdn(record.phone_number),
        "productId": record.product_id,
        "productName": record.product_name,
        "orderId": record.order_id,
        "checkoutRequestId": record.checkout_request_id if daraja_ids else None,
        "merchantRequestId": record.merchant_request_id if daraja_ids else None,
        "mpesaReceiptNumber": record.mpesa_receipt_number,
        "transactionDate": iso(record.transaction_date),
        "resultCode": record.result_code,
        "resultDesc": record.result_desc,
        "failureReason": record.failure_reason,
        "lateSuccess": record.late_success,
        "message": customer_message(domain),
        "nextAction": step.action,
        "pollAfterMs": step.poll_after_ms,
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
    }

"""Order requests parsed with field-named errors, and the Order answer (CONTRACT.md §7)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta

from api.callers import Caller, Checkout
from api.errors import ApiError
from api.schemas import EMAIL, Email, Phone, Text100, Text200, decode_object, iso, text_field
from domain.money import MAX_AMOUNT, InvalidAmount, parse_amount
from domain.order import MAX_ITEMS, MAX_QUANTITY, InvalidOrder, Item, Status, total_of
from domain.phone import InvalidPhoneNumber, mask_msisdn, normalise_msisdn
from operations.ops import mask_email
from payments.orders import OrderView
from store.orders import NewOrder

#: Text fields of an order: (JSON name, longest allowed, required).
ORDER_TEXT = (
    ("customerName", 200, True),
    ("customerEmail", 254, False),
    ("deliveryAddress", 500, False),
    ("notes", 1000, False),
)
ITEM_TEXT = (("productId", 100, True), ("productName", 200, True))
#: Statuses the shop or an operator may ask for (`confirmed` comes only from a payment).
Movable = Literal["processing", "shipped", "delivered", "cancelled"]
MOVABLE: tuple[str, ...] = get_args(Movable)


class OrderItemRequest(msgspec.Struct, rename="camel"):
    """One line of a new order."""

    product_id: Text100
    product_name: Text200
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
    unit_price: Annotated[int, Meta(ge=0, le=MAX_AMOUNT, description="Whole shillings (KES).")]


class OrderRequest(msgspec.Struct, rename="camel"):
    """A new order. Its total is Σ quantity x unitPrice + deliveryFee, computed here;
    `totalAmount`, if sent, must equal that sum (a check on the shop's own arithmetic)."""

    # Documents the body; `parse_order` reads it, naming the first bad field.

    customer_name: Text200
    customer_phone: Phone
    items: Annotated[list[OrderItemRequest], Meta(min_length=1, max_length=MAX_ITEMS)]
    customer_email: Email | None = None
    delivery_address: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    delivery_fee: Annotated[int, Meta(ge=0, le=MAX_AMOUNT)] = 0
    notes: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    total_amount: int | msgspec.UnsetType = msgspec.UNSET


class StatusChangeRequest(msgspec.Struct):
    """Where the order moves (`confirmed` comes only from a payment)."""

    status: Movable


ORDER_REQUEST_EXAMPLE: dict[str, object] = {
    "customerName": "Wanjiru Kamau",
    "customerEmail": "wanjiru@example.com",
    "customerPhone": "0712345678",
    "deliveryAddress": "Moi Avenue 14, Nairobi",
    "items": [
        {"productId": "board-01", "productName": "Tournament chess board",
         "quantity": 1, "unitPrice": 1500},
        {"productId": "clock-02", "productName": "Chess clock", "quantity": 1, "unitPrice": 2800},
    ],
    "deliveryFee": 200,
    "notes": "Deliver after 5 pm",
}  # fmt: skip
STATUS_CHANGE_EXAMPLE: dict[str, object] = {"status": "shipped"}


def parse_order(body: bytes) -> NewOrder:
    """Validate `POST /api/orders`, naming the first bad field; totals computed here."""
    data = decode_object(body)
    text = {name: text_field(data, name, limit, required) for name, limit, required in ORDER_TEXT}
    if text["customerEmail"] is not None and not EMAIL.match(text["customerEmail"]):
        raise ApiError(
            422, "invalid_email", "customerEmail is not an e-mail address.", "customerEmail"
        )
    phone = _phone(data, "customerPhone")
    items = _items(data.get("items"))
    fee = data.get("deliveryFee", 0)
    try:
        total = total_of(items, fee)
    except InvalidOrder as exc:
        raise ApiError(422, _code(exc), str(exc), exc.field) from exc
    if "totalAmount" in data and data["totalAmount"] != total:
        # The shop may send its own sum as a check; ours decides, and a difference is a bug.
        raise ApiError(
            422, "total_mismatch",
            f"totalAmount must be Σ quantity x unitPrice + deliveryFee = {total} KES.",
            "totalAmount",
        )  # fmt: skip
    return NewOrder(
        items=items,
        delivery_fee=fee,
        total_amount=total,
        customer_name=text["customerName"] or "",
        customer_email=text["customerEmail"],
        customer_phone=phone,
        delivery_address=text["deliveryAddress"],
        notes=text["notes"],
    )


def _code(exc: InvalidOrder) -> str:
    if exc.field.endswith("quantity"):
        return "invalid_quantity"
    if exc.field == "items" and not exc.is_total:
        return "invalid_field"  # no items, or too many
    return "invalid_amount"  # a price, the fee, or a total M-Pesa cannot take


def _phone(data: dict[str, Any], name: str) -> str:
    phone = data.get(name)
    if phone is None:
        raise ApiError(422, "missing_field", f"{name} is required.", name)
    if not isinstance(phone, str):
        raise ApiError(422, "invalid_phone_number", f"{name} must be a string.", name)
    try:
        return normalise_msisdn(phone)
    except InvalidPhoneNumber as exc:
        raise ApiError(422, "invalid_phone_number", str(exc), name) from exc


def _items(raw: object) -> tuple[Item, ...]:
    if raw is None:
        raise ApiError(422, "missing_field", "items is required.", "items")
    if not isinstance(raw, list):
        raise ApiError(422, "invalid_field", "items must be a list of items.", "items")
    items = []
    for n, entry in enumerate(raw):
        where = f"items[{n}]"
        if not isinstance(entry, dict):
            raise ApiError(422, "invalid_field", f"{where} must be an object.", where)
        for key in ("quantity", "unitPrice"):
            if key not in entry:
                raise ApiError(
                    422, "missing_field", f"{where}.{key} is required.", f"{where}.{key}"
                )
        names = {
            key: text_field(entry, key, limit, required, label=f"{where}.{key}")
            for key, limit, required in ITEM_TEXT
        }
        items.append(
            Item(names["productId"] or "", names["productName"] or "",
                 entry["quantity"], entry["unitPrice"])
        )  # fmt: skip
    return tuple(items)


def parse_move(body: bytes) -> Status:
    data = decode_object(body)
    wanted = data.get("status")
    if wanted is None:
        raise ApiError(422, "missing_field", "status is required.", "status")
    if wanted not in MOVABLE:
        raise ApiError(
            422, "invalid_field", f"status must be one of {', '.join(MOVABLE)}.", "status"
        )
    return Status(wanted)


def parse_order_payment(data: dict[str, Any]) -> tuple[str, int | None]:
    """(normalised phone, amount or None) of an initiate request that names an order."""
    phone = _phone(data, "phoneNumber")
    amount = data.get("amount")
    if amount is None:
        return phone, None
    try:
        return phone, parse_amount(amount)
    except InvalidAmount as exc:
        raise ApiError(422, "invalid_amount", str(exc), "amount") from exc


def present_order(view: OrderView, caller: Caller) -> dict[str, object]:
    """An order as CONTRACT.md §7 shows it; phone masked.

    The shop's page (a checkout token) sees no name or delivery address and the e-mail
    masked: answers to a browser carry nothing that identifies the customer (§8).
    """
    o = view.order
    browser = isinstance(caller, Checkout)
    email = o.customer_email
    return {
        "orderId": o.id,
        "status": o.status,
        "customerName": None if browser else o.customer_name,
        "customerEmail": mask_email(email) if browser and email else email,
        "customerPhone": mask_msisdn(o.customer_phone),
        "deliveryAddress": None if browser else o.delivery_address,
        "items": o.order_items,
        "deliveryFee": o.delivery_fee,
        "totalAmount": o.total_amount,
        "currency": o.currency,
        "paymentId": o.paid_by_payment_id,
        "payments": view.payment_ids,
        "refundDue": o.refund_due,
        "refundPaymentIds": o.refund_payment_ids,
        # Money that came by PayBill (C2B): its id is what paymentId or refundPaymentIds name.
        "paybillPayments": [
            {
                "id": p.id,
                "receipt": p.trans_id,
                "amount": p.amount,
                "state": p.state,
                "receivedAt": iso(p.received_at),
            }
            for p in view.paybill
        ],
        "notes": o.notes,
        "createdAt": iso(o.created_at),
        "updatedAt": iso(o.updated_at),
    }

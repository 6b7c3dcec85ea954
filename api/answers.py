"""What the API answers, as msgspec Structs: the OpenAPI documents every answer with these.

Handlers build the answers as dicts (api/schemas.py, api/order_schemas.py, api/ops.py); these
Structs are their documented shape, camelCase as sent. tests/integration/test_answers.py
decodes real answers into them, with unknown fields forbidden, and checks that encoding them
again gives the same JSON: a field added to an answer but not here, or the reverse, fails.
Each `*_EXAMPLE` is a realistic answer (phones masked, as sent); a test decodes those too.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta


class Answer(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """An answer's fields, camelCase on the wire; decoding one refuses fields not declared."""


# --- Errors --------------------------------------------------------------------------------


class ErrorDetail(msgspec.Struct, rename="camel", omit_defaults=True):
    """What went wrong. `field` names the first bad field of the request, else null.

    Some errors add keys: `paymentId` (a payment in flight), `contact` (the shop's
    call-to-order line, with 503), `currentStatus` (an order that cannot move),
    `totalAmount` (the order's total, for amount_mismatch), `inboxId` (a stored callback),
    `c2bId` (a stored PayBill request).
    """

    code: Annotated[str, Meta(description="Stable, snake_case: switch on it.")]
    message: Annotated[str, Meta(description="For people.")]
    field: Annotated[str | None, Meta(description="The first bad field, e.g. `items[0].quantity`.")]
    payment_id: Annotated[
        str | None, Meta(description="payment_in_progress: the payment in flight, if yours.")
    ] = None
    contact: Annotated[
        str | None, Meta(description="payments_unavailable: the shop's call-to-order line.")
    ] = None
    current_status: Annotated[
        str | None, Meta(description="invalid_transition: where the order is.")
    ] = None
    total_amount: Annotated[int | None, Meta(description="amount_mismatch: the order's total.")] = (
        None
    )
    inbox_id: Annotated[int | None, Meta(description="Callbacks: the stored callback's id.")] = None
    c2b_id: Annotated[str | None, Meta(description="PayBill URLs: the stored request's id.")] = None


class ErrorEnvelope(msgspec.Struct):
    """Every error answer: `{"error": {"code", "message", "field", ...}}`."""

    error: ErrorDetail


# --- Payments ------------------------------------------------------------------------------


class Payment(Answer):
    """A payment as the caller sees it: the phone masked; Daraja's ids null for a page."""

    payment_id: str
    status: Annotated[
        Literal["pending", "completed", "failed", "cancelled"],
        Meta(description="`pending` until the payment's end; the other three are final."),
    ]
    amount: Annotated[int, Meta(description="Whole shillings.")]
    currency: Literal["KES"]
    phone_number: Annotated[str, Meta(description="The customer's number, masked.")]
    product_id: str
    product_name: str
    order_id: Annotated[str | None, Meta(description="The order it pays, if any.")]
    checkout_request_id: Annotated[
        str | None, Meta(description="Daraja's id of the push; null for a checkout token.")
    ]
    merchant_request_id: Annotated[str | None, Meta(description="Null for a checkout token.")]
    mpesa_receipt_number: Annotated[
        str | None, Meta(description="M-Pesa's receipt, once completed (null if a query did).")
    ]
    transaction_date: Annotated[str | None, Meta(description="When M-Pesa took the money.")]
    result_code: Annotated[int | None, Meta(description="Daraja's ResultCode, once known.")]
    result_desc: str | None
    failure_reason: Annotated[
        str | None, Meta(description="Why it failed or was cancelled (README's table).")
    ]
    late_success: Annotated[
        bool, Meta(description="True when the money came after the payment had expired.")
    ]
    message: Annotated[str, Meta(description="What to tell the customer now.")]
    next_action: Annotated[
        Literal["wait_for_pin", "retry", "pay_by_paybill", "none"],
        Meta(description="What the page should offer the customer."),
    ]
    poll_after_ms: Annotated[
        int, Meta(description="Wait this long before reading it again; 0 once final.")
    ]
    created_at: Annotated[str, Meta(description="ISO 8601, UTC.")]
    updated_at: Annotated[str, Meta(description="ISO 8601, UTC.")]


PAYMENT_PENDING_EXAMPLE: dict[str, object] = {
    "paymentId": "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b44",
    "status": "pending",
    "amount": 1500,
    "currency": "KES",
    "phoneNumber": "2547****5678",
    "productId": "board-01",
    "productName": "Tournament chess board",
    "orderId": None,
    "checkoutRequestId": None,
    "merchantRequestId": None,
    "mpesaReceiptNumber": None,
    "transactionDate": None,
    "resultCode": None,
    "resultDesc": None,
    "failureReason": None,
    "lateSuccess": False,
    "message": "Sending the M-Pesa prompt to your phone.",
    "nextAction": "wait_for_pin",
    "pollAfterMs": 2000,
    "createdAt": "2026-11-30T07:41:12.504Z",
    "updatedAt": "2026-11-30T07:41:12.504Z",
}
PAYMENT_COMPLETED_EXAMPLE: dict[str, object] = {
    **PAYMENT_PENDING_EXAMPLE,
    "status": "completed",
    "checkoutRequestId": "ws_CO_30112026104112504712****78",
    "merchantRequestId": "29115-34620561-1",
    "mpesaReceiptNumber": "TKU4Q7XH2P",
    "transactionDate": "2026-11-30T07:41:31Z",
    "resultCode": 0,
    "resultDesc": "The service request is processed successfully.",
    "message": "Payment received. Thank you!",
    "nextAction": "none",
    "pollAfterMs": 0,
    "updatedAt": "2026-11-30T07:41:32.117Z",
}


class Paybill(Answer):
    """Where to pay by hand: the PayBill number and the account reference to type."""

    business_number: str
    account_reference: str


class PaymentsConfig(Answer):
    """What the shop's page may offer (`GET /api/payments/config`)."""

    mpesa_enabled: bool
    paybill: Paybill
    contact: str


PAYMENTS_CONFIG_EXAMPLE: dict[str, object] = {
    "mpesaEnabled": True,
    "paybill": {"businessNumber": "522533", "accountReference": "KP6F1C2A9E4B"},
    "contact": "Call or WhatsApp Khalex Chess on 0700 000 000 to order by phone.",
}


class CallbackAck(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    """What Daraja is told once its callback is stored: `{"ResultCode": 0, ...}`."""

    result_code: Literal[0]
    result_desc: Literal["Accepted"]


CALLBACK_ACK_EXAMPLE: dict[str, object] = {"ResultCode": 0, "ResultDesc": "Accepted"}


class C2bAck(msgspec.Struct, rename="pascal", forbid_unknown_fields=True):
    """What Daraja is told by the PayBill (C2B) URLs once the request is stored.

    A confirmation is always acknowledged (`0`). A validation naming an order is declined
    when it cannot pay that order: `C2B00013` for another amount than the order's total,
    `C2B00012` for an unknown, paid or cancelled order; then the customer's money never moves.
    """

    result_code: Annotated[
        Literal[0, "C2B00012", "C2B00013"],
        Meta(description="0: accepted; C2B00012: invalid account; C2B00013: invalid amount."),
    ]
    result_desc: Literal["Accepted", "Rejected"]


C2B_ACCEPTED_EXAMPLE: dict[str, object] = {"ResultCode": 0, "ResultDesc": "Accepted"}
C2B_DECLINED_EXAMPLE: dict[str, object] = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}


# --- Orders --------------------------------------------------------------------------------


class OrderItem(Answer):
    """One line of an order."""

    product_id: str
    product_name: str
    quantity: int
    unit_price: int


class PaybillPaid(Answer):
    """A PayBill (C2B) payment to an order: `matched` paid it, `refund_due` is owed back."""

    id: Annotated[str, Meta(description="What `paymentId` or `refundPaymentIds` name.")]
    receipt: Annotated[str | None, Meta(description="M-Pesa's receipt (TransID).")]
    amount: Annotated[int | None, Meta(description="Whole shillings.")]
    state: Literal["matched", "refund_due"]
    received_at: Annotated[str | None, Meta(description="ISO 8601, UTC.")]


class Order(Answer):
    """An order (phone masked). A checkout token sees no name or address, the e-mail masked."""

    order_id: str
    status: Literal["pending", "confirmed", "processing", "shipped", "delivered", "cancelled"]
    customer_name: Annotated[str | None, Meta(description="Null for a checkout token.")]
    customer_email: Annotated[str | None, Meta(description="Masked for a checkout token.")]
    customer_phone: Annotated[str, Meta(description="Masked.")]
    delivery_address: Annotated[str | None, Meta(description="Null for a checkout token.")]
    items: list[OrderItem]
    delivery_fee: int
    total_amount: Annotated[
        int, Meta(description="Σ quantity x unitPrice + deliveryFee, whole shillings.")
    ]
    currency: Literal["KES"]
    payment_id: Annotated[
        str | None,
        Meta(description="The payment that paid it (a `paybillPayments` id if by PayBill)."),
    ]
    payments: Annotated[list[str], Meta(description="Every M-Pesa prompt asked for it.")]
    refund_due: Annotated[
        bool, Meta(description="Money came that the order could not take: the shop owes it.")
    ]
    refund_payment_ids: Annotated[
        list[str], Meta(description="Completed payments the shop owes back.")
    ]
    paybill_payments: Annotated[
        list[PaybillPaid],
        Meta(description="Money that came by PayBill for it (paid it, or is owed back)."),
    ]
    notes: str | None
    created_at: Annotated[str, Meta(description="ISO 8601, UTC.")]
    updated_at: Annotated[str, Meta(description="ISO 8601, UTC.")]


class CreatedOrder(Order):
    """A new order, with the checkout token its page pays it with (JWT, one hour)."""

    checkout_token: Annotated[
        str, Meta(description="For the shop's page: pays and reads this order, one hour.")
    ]


class OrderPage(Answer):
    """Orders, newest first; `nextCursor` fetches the next page (null on the last)."""

    orders: list[Order]
    next_cursor: Annotated[str | None, Meta(description="The next page's `cursor`.")]


ORDER_EXAMPLE: dict[str, object] = {
    "orderId": "0b6e2f4c-8d1a-4c3e-b7f2-5a9d1e6c3b80",
    "status": "pending",
    "customerName": "Wanjiru Kamau",
    "customerEmail": "wanjiru@example.com",
    "customerPhone": "2547****5678",
    "deliveryAddress": "Moi Avenue 14, Nairobi",
    "items": [
        {
            "productId": "board-01",
            "productName": "Tournament chess board",
            "quantity": 1,
            "unitPrice": 1500,
        },
        {"productId": "clock-02", "productName": "Chess clock", "quantity": 1, "unitPrice": 2800},
    ],
    "deliveryFee": 200,
    "totalAmount": 4500,
    "currency": "KES",
    "paymentId": None,
    "payments": [],
    "refundDue": False,
    "refundPaymentIds": [],
    "paybillPayments": [],
    "notes": "Deliver after 5 pm",
    "createdAt": "2026-11-30T07:40:03.221Z",
    "updatedAt": "2026-11-30T07:40:03.221Z",
}
CREATED_ORDER_EXAMPLE: dict[str, object] = {
    **ORDER_EXAMPLE,
    "checkoutToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJraGFsZXgtcGF5In0.c2ln",
}
PAYBILL_PAID_ORDER_EXAMPLE: dict[str, object] = {
    **ORDER_EXAMPLE,
    "status": "confirmed",
    "paymentId": "3f9a6d0e-2b7c-4e1a-8d5f-1c7b9e2a4d60",
    "paybillPayments": [
        {
            "id": "3f9a6d0e-2b7c-4e1a-8d5f-1c7b9e2a4d60", "receipt": "TKU5R2MN8Q", "amount": 4500,
            "state": "matched", "receivedAt": "2026-11-30T07:55:10.402Z",
        }
    ],
    "updatedAt": "2026-11-30T07:55:11.016Z",
}  # fmt: skip
ORDER_PAGE_EXAMPLE: dict[str, object] = {
    "orders": [ORDER_EXAMPLE],
    "nextCursor": "MjAyNi0xMS0zMFQwNzo0MDowMy4yMjFafDBiNmUyZjRj",
}


class OrderEventData(Answer, omit_defaults=True):
    """The `data` of the shop's `order.confirmed`, `order.cancelled` and `order.refund_due`
    webhooks: ids, amounts and statuses, nothing personal."""

    order_id: str
    status: Literal["pending", "confirmed", "processing", "shipped", "delivered", "cancelled"]
    total_amount: int
    currency: Literal["KES"]
    payment_id: Annotated[str | None, Meta(description="The payment that paid it.")]
    refund_due: bool
    refund_payment_ids: list[str]
    paid_via: Annotated[
        Literal["paybill"] | None,
        Meta(description="`paybill` when a PayBill (C2B) payment caused it; else absent."),
    ] = None
    receipt: Annotated[
        str | None, Meta(description="With `paidVia`: M-Pesa's receipt (TransID).")
    ] = None


class OrderEvent(Answer):
    """An order webhook's body, `{"type", "timestamp", "data"}` (Standard Webhooks signed)."""

    type: Literal["order.confirmed", "order.cancelled", "order.refund_due"]
    timestamp: Annotated[str, Meta(description="ISO 8601, UTC.")]
    data: OrderEventData


ORDER_CONFIRMED_BY_PAYBILL_EXAMPLE: dict[str, object] = {
    "type": "order.confirmed",
    "timestamp": "2026-11-30T07:55:11.016Z",
    "data": {
        "orderId": "0b6e2f4c-8d1a-4c3e-b7f2-5a9d1e6c3b80", "status": "confirmed",
        "totalAmount": 4500, "currency": "KES",
        "paymentId": "3f9a6d0e-2b7c-4e1a-8d5f-1c7b9e2a4d60", "refundDue": False,
        "refundPaymentIds": [], "paidVia": "paybill", "receipt": "TKU5R2MN8Q",
    },
}  # fmt: skip
ORDER_CONFIRMED_EXAMPLE: dict[str, object] = {
    "type": "order.confirmed",
    "timestamp": "2026-11-30T07:41:33.020Z",
    "data": {
        "orderId": "0b6e2f4c-8d1a-4c3e-b7f2-5a9d1e6c3b80", "status": "confirmed",
        "totalAmount": 4500, "currency": "KES",
        "paymentId": "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b44", "refundDue": False,
        "refundPaymentIds": [],
    },
}  # fmt: skip


# --- Health --------------------------------------------------------------------------------


class Live(Answer):
    """The process runs."""

    status: Literal["ok"]


class Readiness(Answer):
    """Whether the database and Redis answer; `failed` names those that do not."""

    status: Literal["ok", "unavailable"]
    failed: list[Literal["database", "redis"]]


READY_EXAMPLE: dict[str, object] = {"status": "ok", "failed": []}
NOT_READY_EXAMPLE: dict[str, object] = {"status": "unavailable", "failed": ["redis"]}


# --- Operations ----------------------------------------------------------------------------


class QueueStat(Answer):
    """One queue: ready messages, delayed ones (incl. retries), dead letters, oldest wait."""

    name: str
    depth: int
    delayed: int
    dead_lettered: int
    oldest_age_seconds: float


class Queues(Answer):
    queues: list[QueueStat]


QUEUES_EXAMPLE: dict[str, object] = {
    "queues": [
        {"name": "payments", "depth": 0, "delayed": 2, "deadLettered": 0, "oldestAgeSeconds": 0},
        {"name": "callbacks", "depth": 1, "delayed": 0, "deadLettered": 1, "oldestAgeSeconds": 0.4},
    ]
}


class ProcessingSeconds(Answer):
    """Seconds from initiate to a final state: how many, the median and the 95th centile."""

    count: int
    median: float | None
    p95: float | None


class ProcessingBucket(Answer):
    """Payments whose processing time fell at or under `le` seconds (null: above the last)."""

    le: float | None
    count: int


class Window(Answer):
    """Payments created in one window, by outcome; the rates are of final payments."""

    initiated: int
    pending: int
    completed: int
    failed: int
    cancelled: int
    final: int
    late_successes: int
    success_rate: float | None
    abandonment: float | None
    failure_reasons: dict[str, int]
    processing_seconds: ProcessingSeconds
    processing_buckets: list[ProcessingBucket]


class Summary(Answer):
    """The last hour and the last day of payments."""

    generated_at: str
    last_hour: Window
    last_day: Window


_WINDOW_EXAMPLE: dict[str, object] = {
    "initiated": 42, "pending": 2, "completed": 35, "failed": 3, "cancelled": 2, "final": 40,
    "lateSuccesses": 1, "successRate": 0.875, "abandonment": 0.05,
    "failureReasons": {"insufficient_funds": 2, "timeout": 1},
    "processingSeconds": {"count": 40, "median": 18.4, "p95": 51.2},
    "processingBuckets": [
        {"le": 30.0, "count": 31}, {"le": 60.0, "count": 8}, {"le": None, "count": 1},
    ],
}  # fmt: skip
SUMMARY_EXAMPLE: dict[str, object] = {
    "generatedAt": "2026-11-30T08:00:00.012Z",
    "lastHour": _WINDOW_EXAMPLE,
    "lastDay": _WINDOW_EXAMPLE,
}


class StuckPayment(Answer):
    """A pending payment older than RECONCILE_AFTER_S (phone and CheckoutRequestID masked)."""

    payment_id: str
    status: str
    amount: int
    phone_number: str
    checkout_request_id: str | None
    age_seconds: float
    next_query_at: str | None
    query_attempts: int
    push_attempts: int


class Stuck(Answer):
    """`count` is every stuck payment; `payments` the oldest of them."""

    older_than_seconds: int
    count: int
    payments: list[StuckPayment]


STUCK_EXAMPLE: dict[str, object] = {
    "olderThanSeconds": 120,
    "count": 1,
    "payments": [
        {
            "paymentId": "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b44", "status": "pushed",
            "amount": 1500, "phoneNumber": "2547****5678",
            "checkoutRequestId": "ws_CO_30112026104112504712****78", "ageSeconds": 431.7,
            "nextQueryAt": "2026-11-30T07:49:00Z", "queryAttempts": 3, "pushAttempts": 1,
        }
    ],
}  # fmt: skip


class RefundDueOrder(Answer):
    """An order that owes its customer money back (a late or second success)."""

    order_id: str
    status: str
    total_amount: int
    payment_id: str | None
    refund_payment_ids: list[str]
    updated_at: str | None


class RefundsDue(Answer):
    count: int
    orders: list[RefundDueOrder]


REFUNDS_DUE_EXAMPLE: dict[str, object] = {
    "count": 1,
    "orders": [
        {
            "orderId": "0b6e2f4c-8d1a-4c3e-b7f2-5a9d1e6c3b80", "status": "confirmed",
            "totalAmount": 4500, "paymentId": "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b44",
            "refundPaymentIds": ["9d3e7a10-2c4b-4f6e-8a1d-7b5c3e9f0a21"],
            "updatedAt": "2026-11-30T07:52:40Z",
        }
    ],
}  # fmt: skip


class DeadLetter(Answer):
    """A dead-lettered message (its arguments reduced to ids)."""

    message_id: str
    entry_id: str
    actor: str
    args: list[str | int]
    dead_lettered_at: str | None
    retries: int
    error: str | None


class DeadLetterQueue(Answer):
    name: str
    messages: list[DeadLetter]


class DeadDelivery(Answer):
    """A message the poison guard dead-lettered after too many starts."""

    message_id: str
    queue: str
    actor: str
    args: list[str | int]
    started: int
    finished: int
    dead_lettered_at: str | None
    last_error: str | None


class DeadLetters(Answer):
    queues: list[DeadLetterQueue]
    deliveries: list[DeadDelivery]


DEAD_LETTERS_EXAMPLE: dict[str, object] = {
    "queues": [
        {
            "name": "callbacks",
            "messages": [
                {
                    "messageId": "c5b1d2e3-0f4a-4b6c-9d8e-7f6a5b4c3d2e", "entryId": "1764488000-0",
                    "actor": "process_callback", "args": [1184],
                    "deadLetteredAt": "2026-11-30T06:12:09Z", "retries": 5,
                    "error": "OperationalError: server closed the connection",
                }
            ],
        }
    ],
    "deliveries": [],
}  # fmt: skip


class PaybillPayment(Answer):
    """A stored PayBill (C2B) request: ids, receipt, reference, amount and state only (the
    payer's number and names stay in the stored raw body)."""

    id: str
    kind: Literal["validation", "confirmation"]
    received_at: Annotated[str | None, Meta(description="ISO 8601, UTC.")]
    receipt: Annotated[str | None, Meta(description="M-Pesa's receipt (TransID).")]
    account_reference: Annotated[
        str | None, Meta(description="What the customer typed (BillRefNumber).")
    ]
    amount: Annotated[int | None, Meta(description="Whole shillings; null with cents.")]
    state: Annotated[
        Literal[
            "received", "matched", "refund_due", "unmatched", "duplicate", "untrusted",
            "rejected", "accepted", "declined",
        ],
        Meta(description="Confirmations: received, then matched, refund_due, unmatched or "
             "duplicate; untrusted or rejected at the door. Validations: accepted, declined."),
    ]  # fmt: skip
    reason: Annotated[str | None, Meta(description="Why it paid no order, or was refused.")]
    order_id: Annotated[str | None, Meta(description="The order its reference names.")]
    payment_id: Annotated[str | None, Meta(description="The STK payment it is a twin of.")]
    result_code: Annotated[str | None, Meta(description="What a validation was answered.")]
    processed_at: Annotated[str | None, Meta(description="When a worker settled it.")]


class PaybillPayments(Answer):
    """PayBill requests, newest first: by default the confirmations that paid no order."""

    count: int
    payments: list[PaybillPayment]


PAYBILL_PAYMENTS_EXAMPLE: dict[str, object] = {
    "count": 1,
    "payments": [
        {
            "id": "8e2d4b6a-1c3f-4a5e-9b7d-0f2e4c6a8b1d", "kind": "confirmation",
            "receivedAt": "2026-11-30T07:58:21.640+00:00", "receipt": "TKU6S3NP9R",
            "accountReference": "KP0B6E2F4C8E", "amount": 4500, "state": "unmatched",
            "reason": "no order has this account reference", "orderId": None, "paymentId": None,
            "resultCode": None, "processedAt": "2026-11-30T07:58:22.105+00:00",
        }
    ],
}  # fmt: skip

#: Every answer Struct, with the examples that must decode into it.
EXAMPLES: dict[type[msgspec.Struct], tuple[dict[str, object], ...]] = {
    Payment: (PAYMENT_PENDING_EXAMPLE, PAYMENT_COMPLETED_EXAMPLE),
    PaymentsConfig: (PAYMENTS_CONFIG_EXAMPLE,),
    CallbackAck: (CALLBACK_ACK_EXAMPLE,),
    C2bAck: (C2B_ACCEPTED_EXAMPLE, C2B_DECLINED_EXAMPLE),
    Order: (ORDER_EXAMPLE, PAYBILL_PAID_ORDER_EXAMPLE),
    OrderEvent: (ORDER_CONFIRMED_EXAMPLE, ORDER_CONFIRMED_BY_PAYBILL_EXAMPLE),
    CreatedOrder: (CREATED_ORDER_EXAMPLE,),
    OrderPage: (ORDER_PAGE_EXAMPLE,),
    Readiness: (READY_EXAMPLE, NOT_READY_EXAMPLE),
    Queues: (QUEUES_EXAMPLE,),
    Summary: (SUMMARY_EXAMPLE,),
    Stuck: (STUCK_EXAMPLE,),
    RefundsDue: (REFUNDS_DUE_EXAMPLE,),
    DeadLetters: (DEAD_LETTERS_EXAMPLE,),
    PaybillPayments: (PAYBILL_PAYMENTS_EXAMPLE,),
}

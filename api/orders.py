"""The shop's order endpoints (CONTRACT.md §7), and paying an order through initiate.

Who may call what (§8): the shop's server (API key) and operators create, list and move
orders; a checkout token reads only its own order. Out of scope is answered 404, as if the
order did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, RawBody
from litestar.status_codes import HTTP_201_CREATED

from api import checkout_tokens, refused
from api import openapi_docs as docs
from api.callers import Caller, Checkout, may_read_order
from api.checkout_tokens import MAX_ORDER_ID
from api.errors import ApiError
from api.order_schemas import parse_move, parse_order, parse_order_payment, present_order
from api.schemas import MAX_IDEMPOTENCY_KEY
from api.types import AnyRequest, Deps
from domain.order import Status
from payments import initiation, orders
from payments.container import Container
from store.payments import OrderBusy

#: Seconds a page should wait before paying an order again while a payment is in flight.
RETRY_AFTER_BUSY_S = 30
#: Statuses `GET /api/orders?status=` filters on.
STATUSES = tuple(s.value for s in Status)


def idempotency_key(request: AnyRequest) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters."
        )
    return key


def not_found(order_id: str) -> ApiError:
    return ApiError(404, "order_not_found", f"No order {order_id!r}.")


def _shop_only(caller: Caller) -> None:
    # A checkout token pays one order; anything wider does not exist for it.
    if isinstance(caller, Checkout):
        raise ApiError(404, "not_found", "Not found.")


class OrderController(Controller):
    path = "/api/orders"
    tags = ["orders"]  # noqa: RUF012 - Litestar declares it an instance attribute

    @post("/", sync_to_thread=True, status_code=HTTP_201_CREATED, **docs.ORDER_CREATE)
    def create(
        self, request: AnyRequest, container: Deps, caller: Caller, body: RawBody
    ) -> Response[dict[str, object]]:
        """Create an order; its total is computed here. Answers the order with a
        `checkoutToken` for the shop's page, which pays it with only the customer's phone."""
        _shop_only(caller)
        with refused.kept(container, request, body, request.headers.get("idempotency-key")):
            new = parse_order(body)
            key = idempotency_key(request)
            try:
                view = orders.create(container, new, key)
            except orders.IdempotencyKeyReused as exc:
                raise ApiError(
                    409, "idempotency_key_reused",
                    "This Idempotency-Key was used with another order.",
                ) from exc  # fmt: skip
        answer = present_order(view, caller)
        answer["checkoutToken"] = checkout_tokens.mint(container.settings.jwt_secret, view.order.id)
        headers = {"Location": f"/api/orders/{view.order.id}"}
        if view.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(answer, status_code=201, headers=headers)

    @get("/{order_id:str}", sync_to_thread=True, **docs.ORDER_READ)
    def read(self, order_id: FromPath[str], container: Deps, caller: Caller) -> dict[str, object]:
        """One order; a checkout token reads only its own."""
        if not may_read_order(caller, order_id):
            raise not_found(order_id)
        try:
            view = orders.get(container, order_id)
        except orders.OrderNotFound as exc:
            raise not_found(order_id) from exc
        return present_order(view, caller)

    @get("/", sync_to_thread=True, **docs.ORDER_LIST)
    def listing(
        self,
        container: Deps,
        caller: Caller,
        status: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, object]:
        """Orders, newest first; `nextCursor` (null on the last page) fetches the next page."""
        _shop_only(caller)
        if status is not None and status not in STATUSES:
            raise ApiError(
                422, "invalid_field", f"status must be one of {', '.join(STATUSES)}.", "status"
            )
        size = _limit(limit)
        try:
            page = orders.list_orders(container, status=status, limit=size, cursor=cursor)
        except orders.InvalidCursor as exc:
            raise ApiError(
                422, "invalid_cursor", "cursor must be a nextCursor this API gave.", "cursor"
            ) from exc
        return {
            "orders": [present_order(v, caller) for v in page.orders],
            "nextCursor": page.next_cursor,
        }

    @post("/{order_id:str}/status", sync_to_thread=True, status_code=200, **docs.ORDER_MOVE)
    def move(
        self,
        request: AnyRequest,
        order_id: FromPath[str],
        container: Deps,
        caller: Caller,
        body: RawBody,
    ) -> dict[str, object]:
        """Move the order: processing, shipped, delivered or cancelled (shop or operator)."""
        if isinstance(caller, Checkout):
            raise not_found(order_id)
        with refused.kept(container, request, body):
            to = parse_move(body)
            try:
                view = orders.move(container, order_id, to)
            except orders.OrderNotFound as exc:
                raise not_found(order_id) from exc
            except orders.InvalidTransition as exc:
                raise ApiError(
                    409, "invalid_transition", str(exc), "status",
                    currentStatus=exc.current.value,
                ) from exc  # fmt: skip
        return present_order(view, caller)


def _limit(raw: str | None) -> int:
    if raw is None:
        return orders.DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= orders.MAX_PAGE:
        raise ApiError(
            422, "invalid_field", f"limit must be a whole number 1 to {orders.MAX_PAGE}.", "limit"
        )
    return int(raw)


def wants_order(data: dict[str, Any], caller: Caller) -> bool:
    """Whether an initiate request pays an order (it names one, or comes from its page)."""
    return data.get("orderId") is not None or isinstance(caller, Checkout)


@dataclass(frozen=True)
class OrderPayment:
    """What an initiate request that pays an order asks for (`order_payment`)."""

    order_id: str
    phone: str  # normalised
    amount: int | None  # the order's total, if the request names it


def order_payment(data: dict[str, Any], caller: Caller) -> OrderPayment:
    """The order, phone and amount of an initiate request with {orderId, phoneNumber}.

    Raises:
        ApiError: 422 for a bad field; 404 for an order `caller` may not pay.
    """
    order_id = data.get("orderId")
    if isinstance(caller, Checkout):
        order_id = caller.order_id if order_id is None else order_id
    if not isinstance(order_id, str) or not 0 < len(order_id) <= MAX_ORDER_ID:
        raise ApiError(422, "invalid_field", "orderId must be an order's id.", "orderId")
    if not may_read_order(caller, order_id):
        raise not_found(order_id)
    phone, amount = parse_order_payment(data)
    return OrderPayment(order_id, phone, amount)


def initiate_for_order(
    container: Container, asked: OrderPayment, key: str | None
) -> initiation.Initiated:
    """`POST /api/payments/initiate` for `asked` (from `order_payment`, its rate limits
    counted): the rest from the order."""
    order_id, phone, amount = asked.order_id, asked.phone, asked.amount
    try:
        return orders.initiate_payment(
            container, order_id, phone, amount=amount, idempotency_key=key
        )
    except orders.OrderNotFound as exc:
        raise not_found(order_id) from exc
    except orders.AmountMismatch as exc:
        raise ApiError(
            409, "amount_mismatch",
            f"amount {exc.asked} is not the order's total, {exc.total} KES; "
            "send only orderId and phoneNumber.",
            "amount", totalAmount=exc.total,
        ) from exc  # fmt: skip
    except orders.OrderAlreadyPaid as exc:
        raise ApiError(409, "order_already_paid", "This order is already paid.", "orderId") from exc
    except orders.OrderCancelled as exc:
        raise ApiError(
            409, "order_cancelled", "This order was cancelled; it takes no payment.", "orderId"
        ) from exc
    except OrderBusy as exc:
        raise ApiError(
            409, "payment_in_progress",
            "A payment for this order is still waiting for the customer.",
            "orderId", headers={"Retry-After": str(RETRY_AFTER_BUSY_S)},
            paymentId=exc.payment_id or None,
        ) from exc  # fmt: skip

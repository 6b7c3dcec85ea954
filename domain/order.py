r"""The order state machine: what the shop may do to an order, and what money arriving means.

An order is a frozen snapshot. `decide(order, fact)` returns the `Change` a fact causes, or
None when it changes nothing (a payment's completion seen twice, a move to where the order
already is). A move the machine does not allow raises `InvalidTransition`: it comes from a
person (the shop or an operator), who must be told.

    pending --payment of the full total--> confirmed --> processing --> shipped --> delivered
    pending|confirmed --cancel--> cancelled

Rule of money: an order is confirmed only by a completed payment of exactly its total, and
no completed payment is ever dropped. Money that cannot pay the order (the order is
cancelled, already paid by another payment, or the amount is not the total) is recorded in
`refunds` and sets `refund_due`; so is the paying payment when a paid order is cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from domain.events import Event
from domain.money import MAX_AMOUNT, MIN_AMOUNT

__all__ = [
    "Change",
    "Event",
    "InvalidOrder",
    "InvalidTransition",
    "Item",
    "Moved",
    "Order",
    "PaymentCompleted",
    "Status",
    "decide",
    "shop_events",
    "total_of",
]

#: Most of one product in one order: a typo guard (1000 chess sets is a wholesale order).
MAX_QUANTITY = 1000
#: Most line items in one order.
MAX_ITEMS = 100


class Status(StrEnum):
    PENDING = "pending"  # created by the shop; waiting for the customer's payment
    CONFIRMED = "confirmed"  # paid in full by one completed payment
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


#: Moves the shop or an operator may make; confirmation comes only from a payment.
_MOVES: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.PROCESSING, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.SHIPPED}),
    Status.SHIPPED: frozenset({Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
}
#: States in which the order has been paid (and not cancelled since).
PAID = frozenset({Status.CONFIRMED, Status.PROCESSING, Status.SHIPPED, Status.DELIVERED})


class InvalidOrder(ValueError):
    """An order the shop cannot create; `field` names the JSON field at fault."""

    def __init__(self, field: str, message: str, *, is_total: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.is_total = is_total  # the items are fine one by one; their sum is not


class InvalidTransition(ValueError):
    """A move the order state machine does not allow."""

    def __init__(self, current: Status, wanted: Status) -> None:
        super().__init__(f"An order that is {current.value} cannot become {wanted.value}.")
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True)
class Item:
    product_id: str
    product_name: str
    quantity: int
    unit_price: int  # whole shillings


def _whole(value: object, name: str, low: int, high: int) -> int:
    # bool is an int subclass: `true` in JSON must not become 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrder(name, f"{name} must be a whole number.")
    if not low <= value <= high:
        raise InvalidOrder(name, f"{name} must be between {low} and {high:,}.")
    return value


def total_of(items: Sequence[Item], delivery_fee: int) -> int:
    """Σ quantity x unitPrice + deliveryFee, in shillings M-Pesa can take in one payment.

    Raises:
        InvalidOrder: no items, too many, a quantity, price or fee that is not a whole
            number in range, or a total outside MIN_AMOUNT..MAX_AMOUNT.
    """
    if not items:
        raise InvalidOrder("items", "items must hold at least one item.")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder("items", f"items may hold at most {MAX_ITEMS} items.")
    total = _whole(delivery_fee, "deliveryFee", 0, MAX_AMOUNT)
    for n, item in enumerate(items):
        quantity = _whole(item.quantity, f"items[{n}].quantity", 1, MAX_QUANTITY)
        price = _whole(item.unit_price, f"items[{n}].unitPrice", 0, MAX_AMOUNT)
        total += quantity * price
    if not MIN_AMOUNT <= total <= MAX_AMOUNT:
        raise InvalidOrder(
            "items",
            f"The order's total, {total:,} KES, must be between {MIN_AMOUNT} and "
            f"{MAX_AMOUNT:,} KES, M-Pesa's limit for one payment.",
            is_total=True,
        )
    return total


@dataclass(frozen=True)
class Order:
    """What the state machine needs to know about one order."""

    id: str
    total: int
    status: Status = Status.PENDING
    paid_by: str | None = None  # the payment that confirmed it
    refunds: tuple[str, ...] = ()  # completed payments whose money the shop must give back

    @property
    def refund_due(self) -> bool:
        return bool(self.refunds)


@dataclass(frozen=True)
class Change:
    before: Order
    after: Order
    event: Event


# Facts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """The shop or an operator asks to move the order to `to`."""

    to: Status


@dataclass(frozen=True)
class PaymentCompleted:
    """A payment for this order completed (on time, late, or after the order moved on)."""

    payment_id: str
    amount: int
    #: "paybill" when the money came by PayBill (`payment_id` is then the C2B payment's id,
    #: `receipt` its TransID); None for an STK payment.
    via: str | None = None
    receipt: str | None = None

    @property
    def data(self) -> dict[str, object]:
        """What the order's event records about this money."""
        extra = {"via": self.via, "receipt": self.receipt} if self.via else {}
        return {"paymentId": self.payment_id, "amount": self.amount, **extra}


Fact = Moved | PaymentCompleted


def decide(order: Order, fact: Fact) -> Change | None:
    """The change `fact` makes to `order`, or None if it changes nothing.

    Raises:
        InvalidTransition: a `Moved` the machine does not allow.
    """
    match fact:
        case Moved():
            return _moved(order, fact.to)
        case PaymentCompleted():
            return _paid(order, fact)


def _change(before: Order, kind: str, data: dict[str, object], **fields: object) -> Change:
    after = replace(before, **fields)  # type: ignore[arg-type]
    return Change(before, after, Event(kind, {"from": before.status.value, **data}))


def _moved(o: Order, to: Status) -> Change | None:
    if to is o.status:
        return None  # asked twice: already there
    if to not in _MOVES[o.status]:
        raise InvalidTransition(o.status, to)
    if to is Status.CANCELLED and o.paid_by is not None:
        # The customer paid for an order the shop now cancels: that money goes back.
        return _change(
            o, "cancelled", {"refundDue": True, "paymentId": o.paid_by},
            status=to, refunds=(*o.refunds, o.paid_by),
        )  # fmt: skip
    return _change(o, to.value, {}, status=to)


def _paid(o: Order, f: PaymentCompleted) -> Change | None:
    if f.payment_id == o.paid_by or f.payment_id in o.refunds:
        return None  # this payment's money is already accounted for
    if o.status is Status.PENDING and f.amount == o.total:
        return _change(
            o, "confirmed", f.data,
            status=Status.CONFIRMED, paid_by=f.payment_id,
        )  # fmt: skip
    if o.status is Status.CANCELLED:
        reason = "order_cancelled"
    elif o.status in PAID:
        reason = "already_paid"
    else:
        reason = "amount_differs"  # pending, but not the order's total: never confirms it
    return _change(
        o, "refund_due", {**f.data, "reason": reason},
        refunds=(*o.refunds, f.payment_id),
    )  # fmt: skip


#: The shop webhook event type for each order event kind that the shop is told about.
_SHOP_EVENT = {"confirmed": "order.confirmed", "cancelled": "order.cancelled"}


def shop_events(change: Change) -> tuple[str, ...]:
    """The shop webhook event types (`order.confirmed|cancelled|refund_due`) `change` makes."""
    types = [_SHOP_EVENT[change.event.kind]] if change.event.kind in _SHOP_EVENT else []
    if len(change.after.refunds) > len(change.before.refunds):
        types.append("order.refund_due")
    return tuple(types)

"""PayBill (C2B) payments: the account reference that names an order, and what a payment means.

When the STK prompt never reaches the customer, they can pay the shop's PayBill by hand,
typing the order's account reference. Safaricom then tells us of the payment with a C2B
confirmation, which names the reference (`BillRefNumber`) and the amount, never reliably the
payer (the v2 MSISDN is a SHA-256 digest): a PayBill payment is matched to its order by
reference and amount only.

An order's reference is "KP" and the first 10 hex digits of its id, upper case: 12 characters,
Daraja's AccountReference limit, and short enough to type on a phone.
"""

from __future__ import annotations

import re
from enum import StrEnum

#: What starts every order's account reference.
PREFIX = "KP"
#: Hex digits of the order id a reference carries.
HEX_DIGITS = 10
#: An order reference as the customer may type it (case and spaces forgiven).
_REFERENCE = re.compile(rf"{PREFIX}([0-9A-F]{{{HEX_DIGITS}}})")


def account_reference(order_id: str) -> str:
    """The reference a customer types to pay order `order_id` by PayBill (`KP1A2B3C4D5E`)."""
    return PREFIX + order_id.replace("-", "").upper()[:HEX_DIGITS]


def normalise(typed: str) -> str:
    """A typed reference as we compare it: no spaces or dashes, upper case."""
    return re.sub(r"[\s-]", "", typed).upper()


def order_id_bounds(typed: str) -> tuple[str, str] | None:
    """The lowest and highest order ids whose reference `typed` is, or None if it is none.

    The reference carries the first 10 hex digits of the id; every id between the bounds
    (inclusive) starts with them.
    """
    found = _REFERENCE.fullmatch(normalise(typed))
    if found is None:
        return None
    digits = found.group(1).lower()
    return _uuid(digits + "0" * (32 - HEX_DIGITS)), _uuid(digits + "f" * (32 - HEX_DIGITS))


def _uuid(hex32: str) -> str:
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Refusal(StrEnum):
    """Why a PayBill payment cannot pay an order; with validation on, Daraja is told to
    refuse it before the customer's money moves (the C2B result code in `c2b_code`)."""

    UNKNOWN_REFERENCE = "unknown_reference"  # an order reference that names no order
    AMOUNT_DIFFERS = "amount_differs"  # not the order's total
    ORDER_PAID = "order_paid"  # the order is already paid
    ORDER_CANCELLED = "order_cancelled"

    @property
    def c2b_code(self) -> str:
        """Daraja's validation result code: C2B00013 for the amount, C2B00012 otherwise."""
        return "C2B00013" if self is Refusal.AMOUNT_DIFFERS else "C2B00012"

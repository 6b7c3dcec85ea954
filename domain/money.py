"""Amounts in whole Kenyan shillings: what a shop may ask, and whether M-Pesa paid it.

STK Push takes whole shillings only: Daraja rejects decimals with "Invalid Amount"
(DARAJA.md §2, gotcha 3), so we refuse them up front instead of rounding someone's price.
Callbacks report the amount as a JSON number such as `1500.00`, read as a Decimal.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MAX_AMOUNT", "MIN_AMOUNT", "InvalidAmount", "amount_matches", "parse_amount"]

#: Smallest STK Push amount, in KES.
MIN_AMOUNT = 1
#: Largest STK Push amount per transaction, in KES (M-Pesa's limit since 2023).
MAX_AMOUNT = 250_000


class InvalidAmount(ValueError):
    """An amount we cannot ask M-Pesa for; the message says why."""


def parse_amount(value: object) -> int:
    """`value` as whole shillings in MIN_AMOUNT..MAX_AMOUNT.

    Accepts an int, or a float or Decimal with no fractional part (`1500.0`).

    Raises:
        InvalidAmount: a bool, a string, a fraction, not finite, or out of range.
    """
    # bool is an int subclass: `true` in JSON must not become 1 shilling.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidAmount(_wrong_type(value))
    number = Decimal(value)  # exact for floats too, so 1500.0000001 is not a whole number
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidAmount("Amount must be a whole number of shillings; M-Pesa takes no cents.")
    # Check the range before int(): Decimal("1E+999999999") is integral but enormous.
    if number < MIN_AMOUNT:
        raise InvalidAmount(f"Amount must be at least {MIN_AMOUNT} KES.")
    if number > MAX_AMOUNT:
        raise InvalidAmount(f"Amount must be at most {MAX_AMOUNT:,} KES, M-Pesa's limit.")
    return int(number)


def _wrong_type(value: object) -> str:
    if isinstance(value, str):
        return "Amount must be a number such as 1500, not a string."
    if value is None:
        return "Amount is required."
    return "Amount must be a whole number of shillings such as 1500."


def amount_matches(asked: int, reported: Decimal) -> bool:
    """Whether M-Pesa's `reported` amount (`1500.00`) is exactly the `asked` shillings.

    Never raises: a NaN (even a signalling one from a forged callback) is simply no match.
    """
    return reported.is_finite() and reported == asked

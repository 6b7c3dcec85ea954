"""Parse the raw body Daraja POSTs to an STK push's CallBackURL (DARAJA.md §4).

Real callbacks vary: `Amount` is a number often written `100.00`, `Balance` comes without a
`Value`, metadata items arrive in any order, `ResultCode` has been seen as a string. So items
are looked up by name, never by position, and every value is coerced. Anything that cannot
be read raises `MalformedCallback` with a short reason naming what is wrong, so the webhook
can store the body as rejected and say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from daraja.wire import NAIROBI, TIMESTAMP_FORMAT

#: Decodes JSON numbers with a fraction as `Decimal`, so `100.00` never passes through float.
_DECODER = msgspec.json.Decoder(float_hook=Decimal)
#: The only success ResultCode (DARAJA.md §5).
SUCCESS = 0


class MalformedCallback(ValueError):
    """A body that is not a readable STK callback. `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StkCallback:
    """One STK callback, read. Only a success carries amount, receipt, date and phone."""

    merchant_request_id: str
    checkout_request_id: str
    result_code: int
    result_desc: str
    amount: Decimal | None = None
    receipt: str | None = None
    #: Aware, in Africa/Nairobi: Daraja sends Nairobi wall-clock time.
    transaction_date: datetime | None = None
    phone: str | None = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        """True only for ResultCode 0; a success always has a receipt and an amount."""
        return self.result_code == SUCCESS


def parse_stk_callback(raw: bytes) -> StkCallback:
    """Read a raw callback body.

    Raises:
        MalformedCallback: not JSON, no `Body.stkCallback`, a missing id, a ResultCode that
            is not a number, an unreadable metadata value, or a success without a receipt
            or amount.
    """
    callback = _stk_callback(_decode(raw))
    items = _metadata(callback)
    parsed = StkCallback(
        merchant_request_id=_required_id(callback, "MerchantRequestID"),
        checkout_request_id=_required_id(callback, "CheckoutRequestID"),
        result_code=_result_code(callback.get("ResultCode")),
        result_desc=str(callback.get("ResultDesc") or ""),
        amount=_amount(items.get("Amount")),
        receipt=_text(items.get("MpesaReceiptNumber")),
        transaction_date=_transaction_date(items.get("TransactionDate")),
        phone=_text(items.get("PhoneNumber")),
    )
    if parsed.succeeded and (parsed.receipt is None or parsed.amount is None):
        raise MalformedCallback("ResultCode 0 without MpesaReceiptNumber or Amount")
    return parsed


def _decode(raw: bytes) -> Any:
    try:
        return _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise MalformedCallback(f"not JSON: {exc}") from exc


def _stk_callback(data: Any) -> Mapping[str, Any]:
    body = data.get("Body") if isinstance(data, dict) else None
    callback = body.get("stkCallback") if isinstance(body, dict) else None
    if not isinstance(callback, dict):
        raise MalformedCallback("no Body.stkCallback object")
    return callback


def _required_id(callback: Mapping[str, Any], name: str) -> str:
    value = callback.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedCallback(f"missing {name}")
    return value.strip()


def _metadata(callback: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata items by name; items without a `Value` (like `Balance`) are skipped."""
    metadata = callback.get("CallbackMetadata")
    if metadata is None:
        return {}
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if isinstance(items, dict):
        items = [items]  # a lone item, as some JSON-from-XML converters send it
    if not isinstance(items, list):
        raise MalformedCallback("CallbackMetadata.Item is not a list")
    found: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and "Name" in item and item.get("Value") is not None:
            found.setdefault(str(item["Name"]), item["Value"])
    return found


def _result_code(value: Any) -> int:
    integral = _integral(value)
    if integral is None:
        raise MalformedCallback(f"ResultCode {value!r} is not a number")
    return integral


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedCallback(f"Amount {value!r} is not a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MalformedCallback(f"Amount {value!r} is not a number") from exc
    if not amount.is_finite():
        raise MalformedCallback(f"Amount {value!r} is not a number")
    return amount


def _transaction_date(value: Any) -> datetime | None:
    if value is None:
        return None
    digits = _integral(value)
    try:
        parsed = datetime.strptime(str(digits), TIMESTAMP_FORMAT)
    except ValueError as exc:
        raise MalformedCallback(f"TransactionDate {value!r} is not YYYYMMDDHHmmss") from exc
    return parsed.replace(tzinfo=NAIROBI)  # Daraja writes Nairobi wall-clock time


def _text(value: Any) -> str | None:
    """A string item; numbers (the phone is sent as one) are written without a fraction."""
    integral = _integral(value) if not isinstance(value, str) else None
    text = str(integral) if integral is not None else str(value or "").strip()
    return text or None


def _integral(value: Any) -> int | None:
    """`value` as an int if it is a whole number (int, Decimal, or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None

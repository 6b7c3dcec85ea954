"""Parse the raw body Daraja POSTs to an STK push's CallBackURL (DARAJA.md §4).

Real callbacks vary: `Amount` is a number often written `100.00`, `Balance` comes without a
`Value`, metadata items arrive in any order, `ResultCode` has been seen as a string. So items
are looked up by name, never by position, and every value is coerced. Anything that cannot
be read raises `MalformedCallback` with a short reason naming what is wrong, so the webhook
can store the body as rejected and say why.
"""

from __future__ import annotations

import re
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
#: ResultCodes outside a 32-bit integer are nonsense (and would not fit the column).
RESULT_CODE_RANGE = (-(2**31), 2**31 - 1)
#: The most one STK push can ask for, in shillings (M-Pesa's per-transaction limit).
MAX_AMOUNT = 250_000
#: Ids as Daraja writes them (`ws_CO_…`, `29115-34620561-1`); the columns hold 64 characters.
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: M-Pesa receipts are 10 letters and digits; the column holds 32.
_RECEIPT = re.compile(r"[A-Za-z0-9]{1,32}")
#: Longest ResultDesc we keep (the column's width).
MAX_DESC = 255
#: Characters PostgreSQL text refuses or nobody should see: C0 controls, DEL, surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class MalformedCallback(ValueError):
    """A body that is not a readable STK callback. `reason` says what is wrong.

    `checkout_request_id` is set when the body still names a well-formed CheckoutRequestID,
    so the payment it names can be checked with Daraja.
    """

    def __init__(self, reason: str, checkout_request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checkout_request_id = checkout_request_id


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
    checkout_request_id = _required_id(callback, "CheckoutRequestID")
    try:
        return _read(callback, checkout_request_id)
    except MalformedCallback as exc:
        raise MalformedCallback(exc.reason, checkout_request_id) from exc


def _read(callback: Mapping[str, Any], checkout_request_id: str) -> StkCallback:
    items = _metadata(callback)
    parsed = StkCallback(
        merchant_request_id=_required_id(callback, "MerchantRequestID"),
        checkout_request_id=checkout_request_id,
        result_code=_result_code(callback.get("ResultCode")),
        result_desc=printable(str(callback.get("ResultDesc") or ""))[:MAX_DESC],
        amount=_amount(items.get("Amount")),
        receipt=_receipt(items.get("MpesaReceiptNumber")),
        transaction_date=_transaction_date(items.get("TransactionDate")),
        phone=_text(items.get("PhoneNumber")),
    )
    if parsed.succeeded and (parsed.receipt is None or parsed.amount is None):
        raise MalformedCallback("ResultCode 0 without MpesaReceiptNumber or Amount")
    return parsed


def printable(text: str) -> str:
    """`text` without control characters or lone surrogates (PostgreSQL refuses NUL)."""
    return _UNPRINTABLE.sub("\ufffd", text)


def _decode(raw: bytes) -> Any:
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        # RecursionError: nesting deeper than the interpreter allows is not a callback either.
        raise MalformedCallback(f"not JSON: {str(exc)[:100]}") from exc


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
    if not _ID.fullmatch(value.strip()):
        raise MalformedCallback(f"{name} is not 1 to 64 letters, digits, '_', '-', '.' or ':'")
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
        raise MalformedCallback(f"ResultCode {_shown(value)} is not a number")
    low, high = RESULT_CODE_RANGE
    if not low <= integral <= high:
        raise MalformedCallback(f"ResultCode {_shown(value)} is out of range")
    return integral


def _amount(value: Any) -> Decimal | None:
    """A whole number of shillings, 1 to MAX_AMOUNT (`100.00` is fine, `100.50` is not)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MalformedCallback(f"Amount {_shown(value)} is not a number")
    try:
        amount = Decimal(str(value).strip()[:40])
    except InvalidOperation as exc:
        raise MalformedCallback(f"Amount {_shown(value)} is not a number") from exc
    if not amount.is_finite():
        raise MalformedCallback(f"Amount {_shown(value)} is not a number")
    if not 0 < amount <= MAX_AMOUNT or amount != amount.to_integral_value():
        raise MalformedCallback(f"Amount {_shown(value)} is not 1 to {MAX_AMOUNT} whole shillings")
    return amount


def _receipt(value: Any) -> str | None:
    receipt = _text(value)
    if receipt is not None and not _RECEIPT.fullmatch(receipt):
        raise MalformedCallback("MpesaReceiptNumber is not 1 to 32 letters and digits")
    return receipt


def _transaction_date(value: Any) -> datetime | None:
    if value is None:
        return None
    digits = _integral(value)
    try:
        parsed = datetime.strptime(str(digits), TIMESTAMP_FORMAT)
    except ValueError as exc:
        raise MalformedCallback(f"TransactionDate {_shown(value)} is not YYYYMMDDHHmmss") from exc
    return parsed.replace(tzinfo=NAIROBI)  # Daraja writes Nairobi wall-clock time


def _text(value: Any) -> str | None:
    """A string item; numbers (the phone is sent as one) are written without a fraction."""
    integral = _integral(value) if not isinstance(value, str) else None
    text = str(integral) if integral is not None else printable(str(value or "")[:64]).strip()
    return text or None


def _shown(value: Any) -> str:
    """`value` short enough to quote in a stored reason."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integral(value: Any) -> int | None:
    """`value` as an int if it is a whole number (int, Decimal, or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        whole = value.is_finite() and abs(value) < _HUGE and value == value.to_integral_value()
        return int(value) if whole else None
    text = value.strip() if isinstance(value, str) else ""
    # Long digit strings are nonsense here, and int() refuses past 4,300 digits anyway.
    if len(text) <= 40 and text.lstrip("-").isdigit() and text.isascii():
        return int(text)
    return None


#: Numbers this large are never a ResultCode or a date; int() of them would be slow.
_HUGE = Decimal(10) ** 40

"""Request validation, in Daraja's order, answering Daraja's exact refusal.

Two stages, as on the real platform: the gateway first checks every field's format in the
order of Daraja's field table (400.002.02 "Bad Request - Invalid <Field>"), then the M-Pesa
backend checks that the merchant exists and the Password matches (500.001.1001). Anything a
serialiser can get wrong (a missing Content-Type, a misspelt key, a float amount) ends in a
refusal here, so a client that passes these checks passes Daraja's.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from daraja.simulator import errors
from daraja.simulator.config import SimulatorConfig
from daraja.simulator.errors import Refusal

#: Daraja's per-transaction ceiling in KES (portal FAQ, since 2023).
MAX_AMOUNT = 250_000
TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")

_MSISDN = re.compile(r"254[17][0-9]{8}")
_SHORTCODE = re.compile(r"[0-9]{5,7}")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,7}")
#: Special characters in the prompt fields have made real requests fail (DARAJA.md §9.13).
_PROMPT_TEXT = re.compile(r"[A-Za-z0-9 -]+")
#: Words Safaricom refuses in callback URLs; keeping them out is the only safe choice.
_BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom")

Checker = Callable[[Any], Any]


@dataclass(frozen=True)
class PushRequest:
    """A push whose fields all have Daraja's formats (not yet checked against the merchant)."""

    shortcode: str
    password: str
    timestamp: str
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone_number: str
    callback_url: str
    account_reference: str
    transaction_desc: str | None


@dataclass(frozen=True)
class QueryRequest:
    """An STK query whose fields all have Daraja's formats."""

    shortcode: str
    password: str
    timestamp: str
    checkout_request_id: str


def read_json_object(content_type: str | None, body: bytes) -> dict[str, Any] | Refusal:
    """The JSON object in `body`; a missing or non-JSON Content-Type reads as no fields."""
    if not _is_json(content_type):
        # Daraja reads nothing without the JSON type, so its first check fails.
        return errors.invalid_field("BusinessShortCode")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return errors.INVALID_PAYLOAD
    return value if isinstance(value, dict) else {}


def check_push(fields: dict[str, Any]) -> PushRequest | Refusal:
    """The push in `fields`, or the first format refusal in Daraja's field order."""
    v = _check_fields(fields, _PUSH_FIELDS)
    if isinstance(v, Refusal):
        return v
    desc = fields.get("TransactionDesc")
    if "TransactionDesc" in fields and _prompt_text(desc, 13) is None:
        return errors.invalid_field("TransactionDesc")
    return PushRequest(
        shortcode=v["BusinessShortCode"],
        password=v["Password"],
        timestamp=v["Timestamp"],
        transaction_type=v["TransactionType"],
        amount=v["Amount"],
        party_a=v["PartyA"],
        party_b=v["PartyB"],
        phone_number=v["PhoneNumber"],
        callback_url=v["CallBackURL"],
        account_reference=v["AccountReference"],
        transaction_desc=desc,
    )


def check_query(fields: dict[str, Any]) -> QueryRequest | Refusal:
    """The query in `fields`, or the first format refusal."""
    v = _check_fields(fields, _QUERY_FIELDS)
    if isinstance(v, Refusal):
        return v
    return QueryRequest(
        shortcode=v["BusinessShortCode"],
        password=v["Password"],
        timestamp=v["Timestamp"],
        checkout_request_id=v["CheckoutRequestID"],
    )


def check_merchant(
    config: SimulatorConfig, shortcode: str, password: str, timestamp: str
) -> Refusal | None:
    """The backend's refusal when the shortcode is not ours or the Password is wrong."""
    if shortcode != config.shortcode:
        return errors.MERCHANT_UNKNOWN
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    if not hmac.compare_digest(password.encode(), expected_password(config, timestamp).encode()):
        return errors.WRONG_CREDENTIALS
    return None


def expected_password(config: SimulatorConfig, timestamp: str) -> str:
    """base64(shortcode + passkey + timestamp), plain concatenation."""
    raw = f"{config.shortcode}{config.passkey}{timestamp}".encode()
    return base64.b64encode(raw).decode()


def _check_fields(
    fields: dict[str, Any], checks: tuple[tuple[str, Checker], ...]
) -> dict[str, Any] | Refusal:
    """Each field checked in turn; the first bad one names the refusal."""
    values = {}
    for name, check in checks:
        value = check(fields.get(name))
        if value is None:
            return errors.invalid_field(name)
        values[name] = value
    return values


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _digits(value: Any, pattern: re.Pattern[str]) -> str | None:
    """A number sent as a JSON integer or a digit string (Daraja takes both)."""
    if isinstance(value, bool):
        return None
    text = str(value) if isinstance(value, int) else value
    return text if isinstance(text, str) and pattern.fullmatch(text) else None


def _shortcode(value: Any) -> str | None:
    return _digits(value, _SHORTCODE)


def _msisdn(value: Any) -> str | None:
    return _digits(value, _MSISDN)


def _amount(value: Any) -> int | None:
    # Floats are refused even when whole: "10.5" and 10.5 are "Invalid Amount" on Daraja.
    text = _digits(value, _WHOLE_NUMBER)
    amount = int(text) if text is not None else 0
    return amount if 1 <= amount <= MAX_AMOUNT else None


def _password(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{14}", value):
        return None
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")  # a real calendar date and time
    except ValueError:
        return None
    return value


def _transaction_type(value: Any) -> str | None:
    return value if value in TRANSACTION_TYPES else None


def _callback_url(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 1024:
        return None
    if any(char.isspace() for char in value):
        return None  # stray whitespace: "Invalid CallBackURL" (LNMOnlineAndroidSample#40)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0..65535
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return None
    if parts.netloc.lower() != parts.netloc:
        return None  # an upper-case host has been refused; lower case always works
    lowered = value.lower()
    return None if any(word in lowered for word in _BANNED_URL_WORDS) else value


def _prompt_text(value: Any, longest: int) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= longest:
        return None
    return value if _PROMPT_TEXT.fullmatch(value) else None


def _account_reference(value: Any) -> str | None:
    return _prompt_text(value, 12)


def _checkout_request_id(value: Any) -> str | None:
    return value if isinstance(value, str) and 1 <= len(value) <= 64 else None


_COMMON_FIELDS: tuple[tuple[str, Checker], ...] = (
    ("BusinessShortCode", _shortcode),
    ("Password", _password),
    ("Timestamp", _timestamp),
)
_PUSH_FIELDS = (
    *_COMMON_FIELDS,
    ("TransactionType", _transaction_type),
    ("Amount", _amount),
    ("PartyA", _msisdn),
    ("PartyB", _shortcode),
    ("PhoneNumber", _msisdn),
    ("CallBackURL", _callback_url),
    ("AccountReference", _account_reference),
)
_QUERY_FIELDS = (*_COMMON_FIELDS, ("CheckoutRequestID", _checkout_request_id))

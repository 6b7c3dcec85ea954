"""Daraja's C2B (PayBill) messages: register-URL requests, and the validation and
confirmation requests Safaricom POSTs to the registered URLs (DARAJA.md "C2B register").

Only what matching needs is read from a notification. The payer's fields (`MSISDN`,
`FirstName`, `MiddleName`, `LastName`) are personal data: nothing here reads them, and the
v2 MSISDN is a SHA-256 digest anyway, so a payment is matched by `BillRefNumber` and amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

#: Daraja's register-URL path (v1: Safaricom moved integrators back from v2 in 2025).
REGISTER_PATH = "/mpesa/c2b/v1/registerurl"
#: What Daraja does when the validation URL does not answer in time.
RESPONSE_TYPES = ("Completed", "Cancelled")
#: Words Daraja refuses in C2B URLs ("400.003.02 Invalid ValidationURL - URL has the word MPESA").
BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
#: The answer that accepts a validation request, or acknowledges a confirmation.
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
#: The payer's fields: personal data, kept only under these keys in the stored raw body.
PERSONAL_FIELDS = ("MSISDN", "FirstName", "MiddleName", "LastName")
#: Longest value of the identifying fields we keep in their own columns.
_ID_WIDTH = 32
#: Above this no amount is real (M-Pesa caps a payment far lower), and none fits the
#: stored integer column: such an amount is not one, like cents.
_MAX_WHOLE_AMOUNT = 2**31 - 1
_DIGITS = re.compile(r"\d{5,7}")


class MalformedNotification(ValueError):
    """A body that is not a C2B validation or confirmation request."""


@dataclass(frozen=True)
class Notification:
    """A C2B validation or confirmation request, without the payer's personal fields."""

    trans_id: str
    transaction_type: str
    trans_time: str
    #: Whole shillings, or None when TransAmount has cents (never rounded into a match).
    amount: int | None
    amount_text: str
    business_short_code: str
    bill_ref_number: str
    invoice_number: str
    third_party_trans_id: str


def parse_notification(body: bytes, *, needs_trans_id: bool = True) -> Notification:
    """Read a C2B request body; `MalformedNotification` says what is wrong with it."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedNotification("not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedNotification("not a JSON object")
    trans_id = _text(data, "TransID")
    if needs_trans_id and not trans_id:
        raise MalformedNotification("no TransID")
    amount_text = _text(data, "TransAmount")
    if not amount_text:
        raise MalformedNotification("no TransAmount")
    return Notification(
        trans_id=trans_id,
        transaction_type=_text(data, "TransactionType"),
        trans_time=_text(data, "TransTime"),
        amount=whole_amount(amount_text),
        amount_text=amount_text,
        business_short_code=_text(data, "BusinessShortCode"),
        bill_ref_number=_text(data, "BillRefNumber"),
        invoice_number=_text(data, "InvoiceNumber"),
        third_party_trans_id=_text(data, "ThirdPartyTransID"),
    )


def whole_amount(text: str) -> int | None:
    """`"1500.00"` → 1500; None for cents, negatives, zero, absurdly large amounts or anything
    that is not a number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        return None
    if value > _MAX_WHOLE_AMOUNT:
        return None
    return int(value)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    text = str(value).strip()
    if len(text) > _ID_WIDTH * 4:
        raise MalformedNotification(f"{key} is too long")
    return text


def url_refusal(url: str) -> str | None:
    """Why Daraja would refuse `url` as a C2B URL, in its words, or None."""
    lowered = url.lower()
    if not lowered.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        return f"Invalid URL {url!r}: an http(s) URL without spaces"
    for word in BANNED_URL_WORDS:
        if word in lowered:
            return f"Invalid URL - URL has the word {word.upper()}"
    return None


def register_body(
    shortcode: str, response_type: str, confirmation_url: str, validation_url: str
) -> dict[str, str]:
    """The register-URL request body."""
    return {
        "ShortCode": shortcode,
        "ResponseType": response_type,
        "ConfirmationURL": confirmation_url,
        "ValidationURL": validation_url,
    }


def register_refusal(
    shortcode: str, response_type: str, confirmation_url: str, validation_url: str
) -> str | None:
    """What Daraja would refuse in a register-URL request, or None."""
    if not _DIGITS.fullmatch(shortcode):
        return "Invalid ShortCode: 5 to 7 digits"
    if response_type not in RESPONSE_TYPES:
        return "Invalid ResponseType: Completed or Cancelled"
    for name, url in (("ConfirmationURL", confirmation_url), ("ValidationURL", validation_url)):
        if refusal := url_refusal(url):
            return f"{name}: {refusal}"
    return None


@dataclass(frozen=True)
class Registered:
    """Daraja's answer to a register-URL request that it accepted."""

    originator_conversation_id: str
    response_description: str


def parse_registered(data: dict[str, Any]) -> Registered | None:
    """The accepted answer (`ResponseCode` "0"), or None for any other shape."""
    if str(data.get("ResponseCode", "")).strip() != "0":
        return None
    # Daraja spells it "OriginatorCoversationID" (sic); accept the right spelling too.
    conversation = data.get("OriginatorCoversationID") or data.get("OriginatorConversationID")
    return Registered(str(conversation or ""), str(data.get("ResponseDescription") or ""))

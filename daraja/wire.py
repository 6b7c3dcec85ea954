"""Daraja's wire format: request bodies, the timestamp and password, and answer shapes.

Everything that knows a Daraja field name lives here (and in `callbacks.py`), so the rest
of the system speaks of payments, not of `CheckoutRequestID`s. Answers are read by field
name with type coercion, because Daraja has sent the same field as a string and as a
number over the years (`expires_in`, `ResponseCode`, `ResultCode`: DARAJA.md §9.10).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec


def _nairobi() -> tzinfo:
    try:
        return ZoneInfo("Africa/Nairobi")
    except ZoneInfoNotFoundError:
        # A host without a tz database (slim images, Windows without `tzdata`): Kenya keeps
        # UTC+3 all year, so the fixed offset gives the same wall-clock time.
        return timezone(timedelta(hours=3), "EAT")


#: Daraja's clock: timestamps are Nairobi wall-clock time whatever the host's zone.
NAIROBI = _nairobi()
#: `YYYYMMDDHHmmss`, the only timestamp format Daraja accepts.
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
#: Daraja's paths; the same on sandbox and production.
OAUTH_PATH = "/oauth/v1/generate"
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
QUERY_PATH = "/mpesa/stkpushquery/v1/query"
#: What replaces the Password in anything stored or logged.
REDACTED = "[redacted]"
#: How much of a non-JSON page to keep in an error message.
SNIPPET_CHARS = 80
#: A Safaricom MSISDN as Daraja wants it: 2547XXXXXXXX or 2541XXXXXXXX (DARAJA.md §2).
MSISDN = re.compile(r"^254[17]\d{8}$")
#: The national part of the MSISDN that ends today's CheckoutRequestIDs (DARAJA.md §2).
CHECKOUT_PHONE_TAIL = re.compile(r"\d{9}$")


class WireError(ValueError):
    """A JSON answer without the fields (or types) its shape requires."""


@dataclass(frozen=True)
class AccessToken:
    """An OAuth access token and how long Daraja says it lives."""

    value: str = field(repr=False)
    expires_in_s: int


@dataclass(frozen=True)
class PushAccepted:
    """Daraja accepted an STK push: the prompt is on its way; the outcome comes later."""

    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True)
class QueryResult:
    """A final STK query answer. `result_code` 0 is the only success (DARAJA.md §5)."""

    result_code: int
    result_desc: str
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None


@dataclass(frozen=True)
class ErrorBody:
    """Daraja's own error shape: `{"requestId", "errorCode", "errorMessage"}`."""

    code: str
    message: str
    request_id: str | None


@dataclass(frozen=True)
class FaultBody:
    """Apigee's gateway fault: `{"fault": {"faultstring", "detail": {"errorcode"}}}`."""

    errorcode: str | None
    faultstring: str


@dataclass(frozen=True)
class NotJson:
    """An answer that is not a JSON object (HTML pages, text, empty bodies)."""

    description: str


#: Any answer body, read: a JSON object, or one of the recognised non-success shapes.
Answer = dict[str, Any] | ErrorBody | FaultBody | NotJson


def nairobi_timestamp(now: datetime) -> str:
    """`now` as Daraja's `YYYYMMDDHHmmss` in Africa/Nairobi time.

    Raises:
        ValueError: `now` is naive; guessing its zone is the bug this function exists
            to prevent (DARAJA.md §9.2).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("nairobi_timestamp needs an aware datetime")
    return now.astimezone(NAIROBI).strftime(TIMESTAMP_FORMAT)


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """`base64(shortcode + passkey + timestamp)`, plain concatenation (DARAJA.md §2)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def mask_msisdn(phone: str) -> str:
    """`254712345678` → `2547****5678`: enough to recognise, not enough to call."""
    if len(phone) <= 8:
        return "*" * len(phone)
    return f"{phone[:4]}{'*' * (len(phone) - 8)}{phone[-4:]}"


def mask_checkout_id(checkout_request_id: str) -> str:
    """A CheckoutRequestID fit for logs: today's IDs end with the payer's MSISDN.

    `ws_CO_12082024103757041726945514` → `ws_CO_12082024103757041*****5514`: the submission
    time and the last four digits still tell payments apart.
    """
    tail = CHECKOUT_PHONE_TAIL.search(checkout_request_id)
    if tail is None:
        return checkout_request_id
    start = tail.start()
    return f"{checkout_request_id[:start]}*****{checkout_request_id[start + 5 :]}"


def push_body(
    *,
    shortcode: str,
    passkey: str,
    timestamp: str,
    transaction_type: str,
    party_b: str,
    phone: str,
    amount: int,
    callback_url: str,
    account_reference: str,
    description: str,
) -> dict[str, object]:
    """The `processrequest` body. Types follow Daraja's own sample request."""
    return {
        "BusinessShortCode": int(shortcode),
        "Password": stk_password(shortcode, passkey, timestamp),
        "Timestamp": timestamp,
        "TransactionType": transaction_type,
        "Amount": amount,
        "PartyA": phone,
        "PartyB": party_b,
        "PhoneNumber": phone,
        "CallBackURL": callback_url,
        "AccountReference": account_reference,
        "TransactionDesc": description,
    }


def query_body(
    *, shortcode: str, passkey: str, timestamp: str, checkout_request_id: str
) -> dict[str, object]:
    """The `stkpushquery` body: a fresh Timestamp and Password like the push."""
    return {
        "BusinessShortCode": shortcode,
        "Password": stk_password(shortcode, passkey, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": checkout_request_id,
    }


def redacted(body: Mapping[str, object]) -> dict[str, object]:
    """A copy of a request body fit to store or log: the Password is replaced."""
    return {k: (REDACTED if k == "Password" else v) for k, v in body.items()}


def read_answer(content_type: str, content: bytes) -> Answer:
    """Recognise an answer body's shape without trusting the body to be JSON."""
    if "html" in content_type.lower():
        return NotJson(f"{content_type or 'no content type'}: {_snippet(content)}")
    try:
        data = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return NotJson(f"{content_type or 'no content type'}: {_snippet(content)}")
    if not isinstance(data, dict):
        return NotJson(f"JSON {type(data).__name__}, not an object")
    return _error_shape(data) or data


def _error_shape(data: dict[str, Any]) -> ErrorBody | FaultBody | None:
    if "errorCode" in data:
        return ErrorBody(
            code=str(data["errorCode"]),
            message=str(data.get("errorMessage") or ""),
            request_id=_optional_str(data.get("requestId")),
        )
    fault = data.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("detail")
        errorcode = detail.get("errorcode") if isinstance(detail, dict) else None
        return FaultBody(_optional_str(errorcode), str(fault.get("faultstring") or ""))
    return None


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _snippet(content: bytes) -> str:
    text = " ".join(content.decode("utf-8", errors="replace").split())
    return text[:SNIPPET_CHARS] if text else "empty body"


_T = TypeVar("_T")


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: int


class _PushAnswer(msgspec.Struct):
    merchant_request_id: str = msgspec.field(name="MerchantRequestID")
    checkout_request_id: str = msgspec.field(name="CheckoutRequestID")
    response_code: int = msgspec.field(name="ResponseCode")
    customer_message: str = msgspec.field(name="CustomerMessage", default="")


class _QueryAnswer(msgspec.Struct):
    result_code: int = msgspec.field(name="ResultCode")
    result_desc: str = msgspec.field(name="ResultDesc", default="")
    merchant_request_id: str | None = msgspec.field(name="MerchantRequestID", default=None)
    checkout_request_id: str | None = msgspec.field(name="CheckoutRequestID", default=None)


def _convert(data: Mapping[str, Any], shape: type[_T]) -> _T:
    try:
        return msgspec.convert(data, shape, strict=False)
    except msgspec.ValidationError as exc:
        raise WireError(str(exc)) from exc


def parse_token(data: Mapping[str, Any]) -> AccessToken:
    """The OAuth answer; `expires_in` may be `3599` or `"3599"`."""
    answer = _convert(data, _TokenAnswer)
    if not answer.access_token:
        raise WireError("empty access_token")
    return AccessToken(answer.access_token, answer.expires_in)


def parse_push_accepted(data: Mapping[str, Any]) -> PushAccepted:
    """A push acknowledgement; anything but `ResponseCode` 0 is not an acceptance."""
    answer = _convert(data, _PushAnswer)
    if answer.response_code != 0:
        raise WireError(f"ResponseCode {answer.response_code}, not 0")
    if not answer.merchant_request_id or not answer.checkout_request_id:
        raise WireError("empty MerchantRequestID or CheckoutRequestID")
    return PushAccepted(
        merchant_request_id=answer.merchant_request_id,
        checkout_request_id=answer.checkout_request_id,
        customer_message=answer.customer_message,
    )


def parse_query_result(data: Mapping[str, Any]) -> QueryResult:
    """A query answer with a `ResultCode` (string or number); 4999 is still a result here."""
    answer = _convert(data, _QueryAnswer)
    return QueryResult(
        result_code=answer.result_code,
        result_desc=answer.result_desc,
        merchant_request_id=answer.merchant_request_id,
        checkout_request_id=answer.checkout_request_id,
    )

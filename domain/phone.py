"""Kenyan mobile numbers (MSISDNs): normalise what customers type, mask what we show or log.

Daraja takes only the 12-digit form `2547XXXXXXXX` or `2541XXXXXXXX` (DARAJA.md §2, gotcha 12),
while customers type `0712 345 678`, `+254-712-345678` and the like (CONTRACT.md §4).
Phone numbers are personal data: answers show them masked, and logs and Sentry events go
through `mask_msisdns_in` first.
"""

from __future__ import annotations

import re

__all__ = ["InvalidPhoneNumber", "mask_msisdn", "mask_msisdns_in", "normalise_msisdn"]


class InvalidPhoneNumber(ValueError):
    """A phone number we cannot send an STK push to; the message says why (never echoes it)."""


#: Kenya's country calling code.
COUNTRY_CODE = "254"
#: Digits after the country code: 7XXXXXXXX or 1XXXXXXXX for mobiles.
NATIONAL_LENGTH = 9
#: First digit of a Kenyan mobile number after the country code or trunk 0.
MOBILE_FIRST_DIGITS = "71"

# Whitespace (incl. non-breaking) and the dashes word processors and phones paste.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")
# "(+254) 712 345 678" and "(254)712345678": brackets only around a leading country code.
_BRACKETED_COUNTRY = re.compile(r"^\((\+?254)\)")


def normalise_msisdn(raw: str) -> str:
    """The 12-digit MSISDN (`2547XXXXXXXX` / `2541XXXXXXXX`) for any form in CONTRACT.md §4.

    Raises:
        InvalidPhoneNumber: empty, not Kenyan, wrong length, not digits, or not a mobile.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("Phone number must be a string such as 0712345678.")
    compact = _BRACKETED_COUNTRY.sub(r"\1", _SEPARATORS.sub("", raw))
    if not compact:
        raise InvalidPhoneNumber("Phone number is empty.")
    national = _national_digits(compact)
    if national[0] not in MOBILE_FIRST_DIGITS:
        raise InvalidPhoneNumber(
            "Phone number must be a Kenyan mobile number (07…, 01…, 2547… or 2541…); "
            "landlines cannot pay with M-Pesa."
        )
    return COUNTRY_CODE + national


def _national_digits(compact: str) -> str:
    """The 9 digits after the country code or trunk 0 of a number without separators."""
    if compact.startswith("+"):
        if not compact.startswith("+" + COUNTRY_CODE):
            raise InvalidPhoneNumber("Phone number must be a Kenyan (+254) number.")
        compact = compact[1:]
    if not (compact.isascii() and compact.isdigit()):
        raise InvalidPhoneNumber(
            "Phone number may contain only the digits 0-9, spaces, dashes and a leading +."
        )
    if len(compact) == 12 and compact.startswith(COUNTRY_CODE):
        return compact[3:]
    if len(compact) == 10 and compact.startswith("0"):
        return compact[1:]
    if len(compact) == NATIONAL_LENGTH and not compact.startswith("0"):
        return compact
    if len(compact) == 12:
        raise InvalidPhoneNumber("Phone number must be a Kenyan (254) number.")
    raise InvalidPhoneNumber(
        f"Phone number has {len(compact)} digits; expected 10 like 0712345678 "
        "or 12 like 254712345678."
    )


def mask_msisdn(msisdn: str) -> str:
    """`2547****5678` for any form `normalise_msisdn` accepts; `****` for anything else.

    Never raises and never echoes input it cannot read: it runs while answering requests.
    """
    try:
        number = normalise_msisdn(msisdn)
    except InvalidPhoneNumber:
        return "****"
    return _mask_digits(number)


def _mask_digits(digits: str) -> str:
    # Hide the 4 digits after the leading 7/1: the same ones `2547****5678` hides.
    return digits[:-8] + "****" + digits[-4:]


# --- Masking free text ---------------------------------------------------------------------

_SEP = r"[ \-]?"
_SUBSCRIBER = rf"[71](?:{_SEP}[0-9]){{8}}"  # 7/1 and 8 more digits, maybe grouped
_FREE_TEXT_NUMBER = re.compile(
    # International forms, also glued to other digits ("00254…", inside ids): "2547" or
    # "2541" followed by 8 digits is rare enough in other numbers to mask wherever it is.
    rf"(?:\(?(?:\+|00)?254\)?{_SEP}(?:\(0\){_SEP}|0)?{_SUBSCRIBER})"
    # National forms only standing alone: "07…"/"01…" runs occur inside every compact
    # timestamp (20260712…), which must stay readable; so do fractions (0.712345678 s).
    rf"|(?<![0-9])(?<![0-9]\.)(?:0{_SEP})?{_SUBSCRIBER}(?![0-9])"
)
# Current CheckoutRequestIDs end with the payer's 9 national digits:
# ws_CO_ + DDMMYYYYHHMMSS + milliseconds + 712345678 (DARAJA.md §2). Older, shorter ones
# (ws_CO_08052018140656765) have no such tail and are left whole.
_CHECKOUT_ID_TAIL = re.compile(r"(ws_CO_[0-9]{14,})([71])[0-9]{4}([0-9]{4})(?![0-9A-Za-z_])")


#: A UUID, written with its dashes (payment and order ids) or as 32 bare hex digits (webhook
#: event ids, `msg_` + uuid4().hex), standing alone. The bare form must have a UUID's version
#: and variant digits and at least one letter, so a phone number padded with hex letters,
#: or glued into a run of 32 digits, is still masked.
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])(?=[0-9]*[a-fA-F])"
    r"[0-9a-fA-F]{12}[1-8][0-9a-fA-F]{3}[89abAB][0-9a-fA-F]{15}(?![0-9A-Za-z])"
)
#: Nine digits, perhaps grouped by spaces or dashes: every number masked below holds such a
#: run (a subscriber's 7/1 and 8 digits; a CheckoutRequestID's date), so text without one
#: is returned as it is, without the costlier patterns.
_NINE_DIGITS = re.compile(r"[0-9](?:[ \-]?[0-9]){8}")


def mask_msisdns_in(text: str) -> str:
    """`text` with every Kenyan mobile number in it masked, for logs and error reports.

    Masks 2547…/2541…, +254…, 00254…, 07…/01… and 7…/1… forms, grouped by spaces or
    dashes or not, in JSON (`"Value": 254712345678` becomes `"Value": 2547****5678`, so the
    result is for people, not parsers) and inside CheckoutRequestIDs, whose date part
    stays readable. A 07…/01… run glued to other digits is taken as part of a longer
    number (a timestamp, an id) and left alone; a lone 9-digit number starting 7 or 1
    (an order number, say) is masked: over-masking a log costs less than leaking a number.
    """
    if not _NINE_DIGITS.search(text):
        return text
    text = _CHECKOUT_ID_TAIL.sub(r"\1\2****\3", text)
    # Payment ids and webhook event ids are UUIDs; some hold a 7/1 digit run that looks like
    # a phone number. Ids must stay searchable in logs and usable in the commands an alert
    # gives, so UUIDs are skipped.
    parts = _UUID.split(text)
    ids = _UUID.findall(text)
    masked = [_FREE_TEXT_NUMBER.sub(_mask_match, part) for part in parts]
    return "".join(m + i for m, i in zip(masked, [*ids, ""], strict=True))


def _mask_match(match: re.Match[str]) -> str:
    found = match.group()
    digits = re.sub(r"[^0-9]", "", found)
    return ("+" if "+" in found else "") + _mask_digits(digits)

"""Identifiers Daraja hands out, and the Nairobi clock they embed.

Formats copy what Daraja sends today (DARAJA.md §2) so clients that wrongly parse or
length-limit them break here first. Randomness comes from the caller's `random.Random`,
so a seeded simulator repeats itself (tokens excepted: they are real secrets).
"""

from __future__ import annotations

import random
import secrets
import string
from datetime import datetime, timedelta, timezone

#: Kenya keeps East Africa Time all year (no daylight saving), so a fixed offset is exact
#: and needs no tz database on the host.
NAIROBI = timezone(timedelta(hours=3), "EAT")

_ALNUM = string.ascii_uppercase + string.digits
_TOKEN_CHARS = string.ascii_letters + string.digits


def nairobi_now() -> datetime:
    """The current time in Nairobi."""
    return datetime.now(NAIROBI)


def daraja_timestamp(moment: datetime) -> int:
    """`YYYYMMDDHHmmss` as a number, as callbacks carry TransactionDate."""
    return int(moment.strftime("%Y%m%d%H%M%S"))


def request_id(rng: random.Random) -> str:
    """An error answer's requestId, e.g. `1c5b-4ba8-815c-ac45c57a3db01495926`."""
    return _dashed_hex(rng) + _digits(rng, 7)


def merchant_request_id(rng: random.Random) -> str:
    """A MerchantRequestID, e.g. `f1e2-4b95-a71d-b30d3cdbb7a7942864`."""
    return _dashed_hex(rng) + _digits(rng, 6)


def checkout_request_id(moment: datetime, phone: str) -> str:
    """`ws_CO_` + Nairobi DDMMYYYYHHMMSS + milliseconds + the MSISDN without 254."""
    millis = f"{moment.microsecond // 1000:03d}"
    return f"ws_CO_{moment.strftime('%d%m%Y%H%M%S')}{millis}{phone[3:]}"


def receipt_number(rng: random.Random) -> str:
    """A 10-character M-Pesa receipt: a letter, then letters and digits (`UJ22T8IYOU`)."""
    return rng.choice(string.ascii_uppercase) + "".join(rng.choices(_ALNUM, k=9))


def access_token() -> str:
    """A 28-character opaque bearer token; never seeded, so never guessable."""
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(28))


def _dashed_hex(rng: random.Random) -> str:
    groups = (rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(48))
    return "{:04x}-{:04x}-{:04x}-{:012x}".format(*groups)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choices(string.digits, k=count))

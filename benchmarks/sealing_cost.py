"""What sealing personal data costs, in CPU time, per initiate and per push.

An initiate seals the phone number, name and e-mail (AES-GCM), computes the phone's blind
index (for the row and for the rate limit), the keyed idempotency fingerprint and walks the
`created` event's data. A push then walks the Daraja request and answer and seals the
CheckoutRequestID with its blind index and event. Pure CPU: no database, no network.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from benchmarks.report import Figure
from plumbing import sealing
from store import raw

#: Initiates per round (and in a `--quick` run); the best of ROUNDS is reported.
COUNT, QUICK_COUNT = 5_000, 300
ROUNDS = 3
#: The budget for an initiate's sealing (issue 10), in CPU milliseconds.
BUDGET_MS = 0.3

PHONE, NAME, EMAIL = "254712345678", "Wanjiru Kamau", "wanjiru@example.com"
CHECKOUT = "ws_CO_26032026133641276712345678"
REQUEST = {
    "BusinessShortCode": 174379, "Password": "<redacted>", "Timestamp": "20261130080000",
    "TransactionType": "CustomerPayBillOnline", "Amount": 1500, "PartyA": PHONE,
    "PartyB": 174379, "PhoneNumber": PHONE, "CallBackURL": "https://pay.example/cb/tok",
    "AccountReference": "KhalexChess", "TransactionDesc": "Khalex Chess",
}  # fmt: skip
ANSWER = json.dumps({
    "MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": CHECKOUT,
    "ResponseCode": "0", "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
})  # fmt: skip


def initiate(keys: sealing.Keyring) -> None:
    """The sealing one initiate does (API process)."""
    for value in (PHONE, NAME, EMAIL):
        keys.seal(value)
    keys.blind_index("phone", PHONE)  # the row's index
    keys.blind_index("phone", PHONE)  # the rate limit's key
    keys.keyed_digest(json.dumps({"phone": PHONE, "name": NAME, "email": EMAIL}).encode())
    raw.seal_tree({"analytics": "payment_initiated", "amount": 1500, "productId": "board-01"})


def push() -> None:
    """The sealing one push does (worker): exchange request and answer, CheckoutRequestID."""
    keys = sealing.current()
    raw.seal_tree(REQUEST)
    raw.seal_personal(ANSWER)
    keys.seal(CHECKOUT)
    keys.blind_index("checkout", CHECKOUT)
    raw.seal_tree({"checkoutRequestId": CHECKOUT})


def _cpu_ms_each(work: Callable[[], None], count: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(count):
            work()
        best = min(best, (time.process_time() - started) * 1000 / count)
    return best


def run(*, quick: bool = False) -> list[Figure]:
    keys = sealing.Keyring.parse(sealing.new_key(), sealing.new_key())
    before = sealing.installed()  # restored below; the walker uses the process's keyring
    sealing.install(keys)
    try:
        count = QUICK_COUNT if quick else COUNT
        per_initiate = _cpu_ms_each(lambda: initiate(keys), count)
        per_push = _cpu_ms_each(push, count)
    finally:
        sealing.install(before)
    verdict = "within" if per_initiate <= BUDGET_MS else "OVER"
    return [
        Figure("sealing personal data", "per initiate", per_initiate, "CPU ms",
               note=f"3 fields, 2 blind indexes, fingerprint; {verdict} {BUDGET_MS} ms budget"),
        Figure("sealing personal data", "per push", per_push, "CPU ms",
               note="Daraja request + answer, CheckoutRequestID, event"),
    ]  # fmt: skip

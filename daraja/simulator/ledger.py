"""The simulator's memory: every accepted push, the prompts still open, receipts and tokens.

The ledger is the ground truth tests compare the payment service against: what each
customer was asked, what they paid and how many callbacks went out. It lives in one event
loop and is only touched between awaits, so it needs no locks.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daraja.simulator import ids


@dataclass
class Push:
    """One accepted STK push and, once its prompt resolves, its outcome."""

    checkout_request_id: str
    merchant_request_id: str
    #: PartyA, the paying number: the scenario table keys on it.
    phone_number: str
    #: PhoneNumber, the handset showing the prompt: the subscriber lock keys on it.
    prompt_phone: str
    amount: int
    account_reference: str
    callback_url: str
    opened_at: datetime
    #: This push's own random draws (receipt, drops, delays), split off the simulator's
    #: seeded generator when it was accepted, so replays do not depend on timing.
    rng: random.Random = field(default_factory=random.Random, repr=False)
    #: False when TransactionType/PartyB do not match the merchant (ends in 2028).
    product_ok: bool = True
    #: Left open for resolution by hand (the virtual phone).
    manual: bool = False
    result_code: int | None = None
    receipt: str | None = None
    transaction_date: int | None = None
    callbacks_sent: int = 0
    #: HTTP status of each callback POST; None when the receiver could not be reached.
    callback_statuses: list[int | None] = field(default_factory=list)
    #: Queries answered while open, to rotate through Daraja's "not yet" answers.
    open_queries: int = 0

    @property
    def is_open(self) -> bool:
        """True until the prompt resolves."""
        return self.result_code is None

    def to_json(self) -> dict[str, Any]:
        """The ledger entry of CONTRACT.md §5 (plus `callbackStatuses`)."""
        return {
            "checkoutRequestId": self.checkout_request_id,
            "merchantRequestId": self.merchant_request_id,
            "phoneNumber": self.phone_number,
            "amount": self.amount,
            "accountReference": self.account_reference,
            "callbackUrl": self.callback_url,
            "resultCode": self.result_code,
            "receipt": self.receipt,
            "callbacksSent": self.callbacks_sent,
            "callbackStatuses": list(self.callback_statuses),
        }

    def prompt_json(self) -> dict[str, Any]:
        """What the virtual phone shows for an open prompt."""
        return {
            "checkoutRequestId": self.checkout_request_id,
            "merchantRequestId": self.merchant_request_id,
            "phoneNumber": self.prompt_phone,
            "amount": self.amount,
            "accountReference": self.account_reference,
            "openedAt": self.opened_at.isoformat(),
            "manual": self.manual,
        }


class Ledger:
    """Pushes in arrival order, the open prompt per handset, and receipts issued."""

    def __init__(self) -> None:
        self._pushes: dict[str, Push] = {}
        self._open_by_phone: dict[str, Push] = {}
        self._receipts: set[str] = set()

    def add(self, push: Push) -> None:
        """Record an accepted push; its handset is locked until the prompt resolves."""
        self._pushes[push.checkout_request_id] = push
        self._open_by_phone[push.prompt_phone] = push

    def get(self, checkout_request_id: str) -> Push | None:
        """The push with this CheckoutRequestID, if any."""
        return self._pushes.get(checkout_request_id)

    def knows(self, checkout_request_id: str) -> bool:
        """True when this CheckoutRequestID was already handed out."""
        return checkout_request_id in self._pushes

    def locked(self, phone: str) -> bool:
        """True while `phone` has a prompt open."""
        return phone in self._open_by_phone

    def close(self, push: Push, result_code: int, when: datetime) -> None:
        """Resolve `push` with `result_code`, issuing a receipt when it is paid."""
        push.result_code = result_code
        if result_code == 0:
            push.receipt = self._new_receipt(push.rng)
            push.transaction_date = ids.daraja_timestamp(when)
        if self._open_by_phone.get(push.prompt_phone) is push:
            del self._open_by_phone[push.prompt_phone]

    def pushes(self) -> list[Push]:
        """Every accepted push, oldest first."""
        return list(self._pushes.values())

    def open_prompts(self) -> list[Push]:
        """Pushes whose prompt is still open, oldest first."""
        return [push for push in self._pushes.values() if push.is_open]

    def _new_receipt(self, rng: random.Random) -> str:
        # Receipts are the payment service's uniqueness key, so never repeat one.
        while (receipt := ids.receipt_number(rng)) in self._receipts:
            pass
        self._receipts.add(receipt)
        return receipt


class Tokens:
    """Access tokens and when each expires (monotonic clock)."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def issue(self, lifetime_s: int, *, revoke_old: bool) -> str:
        """A new token valid for `lifetime_s`; optionally the earlier ones stop working."""
        now = time.monotonic()
        if revoke_old:
            self._expiry.clear()
        self._forget_expired(now)
        token = ids.access_token()
        self._expiry[token] = now + lifetime_s
        return token

    def valid(self, token: str) -> bool:
        """True while `token` was issued here and has not expired."""
        expiry = self._expiry.get(token)
        return expiry is not None and time.monotonic() < expiry

    def _forget_expired(self, now: float) -> None:
        for token in [t for t, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[token]

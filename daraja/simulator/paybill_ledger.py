"""The simulator's PayBill (C2B) ground truth: registered URLs and every payment by hand."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec

#: Transaction states: declined (validation said no, or no answer with "Cancelled"), paid.
DECLINED, PAID = "declined", "paid"
#: The customer paying, unless the request names one (Daraja's sandbox test number).
DEFAULT_PAYER = "254708374149"


@dataclass(frozen=True)
class Registration:
    """The URLs a shortcode registered (once, as in production)."""

    short_code: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: str  # "v1" or "v2": how the payer's MSISDN is written

    def to_json(self) -> dict[str, Any]:
        return {
            "shortCode": self.short_code, "responseType": self.response_type,
            "confirmationUrl": self.confirmation_url, "validationUrl": self.validation_url,
            "version": self.version,
        }  # fmt: skip


@dataclass
class Transaction:
    """One PayBill payment a customer made (or tried to)."""

    trans_id: str
    short_code: str
    bill_ref_number: str
    amount: int
    phone_number: str
    first_name: str
    paid_at: datetime
    status: str = PAID
    validation_result: str | None = None  # what the validation URL answered, if asked
    validation_status: int | None = None
    confirmations_sent: int = 0
    confirmation_statuses: list[int | None] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The ledger entry (the phone number is the test's own, as in the STK ledger)."""
        return {
            "transId": self.trans_id if self.status == PAID else None,
            "businessNumber": self.short_code, "accountReference": self.bill_ref_number,
            "amount": self.amount, "phoneNumber": self.phone_number, "status": self.status,
            "validationResult": self.validation_result,
            "validationStatus": self.validation_status,
            "confirmationsSent": self.confirmations_sent,
            "confirmationStatuses": list(self.confirmation_statuses),
        }  # fmt: skip


class Paybill:
    """The registered URLs and every PayBill payment, oldest first."""

    def __init__(self) -> None:
        self.registration: Registration | None = None
        self.transactions: list[Transaction] = []
        self.balance = 50_000


class PaybillPayment(msgspec.Struct, frozen=True, kw_only=True, rename="camel",
                     forbid_unknown_fields=True):  # fmt: skip
    """What the customer types on the phone: business number, account, amount."""

    business_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5,7}$")]
    account_reference: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=250_000)]
    phone_number: Annotated[str, msgspec.Meta(pattern=r"^254[17][0-9]{8}$")] = DEFAULT_PAYER
    first_name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] = "WANJIRU"

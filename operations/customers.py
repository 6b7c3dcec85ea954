"""A customer's rights (Kenya Data Protection Act 2019): see everything held, have it erased.

`khalex-pay customers export PHONE` and `khalex-pay customers erase PHONE` call these; the
rows are found by the phone number's blind index (store/customers.py). PayBill payments are
found only when Daraja sent the payer's number, not C2B v2's digest of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from domain.phone import normalise_msisdn
from store import customers
from store.customers import CustomerBusy

__all__ = ["CustomerBusy", "Erased", "erase", "export"]


@dataclass(frozen=True)
class Erased:
    payments: int
    orders: int
    raw_records: int
    paybill_payments: int


def export(engine: Engine, phone: str) -> dict[str, Any]:
    """Everything held about the customer with this number (any accepted form), unmasked."""
    msisdn = normalise_msisdn(phone)
    with engine.connect() as conn:
        held = customers.find(conn, msisdn)
        return {"phoneNumber": msisdn, **customers.export(conn, held)}


def erase(engine: Engine, phone: str) -> Erased:
    """Erase the customer's personal data in one transaction; `CustomerBusy` while unfinished."""
    msisdn = normalise_msisdn(phone)
    with engine.begin() as conn:
        held = customers.find(conn, msisdn)
        customers.erase(conn, held)
    raw_records = len(held.callback_ids) + len(held.exchange_ids) + len(held.refused_ids)
    return Erased(len(held.payment_ids), len(held.order_ids), raw_records, len(held.paybill_ids))

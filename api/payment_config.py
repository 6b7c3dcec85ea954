"""`GET /api/payments/config`: what the shop's page may offer, and the M-Pesa rollout.

`MPESA_ROLLOUT_PERCENT` turns M-Pesa on for a stable share of checkouts: each order falls in
a bucket 0..99 (a hash of its id, the same for every token of that order), and buckets below
the percentage get M-Pesa. The shop's server and operators are never held back. Outside the
rollout the page shows the call-to-order contact, and an initiate is refused as when
payments are down (503 `payments_unavailable` with the contact).
"""

from __future__ import annotations

import hashlib

from litestar import get

from api.callers import Caller, Checkout
from api.errors import ApiError
from api.openapi_docs import PAYMENTS_CONFIG
from api.types import Deps
from domain import paybill
from plumbing.settings import Settings


def bucket(key: str) -> int:
    """A stable bucket 0..99 for `key` (an order id or a token subject)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100


def mpesa_enabled(settings: Settings, caller: Caller) -> bool:
    """Whether `caller` is inside the M-Pesa rollout (only checkout tokens are bucketed)."""
    if not isinstance(caller, Checkout):
        return True
    return bucket(caller.order_id or caller.subject) < settings.mpesa_rollout_percent


def require_rollout(settings: Settings, caller: Caller) -> None:
    """Refuse an initiate from a checkout outside the rollout, as a 503 with the contact."""
    if not mpesa_enabled(settings, caller):
        raise ApiError(
            503,
            "payments_unavailable",
            "M-Pesa payments are not available for this order. Please order by phone.",
            contact=settings.shop_contact,
        )


def account_reference(settings: Settings, caller: Caller) -> str:
    """The PayBill account reference the customer types: the order's, for a checkout.

    An order's is "KP" and the first 10 hex digits of its id, upper case (12 characters,
    Daraja's limit; `domain.paybill`), so a C2B confirmation can be matched to the order by it.
    """
    if isinstance(caller, Checkout) and caller.order_id:
        return paybill.account_reference(caller.order_id)
    return settings.mpesa_account_reference


@get("/api/payments/config", sync_to_thread=False, tags=["payments"], **PAYMENTS_CONFIG)
def payment_config(container: Deps, caller: Caller) -> dict[str, object]:
    """What the page may offer: M-Pesa (or not, outside the rollout), PayBill, the contact.

    `{"mpesaEnabled", "paybill": {"businessNumber", "accountReference"}, "contact"}`.
    """
    settings = container.settings
    return {
        "mpesaEnabled": mpesa_enabled(settings, caller),
        "paybill": {
            "businessNumber": settings.mpesa_business_shortcode,
            "accountReference": account_reference(settings, caller),
        },
        "contact": settings.shop_contact,
    }

"""Checkout tokens (CONTRACT.md §8): what the shop's page shows to pay one order.

An HS256 JWT signed with JWT_SECRET, `aud: "khalex-pay"`, an `exp` at most an hour ahead and
an `orderId` claim. Minted by `POST /api/orders` or by the shop's own server with the same
secret. Operator tokens carry no audience, so neither kind passes for the other.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

#: The audience every checkout token names (operator tokens name none).
AUDIENCE = "khalex-pay"
#: The only signing algorithm accepted (never "none", never one the token names).
ALGORITHM = "HS256"
#: Longest a checkout token may live: a customer pays within minutes.
MAX_TTL_S = 3600
#: Clocks of the shop's server and ours may differ by this much.
CLOCK_SKEW_S = 60
#: Longest order id a token may name (the payments' order_id column holds 64).
MAX_ORDER_ID = 64

# Production refuses a JWT_SECRET under 32 characters (settings); only the dev default is
# shorter, and PyJWT would warn about it on every request.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


class InvalidCheckoutToken(Exception):
    """The token is not a valid checkout token (the message says why, for logs)."""


@dataclass(frozen=True)
class CheckoutClaims:
    order_id: str
    subject: str
    expires_at: datetime


def mint(
    secret: str,
    order_id: str,
    *,
    ttl_s: int = MAX_TTL_S,
    subject: str | None = None,
    now: datetime | None = None,
) -> str:
    """A checkout token for `order_id`, valid `ttl_s` seconds (at most an hour)."""
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"a checkout token lives 1 to {MAX_TTL_S} seconds, not {ttl_s}")
    if not order_id or len(order_id) > MAX_ORDER_ID:
        raise ValueError(f"an order id is 1 to {MAX_ORDER_ID} characters")
    issued = now or datetime.now(UTC)
    claims = {
        "aud": AUDIENCE,
        "sub": subject or f"order:{order_id}",
        "orderId": order_id,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, *, now: datetime | None = None) -> CheckoutClaims:
    """The claims of a valid checkout token.

    Raises:
        InvalidCheckoutToken: bad signature or algorithm, wrong or missing audience, expired,
        no `exp`, an `exp` more than an hour ahead, or no usable `orderId`.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "aud"]},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidCheckoutToken(str(exc)) from exc
    at = now or datetime.now(UTC)
    exp = claims["exp"]
    if not isinstance(exp, int | float) or exp - at.timestamp() > MAX_TTL_S + CLOCK_SKEW_S:
        raise InvalidCheckoutToken("exp is more than an hour ahead")
    order_id = claims.get("orderId")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= MAX_ORDER_ID:
        raise InvalidCheckoutToken("orderId claim missing or unusable")
    subject = claims.get("sub")
    return CheckoutClaims(
        order_id=order_id,
        subject=subject if isinstance(subject, str) and subject else f"order:{order_id}",
        expires_at=datetime.fromtimestamp(exp, UTC),
    )

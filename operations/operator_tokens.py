"""Operators' tokens (CONTRACT.md §6): HS256 JWTs signed with JWT_SECRET whose roles hold "ops".

`khalex-pay ops-token` issues them and `api.auth` checks them; they carry no audience, so a
checkout token (audience "khalex-pay") never passes for one, nor the reverse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

#: The role an operator's token must carry.
OPS_ROLE = "ops"
#: The only signing algorithm accepted (never "none", never one the token names).
ALGORITHM = "HS256"
#: Lifetime of a token from `khalex-pay ops-token` unless told otherwise.
DEFAULT_TOKEN_HOURS = 8


def issue_token(
    secret: str,
    subject: str = "operator",
    hours: float = DEFAULT_TOKEN_HOURS,
    *,
    roles: tuple[str, ...] = (OPS_ROLE,),
    now: datetime | None = None,
) -> str:
    """A signed operator token valid for `hours`."""
    issued = now or datetime.now(UTC)
    claims = {"sub": subject, "roles": list(roles), "iat": issued}
    claims["exp"] = issued + timedelta(hours=hours)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)

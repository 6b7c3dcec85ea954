"""Operator auth (CONTRACT.md §6): a Bearer JWT, HS256 with JWT_SECRET, whose roles hold "ops".

No token, a bad one, an expired one or one living longer than OPS_TOKEN_MAX_HOURS is 401
`unauthenticated` with `WWW-Authenticate: Bearer`; a good token without the role is 403.
`khalex-pay ops-token` issues tokens. They carry no audience, so a checkout token
(api/checkout_tokens.py, audience "khalex-pay") never passes for one, nor the reverse.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import jwt
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from api.errors import ApiError
from operations.operator_tokens import ALGORITHM, OPS_ROLE

#: Longest lifetime (exp - iat) of an operator token unless OPS_TOKEN_MAX_HOURS says otherwise.
DEFAULT_MAX_HOURS = 24.0
#: What a 401 asks for (RFC 6750).
_CHALLENGE = 'Bearer realm="khalex-pay ops"'

# Production refuses a JWT_SECRET under 32 characters (settings); only the dev default is
# shorter, and PyJWT would warn about it on every request.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


@dataclass(frozen=True)
class Operator:
    """Who a valid token names."""

    subject: str
    roles: frozenset[str]


def authenticate(
    authorization: str | None, secret: str, *, max_hours: float = DEFAULT_MAX_HOURS
) -> Operator:
    """The operator an `Authorization` header names.

    Raises:
        ApiError: 401 `unauthenticated` without a valid Bearer token (one whose exp - iat is
        over `max_hours` is not valid); 403 `forbidden` when the token lacks the ops role.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("An operator token is required: Authorization: Bearer <token>.")
    try:
        claims = jwt.decode(
            token.strip(), secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("The operator token has expired.", invalid=True) from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("The operator token is not valid.", invalid=True) from exc
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(lifetime, int | float) or lifetime > max_hours * 3600:
        raise _unauthorized(
            f"The operator token lives longer than {max_hours:g} hours.", invalid=True
        )
    operator = Operator(str(claims.get("sub", "")), _roles(claims.get("roles")))
    if OPS_ROLE not in operator.roles:
        raise ApiError(
            403, "forbidden", "This token does not carry the ops role.",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
        )  # fmt: skip
    return operator


def _roles(claim: object) -> frozenset[str]:
    if isinstance(claim, str):
        return frozenset(claim.split())  # a space-separated list, as OAuth scopes are written
    if isinstance(claim, list | tuple):
        return frozenset(role for role in claim if isinstance(role, str))
    return frozenset()


def _unauthorized(message: str, *, invalid: bool = False) -> ApiError:
    challenge = f'{_CHALLENGE}, error="invalid_token"' if invalid else _CHALLENGE
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": challenge})


def require_ops(secret: str, max_hours: float = DEFAULT_MAX_HOURS) -> Guard:
    """A Litestar guard letting through only requests with a valid ops token."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        authenticate(connection.headers.get("authorization"), secret, max_hours=max_hours)

    return guard

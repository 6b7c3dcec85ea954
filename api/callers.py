"""Who is calling (CONTRACT.md §8): the shop's server, the shop's page for one order, or an
operator; and what each may see.

Every handler that declares `caller: Caller` gets the resolved caller (the app-wide
dependency "caller"). `Authorization: Bearer <x>` is, in this order: a shop API key (looked
up by its hash in `api_keys`), a checkout token (api/checkout_tokens.py), an operator token
(api/auth.py). Anything else is 401 `unauthenticated`. A caller reaching beyond its scope
is answered 404, as if the thing did not exist, never 403: a 403 would confirm it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from api import auth, checkout_tokens
from api.errors import ApiError, payments_unavailable
from api.types import AnyRequest, Deps
from payments.container import Container
from store import api_keys


@dataclass(frozen=True)
class ShopServer:
    """The shop's own server, holding an API key (`key_id` None when API_AUTH=off)."""

    key_id: str | None


@dataclass(frozen=True)
class Checkout:
    """The shop's page paying one order, holding a checkout token."""

    order_id: str
    subject: str


@dataclass(frozen=True)
class Operator:
    """A person holding an operator token (roles has "ops")."""

    subject: str


#: Any of the three. A handler parameter `caller: Caller` gets the resolved caller: the
#: markers name the dependency and spare Litestar validating it (msgspec cannot validate a
#: union of dataclasses); for type checkers it is just the union.
Caller = Annotated[
    ShopServer | Checkout | Operator, Dependency(kind="named"), SkipValidationMarker()
]
#: The same, for readers who look for the `...Dep` spelling of api/types.py.
CallerDep = Caller


#: What a 401 asks for (RFC 6750).
CHALLENGE = 'Bearer realm="khalex-pay"'


def may_read_order(caller: Caller, order_id: str) -> bool:
    """The shop server and operators read every order; a checkout token only its own."""
    if isinstance(caller, Checkout):
        return caller.order_id == order_id
    return True


def may_read_payment(caller: Caller, payment_order_id: str | None) -> bool:
    """A checkout token reads only payments of its order (never one without an order)."""
    if isinstance(caller, Checkout):
        return payment_order_id is not None and payment_order_id == caller.order_id
    return True


def sees_checkout_request_id(caller: Caller) -> bool:
    """Daraja's ids end with the customer's MSISDN: only the shop server and operators."""
    return not isinstance(caller, Checkout)


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def resolve(container: Container, authorization: str | None) -> Caller:
    """The caller an `Authorization` header names.

    Raises:
        ApiError: 401 `unauthenticated` when the header names no valid caller (with
        API_AUTH=off, such a request calls as the shop server instead).
    """
    settings = container.settings
    token = bearer(authorization)
    caller = _identify(container, token) if token is not None else None
    if caller is not None:
        return caller
    if not settings.api_auth:
        return ShopServer(key_id=None)
    if token is None:
        raise unauthenticated("Credentials are required: Authorization: Bearer <API key or token>.")
    raise unauthenticated("The credentials are not valid.", invalid=True)


def _identify(container: Container, token: str) -> Caller | None:
    settings = container.settings
    if token.startswith(api_keys.KEY_PREFIX):
        try:
            with container.reads.begin() as conn:  # a read, and at most one lone UPDATE
                key = api_keys.authenticate(conn, token)
        except sa.exc.OperationalError as exc:
            raise payments_unavailable(container.settings.shop_contact, exc) from exc
        return ShopServer(key_id=key.id) if key else None
    try:
        claims = checkout_tokens.verify(settings.jwt_secret, token)
    except checkout_tokens.InvalidCheckoutToken:
        pass
    else:
        return Checkout(order_id=claims.order_id, subject=claims.subject)
    try:
        operator = auth.authenticate(
            f"Bearer {token}", settings.jwt_secret, max_hours=settings.ops_token_max_hours
        )
    except ApiError:
        return None
    return Operator(subject=operator.subject)


def unauthenticated(message: str, *, invalid: bool = False) -> ApiError:
    challenge = f'{CHALLENGE}, error="invalid_token"' if invalid else CHALLENGE
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": challenge})


def provide_caller(request: AnyRequest, container: Deps) -> Caller:
    """The app-wide dependency "caller"."""
    return resolve(container, request.headers.get("authorization"))

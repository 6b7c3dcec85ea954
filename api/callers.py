"""Who is calling (CONTRACT.md §8): the shop's server, the shop's page for one order, or an
operator; and what each may see.

Every handler that declares `caller: Caller` gets the resolved caller (the app-wide
dependency "caller"). `Authorization: Bearer <x>` is, in this order: a shop API key (looked
up by its hash in `api_keys`), a checkout token (api/checkout_tokens.py), an operator token
(api/auth.py). Anything else is 401 `unauthenticated`. A caller reaching beyond its scope
is answered 404, as if the thing did not exist, never 403: a 403 would confirm it exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
import sqlalchemy as sa
from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from api import auth, checkout_tokens
from api.errors import ApiError, payments_unavailable
from api.types import AnyRequest
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

#: How long an API process trusts an API key it has verified before asking the database
#: again: a revoked key is refused by every process within this time (README, "Callers").
KEY_TRUST_S = 5.0


class VerifiedKeys:
    """The API keys this process verified lately, by their hash: a busy shop server's
    requests skip the database. Only keys found live are kept, so strangers' guesses cannot
    fill it; an entry older than `trust_s` is verified again (and dropped if revoked)."""

    def __init__(
        self, trust_s: float = KEY_TRUST_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._trust_s = trust_s
        self._clock = clock
        self._known: dict[str, tuple[float, str]] = {}  # hash -> (verified at, key id)
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> str | None:
        """The id of the key hashed `key_hash` if it was found live lately, else None."""
        entry = self._known.get(key_hash)
        if entry is None or self._clock() - entry[0] >= self._trust_s:
            return None
        return entry[1]

    def remember(self, key_hash: str, key_id: str | None) -> None:
        """Note what the database said of the key hashed `key_hash` (None: not live)."""
        with self._lock:
            if key_id is None:
                self._known.pop(key_hash, None)
            else:
                self._known[key_hash] = (self._clock(), key_id)


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


def resolve(
    container: Container, authorization: str | None, verified: VerifiedKeys | None = None
) -> Caller:
    """The caller an `Authorization` header names (an API key found in `verified` is not
    looked up again).

    Raises:
        ApiError: 401 `unauthenticated` when the header names no valid caller (with
        API_AUTH=off, such a request calls as the shop server instead).
    """
    settings = container.settings
    token = bearer(authorization)
    caller = _identify(container, token, verified) if token is not None else None
    if caller is not None:
        return caller
    if not settings.api_auth:
        return ShopServer(key_id=None)
    if token is None:
        raise unauthenticated("Credentials are required: Authorization: Bearer <API key or token>.")
    raise unauthenticated("The credentials are not valid.", invalid=True)


def _identify(container: Container, token: str, verified: VerifiedKeys | None) -> Caller | None:
    settings = container.settings
    if token.startswith(api_keys.KEY_PREFIX):
        key_hash = api_keys.hash_key(token)
        if verified is not None and (key_id := verified.get(key_hash)) is not None:
            return ShopServer(key_id=key_id)
        try:
            with container.reads.begin() as conn:  # a read, and at most one lone UPDATE
                key = api_keys.authenticate(conn, token)
        except sa.exc.OperationalError as exc:
            raise payments_unavailable(container.settings.shop_contact, exc) from exc
        if verified is not None:
            verified.remember(key_hash, key.id if key else None)
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


def caller_provider(
    container: Container, verified: VerifiedKeys | None = None
) -> Callable[[AnyRequest], Awaitable[Caller]]:
    """The app-wide dependency "caller", for the app serving `container`.

    Only an API key the process has not verified lately costs a thread (the database look-up);
    a known key, a token (a signature check) or no credentials are resolved on the spot.
    """
    known = verified if verified is not None else VerifiedKeys()

    async def provide_caller(request: AnyRequest) -> Caller:
        authorization = request.headers.get("authorization")
        token = bearer(authorization)
        if (
            token is not None
            and token.startswith(api_keys.KEY_PREFIX)
            and known.get(api_keys.hash_key(token)) is None
        ):
            return await anyio.to_thread.run_sync(resolve, container, authorization, known)
        return resolve(container, authorization, known)

    return provide_caller

"""Checkout tokens: HS256 only, audience "khalex-pay", an exp at most an hour ahead, an orderId."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api import checkout_tokens
from api.auth import authenticate
from api.callers import (
    Checkout,
    Operator,
    ShopServer,
    may_read_order,
    may_read_payment,
    sees_checkout_request_id,
)
from api.checkout_tokens import InvalidCheckoutToken, mint, verify
from api.errors import ApiError
from operations.operator_tokens import issue_token

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-0123456789abcdef-0123456789"
ORDER = "0b9f2a3e-order"


def _signed(claims: dict[str, object], algorithm: str = "HS256", key: str = SECRET) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(**changes: object) -> dict[str, object]:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "aud": "khalex-pay", "orderId": ORDER, "sub": "visitor-1",
        "iat": now, "exp": now + timedelta(minutes=30),
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_minted_token_names_its_order_and_subject() -> None:
    claims = verify(SECRET, mint(SECRET, ORDER, ttl_s=600, subject="visitor-9"))

    assert (claims.order_id, claims.subject) == (ORDER, "visitor-9")
    assert timedelta(seconds=590) < claims.expires_at - datetime.now(UTC) <= timedelta(seconds=600)


def test_a_token_minted_by_the_shops_own_server_is_accepted() -> None:
    assert verify(SECRET, _signed(_claims())).order_id == ORDER


def test_an_exp_more_than_an_hour_ahead_is_refused() -> None:
    far = _signed(_claims(exp=datetime.now(UTC) + timedelta(hours=2)))

    with pytest.raises(InvalidCheckoutToken, match="hour"):
        verify(SECRET, far)


def test_minting_beyond_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="3600"):
        mint(SECRET, ORDER, ttl_s=3601)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(_claims(exp=None), id="no-exp"),
        pytest.param(_claims(aud=None), id="no-audience"),
        pytest.param(_claims(aud="someone-else"), id="other-audience"),
        pytest.param(_claims(orderId=None), id="no-order"),
        pytest.param(_claims(orderId=42), id="order-not-a-string"),
        pytest.param(_claims(orderId="x" * 65), id="order-too-long"),
        pytest.param(_claims(exp=datetime.now(UTC) - timedelta(minutes=1)), id="expired"),
    ],
)
def test_a_token_missing_a_required_claim_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidCheckoutToken):
        verify(SECRET, _signed(claims))


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_only_hs256_with_our_secret_is_accepted() -> None:
    with pytest.raises(InvalidCheckoutToken, match=r"(?i)alg"):
        verify(SECRET, _signed(_claims(), algorithm="HS384"))
    with pytest.raises(InvalidCheckoutToken):
        verify(SECRET, _signed(_claims(), key="another-secret-0123456789abcdef-01234567"))
    unsigned = jwt.encode(_claims(), "", algorithm="none")
    with pytest.raises(InvalidCheckoutToken):
        verify(SECRET, unsigned)


def test_an_operator_token_is_not_a_checkout_token() -> None:
    operator = issue_token(SECRET, "wanjiru", 1)

    with pytest.raises(InvalidCheckoutToken):
        verify(SECRET, operator)


def test_a_checkout_token_is_not_an_operator_token_even_with_the_ops_role() -> None:
    sneaky = _signed(_claims(roles=["ops"]))
    assert checkout_tokens.verify(SECRET, sneaky).order_id == ORDER

    with pytest.raises(ApiError) as refused:
        authenticate(f"Bearer {sneaky}", SECRET)
    assert refused.value.status_code == 401


def test_a_checkout_token_reads_only_its_own_order_and_its_payments() -> None:
    checkout = Checkout(order_id=ORDER, subject="visitor-1")

    assert may_read_order(checkout, ORDER)
    assert not may_read_order(checkout, "another-order")
    assert may_read_payment(checkout, ORDER)
    assert not may_read_payment(checkout, "another-order")
    assert not may_read_payment(checkout, None)
    assert not sees_checkout_request_id(checkout)


@pytest.mark.parametrize("caller", [ShopServer(key_id="k"), ShopServer(None), Operator("o")])
def test_shop_server_and_operators_read_everything(
    caller: ShopServer | Operator,
) -> None:
    assert may_read_order(caller, ORDER)
    assert may_read_payment(caller, None)
    assert may_read_payment(caller, ORDER)
    assert sees_checkout_request_id(caller)

"""Operator tokens: HS256 with JWT_SECRET, an "ops" role, an expiry; anything else refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.auth import authenticate
from api.errors import ApiError
from operations.operator_tokens import issue_token

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-0123456789abcdef-0123456789"


def _refusal(header: str | None) -> ApiError:
    with pytest.raises(ApiError) as refused:
        authenticate(header, SECRET)
    return refused.value


def test_token_from_ops_token_names_its_operator() -> None:
    operator = authenticate(f"Bearer {issue_token(SECRET, 'wanjiru', 1)}", SECRET)

    assert operator.subject == "wanjiru"
    assert "ops" in operator.roles


def test_missing_header_is_401_with_a_bearer_challenge() -> None:
    refusal = _refusal(None)

    assert (refusal.status_code, refusal.code) == (401, "unauthenticated")
    assert refusal.headers["WWW-Authenticate"].startswith("Bearer")


def test_other_schemes_are_401() -> None:
    assert _refusal("Basic b3BzOm9wcw==").status_code == 401
    assert _refusal("Bearer ").status_code == 401


def test_token_signed_with_another_secret_is_401() -> None:
    forged = issue_token("another-secret-0123456789abcdef-0123456789")

    refusal = _refusal(f"Bearer {forged}")

    assert (refusal.status_code, refusal.code) == (401, "unauthenticated")
    assert 'error="invalid_token"' in refusal.headers["WWW-Authenticate"]


def test_expired_token_is_401() -> None:
    old = issue_token(SECRET, hours=1, now=datetime.now(UTC) - timedelta(hours=2))

    refusal = _refusal(f"Bearer {old}")

    assert refusal.status_code == 401
    assert "expired" in refusal.message


def test_token_without_expiry_is_401() -> None:
    eternal = jwt.encode({"sub": "x", "roles": ["ops"]}, SECRET, algorithm="HS256")

    assert _refusal(f"Bearer {eternal}").status_code == 401


def test_unsigned_token_is_401() -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    unsigned = jwt.encode({"sub": "x", "roles": ["ops"], "exp": exp}, "", algorithm="none")

    assert _refusal(f"Bearer {unsigned}").status_code == 401


def test_valid_token_without_the_ops_role_is_403() -> None:
    shopkeeper = issue_token(SECRET, roles=("shop",))

    refusal = _refusal(f"Bearer {shopkeeper}")

    assert (refusal.status_code, refusal.code) == (403, "forbidden")


def test_roles_may_be_a_space_separated_string() -> None:
    now = datetime.now(UTC)
    claims = {"sub": "x", "roles": "read ops", "iat": now, "exp": now + timedelta(hours=1)}
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    assert authenticate(f"bearer {token}", SECRET).subject == "x"


def test_token_living_longer_than_the_maximum_is_401() -> None:
    long_lived = issue_token(SECRET, hours=25)

    with pytest.raises(ApiError) as refused:
        authenticate(f"Bearer {long_lived}", SECRET, max_hours=24)

    assert (refused.value.status_code, refused.value.code) == (401, "unauthenticated")
    assert authenticate(f"Bearer {issue_token(SECRET, hours=24)}", SECRET, max_hours=24)


def test_token_without_iat_is_401() -> None:
    no_iat = jwt.encode(
        {"sub": "x", "roles": ["ops"], "exp": datetime.now(UTC) + timedelta(hours=1)},
        SECRET,
        algorithm="HS256",
    )

    assert _refusal(f"Bearer {no_iat}").status_code == 401

"""OAuth: Basic consumer credentials for a bearer token, and the token's life and death."""

from __future__ import annotations

import base64
import time

import pytest

from tests.simulator.conftest import Sim, assert_daraja_error, basic_auth

pytestmark = pytest.mark.simulator

TOKEN_PATH = "/oauth/v1/generate"
GRANT = {"grant_type": "client_credentials"}


def test_token_is_28_characters_and_expires_in_is_the_string_3599(sim: Sim) -> None:
    answer = sim.http.get(TOKEN_PATH, params=GRANT, headers={"Authorization": basic_auth()})

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"access_token", "expires_in"}
    assert len(body["access_token"]) == 28
    assert body["access_token"].isalnum()
    assert body["expires_in"] == "3599"


def test_each_token_request_gets_a_new_token(sim: Sim) -> None:
    headers = {"Authorization": basic_auth()}
    first = sim.http.get(TOKEN_PATH, params=GRANT, headers=headers).json()["access_token"]
    second = sim.http.get(TOKEN_PATH, params=GRANT, headers=headers).json()["access_token"]

    assert first != second


@pytest.mark.parametrize(
    "params",
    [{}, {"grant_type": "password"}, {"grant_type": "client_credentials "}],
    ids=["missing", "wrong", "trailing-space"],
)
def test_token_without_client_credentials_grant_is_refused_as_invalid_grant_type(
    sim: Sim, params: dict[str, str]
) -> None:
    answer = sim.http.get(TOKEN_PATH, params=params, headers={"Authorization": basic_auth()})

    assert_daraja_error(answer, 400, "400.008.02", "Invalid grant type passed")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "basic " + basic_auth().split()[1], "Basic"],
    ids=["missing", "bearer", "lower-case-scheme", "empty"],
)
def test_token_without_basic_auth_is_refused_as_invalid_authentication_type(
    sim: Sim, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    answer = sim.http.get(TOKEN_PATH, params=GRANT, headers=headers)

    assert_daraja_error(answer, 400, "400.008.01", "Invalid authentication type passed")


@pytest.mark.parametrize(
    "authorization",
    [
        basic_auth(key="someone-else"),
        basic_auth(secret="wrong-secret"),
        "Basic not-base64!!",
        "Basic " + base64.b64encode("cl\u00e9:\u20ac".encode()).decode(),
    ],
    ids=["wrong-key", "wrong-secret", "garbage", "non-ascii"],
)
def test_token_with_other_credentials_is_refused(sim: Sim, authorization: str) -> None:
    answer = sim.http.get(TOKEN_PATH, params=GRANT, headers={"Authorization": authorization})

    assert_daraja_error(answer, 400, "400.008.01", "Invalid Authentication passed")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Basic " + "x" * 28],
    ids=["missing", "empty", "unknown", "basic"],
)
def test_push_without_a_valid_bearer_token_is_refused_as_invalid_access_token(
    sim: Sim, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    answer = sim.http.post(
        "/mpesa/stkpush/v1/processrequest", json=sim.push_body(), headers=headers
    )

    assert_daraja_error(answer, 404, "404.001.03", "Invalid Access Token")
    assert sim.ledger() == []


def test_token_lifetime_knob_sets_expires_in_and_the_token_then_expires(sim: Sim) -> None:
    sim.set_chaos(tokenLifetimeS=1)
    answer = sim.http.get(TOKEN_PATH, params=GRANT, headers={"Authorization": basic_auth()})
    token = answer.json()["access_token"]
    assert answer.json()["expires_in"] == "1"
    fresh = sim.http.post(
        "/mpesa/stkpushquery/v1/query", json=sim.query_body("ws_CO_x"), headers=sim.bearer(token)
    )
    assert fresh.json()["errorMessage"] == "The transaction does not Exist"

    time.sleep(1.1)  # the simulator's own token expiry (1 s) must really pass
    stale = sim.http.post(
        "/mpesa/stkpush/v1/processrequest", json=sim.push_body(), headers=sim.bearer(token)
    )

    assert_daraja_error(stale, 404, "404.001.03", "Invalid Access Token")


def test_revoke_old_tokens_knob_makes_a_new_token_invalidate_the_previous_one(sim: Sim) -> None:
    sim.set_chaos(revokeOldTokens=True)
    old = sim.token()
    headers = {"Authorization": basic_auth()}
    new = sim.http.get(TOKEN_PATH, params=GRANT, headers=headers).json()["access_token"]

    with_old = sim.http.post(
        "/mpesa/stkpushquery/v1/query", json=sim.query_body("ws_CO_x"), headers=sim.bearer(old)
    )
    with_new = sim.http.post(
        "/mpesa/stkpushquery/v1/query", json=sim.query_body("ws_CO_x"), headers=sim.bearer(new)
    )

    assert_daraja_error(with_old, 404, "404.001.03", "Invalid Access Token")
    assert with_new.json()["errorMessage"] == "The transaction does not Exist"


def test_tokens_stay_valid_across_a_reset(sim: Sim) -> None:
    token = sim.token()
    sim.http.post("/simulator/reset")

    answer = sim.http.post(
        "/mpesa/stkpushquery/v1/query", json=sim.query_body("ws_CO_x"), headers=sim.bearer(token)
    )

    assert answer.json()["errorCode"] == "500.001.1001"

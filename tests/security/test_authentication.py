"""Only callers with credentials may start or read payments; 401 `unauthenticated` otherwise."""

from __future__ import annotations

import pytest

from operations.operator_tokens import issue_token
from tests.integration.conftest import Harness, shop_key
from tests.security.conftest import BODY, App, bearer, counts

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("kp_guessed"), bearer("not-a-token"), {"Authorization": "Basic c2hvcDpzaG9w"}],
    ids=["none", "guessed-key", "garbage", "basic"],
)
def test_initiate_without_valid_credentials_is_401_and_writes_nothing(
    h: Harness, app: App, headers: dict[str, str]
) -> None:
    answer = app().post("/api/payments/initiate", json=BODY, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert counts(h) == (0, 0, 0)


def test_status_without_credentials_is_401(h: Harness, app: App) -> None:
    client = app()
    paid = client.post("/api/payments/initiate", json=BODY, headers=bearer(shop_key(h)))

    answer = client.get(f"/api/payments/status/{paid.json()['paymentId']}")

    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthenticated")


def test_a_revoked_key_no_longer_starts_payments(h: Harness, app: App) -> None:
    from store import api_keys

    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "leaked")
        api_keys.revoke(conn, record.id)

    answer = app().post("/api/payments/initiate", json=BODY, headers=bearer(key))

    assert answer.status_code == 401
    assert counts(h)[0] == 0


def test_an_operator_token_of_a_longer_life_than_allowed_is_401(h: Harness, app: App) -> None:
    client = app(ops_token_max_hours=24.0)
    too_long = issue_token(h.container.settings.jwt_secret, hours=25)
    fine = issue_token(h.container.settings.jwt_secret, hours=24)

    refused = client.get("/api/ops/queues", headers=bearer(too_long))
    accepted = client.get("/api/ops/queues", headers=bearer(fine))

    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthenticated")
    assert accepted.status_code == 200


def test_ops_token_command_refuses_a_lifetime_above_the_maximum(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from khalex_pay import cli

    monkeypatch.setenv("OPS_TOKEN_MAX_HOURS", "24")

    assert cli.main(["ops-token", "--hours", "876000"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "OPS_TOKEN_MAX_HOURS" in err
    assert cli.main(["ops-token", "--hours", "24"]) == 0


def test_api_auth_off_is_refused_in_production() -> None:
    from plumbing.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as refused:
        load_settings({"MPESA_ENVIRONMENT": "production", "API_AUTH": "off"})

    assert any(
        p.startswith("production refuses API_AUTH=off (anyone could start payments)")
        for p in refused.value.problems
    )


def test_api_auth_off_lets_anyone_start_a_payment_in_sandbox(h: Harness, app: App) -> None:
    answer = app(api_auth=False).post("/api/payments/initiate", json=BODY)

    assert answer.status_code == 202

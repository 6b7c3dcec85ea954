"""Shop API keys on PostgreSQL: shown once, stored hashed, revocable; the `caller` dependency."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar import get
from litestar.testing import TestClient

from api.app import create_app
from api.callers import KEY_TRUST_S, Caller, Checkout, Operator, ShopServer, VerifiedKeys
from api.checkout_tokens import mint
from khalex_pay import cli
from operations.dlq import NoQueues
from operations.operator_tokens import issue_token
from store import api_keys
from store.tables import api_keys as api_keys_table
from store.tables import metadata
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


@get("/test/whoami", sync_to_thread=False)
def whoami(caller: Caller) -> dict[str, object]:
    return {"kind": type(caller).__name__, **dataclasses.asdict(caller)}


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    app = create_app(h.container, extra_handlers=[whoami], queues=NoQueues())
    with TestClient(app=app) as test_client:
        yield test_client


def _as(client: TestClient[Any], token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/test/whoami", headers=headers)


def test_a_key_is_stored_only_as_its_hash(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "shop server")
    with h.container.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys_table)).one()._mapping

    assert key.startswith("kp_")
    assert len(key) > 40
    assert key not in {str(v) for v in row.values()}
    assert row["key_hash"] == api_keys.hash_key(key)
    assert key.startswith(row["prefix"])
    assert len(row["prefix"]) < 16
    assert record.id == str(row["id"])


def test_a_live_key_authenticates_and_notes_its_use(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "shop")
        found = api_keys.authenticate(conn, key)
        wrong = api_keys.authenticate(conn, key[:-1] + ("A" if key[-1] != "A" else "B"))
        (listed,) = api_keys.all_keys(conn)

    assert found is not None
    assert found.id == record.id
    assert wrong is None
    assert listed.last_used_at is not None


def test_a_revoked_key_no_longer_authenticates(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "old shop")
        revoked = api_keys.revoke(conn, record.id)
        found = api_keys.authenticate(conn, key)
        unknown = api_keys.revoke(conn, "not-a-uuid")

    assert revoked is not None
    assert revoked.revoked_at is not None
    assert found is None
    assert unknown is None


def test_the_caller_dependency_tells_the_three_callers_apart(
    h: Harness, client: TestClient[Any]
) -> None:
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "shop")
    secret = h.container.settings.jwt_secret

    assert _as(client, key).json() == {"kind": "ShopServer", "key_id": record.id}
    assert _as(client, mint(secret, "order-1", subject="v1")).json() == {
        "kind": "Checkout", "order_id": "order-1", "subject": "v1",
    }  # fmt: skip
    assert _as(client, issue_token(secret, "wanjiru", 1)).json() == {
        "kind": "Operator", "subject": "wanjiru",
    }  # fmt: skip
    assert {ShopServer, Checkout, Operator}  # the names other modules code against


@pytest.mark.parametrize(
    "token",
    [None, "kp_not-a-key", "garbage", "a.b.c"],
    ids=["none", "unknown-key", "garbage", "bad-jwt"],
)
def test_no_valid_credentials_is_401_unauthenticated(
    client: TestClient[Any], token: str | None
) -> None:
    answer = _as(client, token)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_is_401(h: Harness, client: TestClient[Any]) -> None:
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "shop")
        api_keys.revoke(conn, record.id)

    assert _as(client, key).status_code == 401


def test_a_key_revoked_after_use_is_refused_once_its_trust_time_has_passed(h: Harness) -> None:
    now = [1000.0]
    verified = VerifiedKeys(clock=lambda: now[0])
    app = create_app(
        h.container, extra_handlers=[whoami], queues=NoQueues(), verified_keys=verified
    )
    with h.container.engine.begin() as conn:
        record, key = api_keys.create(conn, "shop")
    with TestClient(app=app) as client:
        assert _as(client, key).json() == {"kind": "ShopServer", "key_id": record.id}
        with h.container.engine.begin() as conn:
            api_keys.revoke(conn, record.id)

        now[0] += KEY_TRUST_S - 0.5
        still_trusted = _as(client, key)
        now[0] += 0.5
        refused = _as(client, key)
        refused_again = _as(client, key)

    assert still_trusted.json() == {"kind": "ShopServer", "key_id": record.id}
    assert (refused.status_code, refused_again.status_code) == (401, 401)


def test_api_auth_off_lets_anyone_call_as_the_shop_server(h: Harness) -> None:
    h.container.settings = dataclasses.replace(h.container.settings, api_auth=False)
    app = create_app(h.container, extra_handlers=[whoami], queues=NoQueues())
    with TestClient(app=app) as client:
        assert _as(client, None).json() == {"kind": "ShopServer", "key_id": None}


def test_keys_commands_create_list_and_revoke(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)

    assert cli.main(["keys", "create", "shop server"]) == 0
    key = capsys.readouterr().out.strip()
    with h.container.engine.connect() as conn:
        (record,) = api_keys.all_keys(conn)
    assert cli.main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert cli.main(["keys", "revoke", record.id]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "revoke", "00000000-0000-0000-0000-000000000000"]) == 1

    assert key.startswith(record.prefix)
    assert record.id in listing
    assert "shop server" in listing
    assert key not in listing
    with h.container.engine.begin() as conn:
        assert api_keys.authenticate(conn, key) is None


def test_the_migrations_make_exactly_the_tables(h: Harness) -> None:
    with h.container.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []

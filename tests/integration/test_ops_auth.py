"""Every `/api/ops/*` endpoint wants an ops token; `/metrics` and `/ops` do not."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from operations.dlq import NoQueues
from operations.operator_tokens import issue_token
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

SECRET = "ops-test-secret-0123456789abcdef-0123456789"
ENDPOINTS = ("/api/ops/queues", "/api/ops/summary", "/api/ops/stuck", "/api/ops/dead-letters")


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    h.container.settings = dataclasses.replace(h.container.settings, jwt_secret=SECRET)
    with TestClient(app=create_app(h.container, queues=NoQueues())) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ops_endpoint_without_token_is_401_in_the_envelope(
    client: TestClient[Any], path: str
) -> None:
    answer = client.get(path)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ops_endpoint_with_a_forged_or_expired_token_is_401(
    client: TestClient[Any], path: str
) -> None:
    forged = issue_token("not-the-secret-0123456789abcdef-0123456789")
    expired = issue_token(SECRET, now=datetime.now(UTC) - timedelta(days=1))

    assert client.get(path, headers=_bearer(forged)).status_code == 401
    assert client.get(path, headers=_bearer(expired)).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ops_endpoint_with_a_token_lacking_the_role_is_403(
    client: TestClient[Any], path: str
) -> None:
    answer = client.get(path, headers=_bearer(issue_token(SECRET, roles=("shop",))))

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ops_endpoint_with_an_ops_token_is_200(client: TestClient[Any], path: str) -> None:
    assert client.get(path, headers=_bearer(issue_token(SECRET))).status_code == 200


def test_metrics_and_the_page_need_no_token(client: TestClient[Any]) -> None:
    assert client.get("/metrics").status_code == 200
    assert client.get("/ops").status_code == 200


def test_an_ops_token_reads_payments_and_no_token_does_not(client: TestClient[Any]) -> None:
    anonymous = client.get("/api/payments/status/ws_CO_NOPE")
    operator = client.get("/api/payments/status/ws_CO_NOPE", headers=_bearer(issue_token(SECRET)))

    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthenticated")
    assert (operator.status_code, operator.json()["error"]["code"]) == (404, "payment_not_found")

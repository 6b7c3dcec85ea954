"""Schemathesis against the app's own OpenAPI (`/schema/openapi.json`), on PostgreSQL.

Every operation is called with generated input, as the shop's server (an API key made in
the test database), as the shop's page (a checkout token) and as an operator. Each answer
must be below 500 and one the OpenAPI documents: its status code, content type, headers
(Location, Retry-After where `required`) and body schema: every JSON answer is documented by
a Struct (api/answers.py, or the error envelope), so `response_schema_conformance` checks
each one field by field. Generated bodies start from the documented examples, so the
answers include successes, not only refusals. An undocumented answer is fixed in the
OpenAPI, not here.
"""

# The fixtures `h` and `app` are imported to be used here, and parameters named after them
# are how pytest hands them over: ruff would call each one a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.openapi import from_asgi

from api import checkout_tokens
from api.app import create_app
from operations.dlq import NoQueues
from operations.operator_tokens import issue_token
from payments import orders
from payments.container import Container
from plumbing.settings import load_settings
from store.db import make_engine
from tests.integration.conftest import Harness, h, shop_key  # noqa: F401 - the fixture
from tests.integration.test_orders import new_order
from tests.security.conftest import WIDE

pytestmark = pytest.mark.integration

#: What every answer is held to.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Examples per operation and caller: enough to reach every documented answer, in seconds.
EXAMPLES = 25


@dataclasses.dataclass(frozen=True)
class Credentials:
    shop_key: str
    checkout_token: str
    order_id: str
    operator_token: str


@pytest.fixture
def wide_app(h: Harness) -> Litestar:
    """The app on the harness's PostgreSQL, with limits no generated run reaches."""
    wide: dict[str, Any] = dict(WIDE)
    h.container.settings = dataclasses.replace(h.container.settings, **wide)
    return create_app(h.container, queues=NoQueues())


@pytest.fixture
def credentials(h: Harness) -> Credentials:
    secret = h.container.settings.jwt_secret
    # A real order of the shop's, so its page's calls reach the order and pay it.
    order_id = orders.create(h.container, new_order()).order.id
    return Credentials(
        shop_key=shop_key(h),
        checkout_token=checkout_tokens.mint(secret, order_id),
        order_id=order_id,
        operator_token=issue_token(secret, "schemathesis", hours=1),
    )


def _document_app() -> Litestar:
    """An app serving the same OpenAPI, for loading the schema when the module is collected.

    (Schemathesis's fixture-based loader does not run on pytest 9, so each call is sent to
    the test's own app on PostgreSQL instead: `case.call(app=...)`.)
    """
    settings = load_settings({})
    return create_app(Container(settings, make_engine("sqlite://"), lambda _: None))


schema = from_asgi("/schema/openapi.json", _document_app())


def _call(case: Case[Any], app: Litestar, token: str) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_to_the_shop_server_is_documented_and_below_500(
    case: Case[Any], wide_app: Litestar, credentials: Credentials
) -> None:
    _call(case, wide_app, credentials.shop_key)


@schema.parametrize()
@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_to_a_checkout_token_is_documented_and_below_500(
    case: Case[Any], wide_app: Litestar, credentials: Credentials
) -> None:
    # The page names its own order (another's is a plain 404, pinned in test_scopes.py):
    # so generated calls get as far as reading and paying it.
    if isinstance(case.body, dict):
        case.body["orderId"] = credentials.order_id
    if case.path_parameters and "order_id" in case.path_parameters:
        case.path_parameters["order_id"] = credentials.order_id
    _call(case, wide_app, credentials.checkout_token)


@schema.parametrize()
@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_to_an_operator_is_documented_and_below_500(
    case: Case[Any], wide_app: Litestar, credentials: Credentials
) -> None:
    _call(case, wide_app, credentials.operator_token)

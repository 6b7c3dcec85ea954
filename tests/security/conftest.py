"""Attacks on the API, each as a test, on the real PostgreSQL (the `h` harness)."""

# The integration harness's fixture `h` is imported to be used here, and parameters named
# `h` are how pytest hands it over: ruff would call each one a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from operations.dlq import NoQueues
from store.tables import outbox, payments, refused_requests
from tests.integration.conftest import Harness, h, shop_key  # noqa: F401 - the fixture

#: A body the shop's server may send.
BODY: dict[str, Any] = {
    "amount": 1500,
    "phoneNumber": "0712345678",
    "productId": "board-01",
    "productName": "Tournament chess board",
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
}

#: Limits no test reaches unless it sets its own.
WIDE = {
    "rate_limit_phone": (10_000, 60),
    "rate_limit_ip": (10_000, 60),
    "rate_limit_key": (10_000, 60),
}

App = Callable[..., TestClient[Any]]


@pytest.fixture
def app(h: Harness) -> Iterator[App]:
    """Makes a TestClient over an app whose settings are the harness's with `changes`.

    The apps of one test share the container, so the last one made sets its settings.
    """
    clients: list[TestClient[Any]] = []
    base = h.container.settings

    def make(**changes: Any) -> TestClient[Any]:
        h.container.settings = dataclasses.replace(base, **{**WIDE, **changes})
        client = TestClient(app=create_app(h.container, queues=NoQueues()))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def counts(h: Harness) -> tuple[int, int, int]:
    """(payments, outbox rows, refused requests) as stored now."""
    with h.container.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (payments, outbox, refused_requests)
        )

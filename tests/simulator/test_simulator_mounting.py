"""The same handlers mounted at the root of a host Litestar app (the one-process dev mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from daraja.simulator import SimulatorConfig, SimulatorState, route_handlers
from tests import services
from tests.simulator.conftest import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    PASSKEY,
    PAYING_PHONE,
    SHORTCODE,
    basic_auth,
    nairobi_timestamp,
    password_for,
)

pytestmark = pytest.mark.simulator


@get("/api/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@pytest.fixture
def host() -> Iterator[TestClient[Litestar]]:
    config = SimulatorConfig(
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        shortcode=SHORTCODE,
        passkey=PASSKEY,
        party_b=SHORTCODE,
        callback_delay_s=0.05,
    )
    state = SimulatorState(config)
    app = Litestar(route_handlers=[ping, live, *route_handlers(state)], on_shutdown=[state.aclose])
    with TestClient(app) as client:
        yield client


def test_mounted_simulator_serves_daraja_next_to_the_host_routes(
    host: TestClient[Litestar],
) -> None:
    token = host.get(
        "/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        headers={"Authorization": basic_auth()},
    ).json()["access_token"]
    timestamp = nairobi_timestamp()
    body = {
        "BusinessShortCode": SHORTCODE,
        "Password": password_for(timestamp),
        "Timestamp": timestamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 10,
        "PartyA": PAYING_PHONE,
        "PartyB": SHORTCODE,
        "PhoneNumber": PAYING_PHONE,
        "CallBackURL": "http://127.0.0.1:9/cb",
        "AccountReference": "KhalexChess",
        "TransactionDesc": "Khalex Chess",
    }

    pushed = host.post(
        "/mpesa/stkpush/v1/processrequest", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    services.wait_until(
        lambda: host.get("/simulator/ledger").json()["pending"] == 0, 5, 0.05, "prompt resolved"
    )

    assert pushed.status_code == 200, pushed.text
    assert host.get("/api/ping").json() == {"ping": "pong"}
    assert host.get("/health/live").status_code == 200
    [entry] = host.get("/simulator/ledger").json()["pushes"]
    assert entry["resultCode"] == 0
    assert "/mpesa/stkpush/v1/processrequest" not in host.get("/schema/openapi.json").text

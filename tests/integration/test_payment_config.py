"""`GET /api/payments/config` and MPESA_ROLLOUT_PERCENT: stable buckets by order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.payment_config import bucket
from payments.container import Container
from plumbing.settings import SettingsError, load_settings
from tests.integration.conftest import Harness, shop_key
from tests.integration.test_orders_api import ORDER

pytestmark = pytest.mark.integration

Client = Callable[[int], AbstractContextManager[TestClient[Any]]]


@pytest.fixture
def client_at(h: Harness) -> Client:
    """A client whose app serves M-Pesa to `percent` % of checkouts."""

    @contextmanager
    def at(percent: int) -> Iterator[TestClient[Any]]:
        settings = dataclasses.replace(h.container.settings, mpesa_rollout_percent=percent)
        container = Container(settings, h.container.engine, h.published.append, daraja=h.daraja)
        with TestClient(app=create_app(container)) as client:
            yield client

    return at


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _orders(client: TestClient[Any], h: Harness, n: int) -> list[dict[str, Any]]:
    shop = _bearer(shop_key(h))
    made = []
    for i in range(n):
        answer = client.post("/api/orders", json={**ORDER, "notes": f"n{i}"}, headers=shop)
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    return made


def _initiate(client: TestClient[Any], token: str) -> Any:
    return client.post(
        "/api/payments/initiate", json={"phoneNumber": "0712345678"}, headers=_bearer(token)
    )


def test_at_100_percent_every_checkout_may_pay_by_mpesa_and_sees_its_paybill_reference(
    client_at: Client, h: Harness
) -> None:
    with client_at(100) as client:
        order = _orders(client, h, 1)[0]
        config = client.get("/api/payments/config", headers=_bearer(order["checkoutToken"]))
        paid = _initiate(client, order["checkoutToken"])

    assert config.status_code == 200
    body = config.json()
    assert body["mpesaEnabled"] is True
    assert body["paybill"]["businessNumber"] == h.container.settings.mpesa_business_shortcode
    reference = body["paybill"]["accountReference"]
    assert reference == ("KP" + order["orderId"].replace("-", "").upper())[:12]
    assert body["contact"] == h.container.settings.shop_contact
    assert paid.status_code == 202


def test_at_0_percent_a_checkout_sees_the_contact_and_initiate_is_503_with_it(
    client_at: Client, h: Harness
) -> None:
    with client_at(0) as client:
        order = _orders(client, h, 1)[0]
        config = client.get("/api/payments/config", headers=_bearer(order["checkoutToken"]))
        refused = _initiate(client, order["checkoutToken"])
        shop = client.get("/api/payments/config", headers=_bearer(shop_key(h)))

    assert config.json()["mpesaEnabled"] is False
    assert config.json()["contact"] == h.container.settings.shop_contact
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "payments_unavailable"
    assert refused.json()["error"]["contact"] == h.container.settings.shop_contact
    assert shop.json()["mpesaEnabled"] is True  # the shop's own server is never held back


def test_at_50_percent_orders_split_by_their_bucket_the_same_way_every_time(
    client_at: Client, h: Harness
) -> None:
    with client_at(50) as client:
        orders = _orders(client, h, 16)
        seen = {
            o["orderId"]: client.get(
                "/api/payments/config", headers=_bearer(o["checkoutToken"])
            ).json()["mpesaEnabled"]
            for o in orders
        }
        again = {
            o["orderId"]: client.get(
                "/api/payments/config", headers=_bearer(o["checkoutToken"])
            ).json()["mpesaEnabled"]
            for o in orders
        }
        outside = next(o for o in orders if not seen[o["orderId"]])
        refused = _initiate(client, outside["checkoutToken"])

    assert seen == again
    assert seen == {order_id: bucket(order_id) < 50 for order_id in seen}
    assert set(seen.values()) == {True, False}  # 16 orders: both sides, with odds 1 - 2**-15
    assert refused.status_code == 503


def test_config_needs_credentials(client_at: Client) -> None:
    with client_at(100) as client:
        answer = client.get("/api/payments/config")
    assert answer.status_code == 401


def test_buckets_are_stable_and_spread_over_0_to_99() -> None:
    keys = [f"order-{n}" for n in range(2000)]
    buckets = [bucket(k) for k in keys]
    assert buckets == [bucket(k) for k in keys]
    assert set(buckets) == set(range(100))


@pytest.mark.parametrize("value", ["-1", "101", "half"])
def test_a_rollout_outside_0_to_100_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="MPESA_ROLLOUT_PERCENT"):
        load_settings({"MPESA_ROLLOUT_PERCENT": value})


def test_the_rollout_defaults_to_everyone() -> None:
    assert load_settings({}).mpesa_rollout_percent == 100

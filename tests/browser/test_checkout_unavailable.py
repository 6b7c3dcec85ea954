"""The checkout when M-Pesa is not on offer: outside the rollout, Daraja down, the API down.

Each shows the shop's call-to-order contact (SHOP_CONTACT) instead of a dead end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, Route

from plumbing.settings import Settings
from tests import services
from tests.browser.shopper import DevServer, Shopper, dev_server, fresh_number

#: What every one of these pages must show.
CONTACT = Settings().shop_contact


@pytest.fixture(scope="module")
def no_rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(tmp_path_factory.mktemp("rollout"), MPESA_ROLLOUT_PERCENT="0") as dev:
        yield dev


@pytest.fixture(scope="module")
def daraja_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """Daraja answers every call with its gateway's 503 fault."""
    chaos = json.dumps({"faultRate": 1.0})
    with dev_server(tmp_path_factory.mktemp("down"), SIM_CHAOS=chaos) as dev:
        yield dev


def test_outside_the_mpesa_rollout_the_page_shows_the_call_to_order_contact(
    no_rollout: DevServer, tabs: dict[str, Page]
) -> None:
    shoppers = [Shopper(page, size, no_rollout.url) for size, page in tabs.items()]
    for shopper in shoppers:
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("unavailable")
        assert shopper.data("code") == "mpesa_not_enabled"
        text = shopper.text()
        assert "Order by phone" in text
        assert CONTACT in text
    assert no_rollout.ledger() == []  # no prompt went out


def test_daraja_down_ends_the_attempt_with_the_contact_and_nothing_taken(
    daraja_down: DevServer, tabs: dict[str, Page]
) -> None:
    shoppers = [Shopper(page, size, daraja_down.url) for size, page in tabs.items()]
    for shopper in shoppers:
        shopper.pay(fresh_number())
    for shopper in shoppers:
        # The push is retried a few times before it is given up (about 20 s).
        shopper.wait_for("failed", timeout_s=60)
        assert shopper.data("code") == "mpesa_unavailable"
        text = shopper.text()
        assert "isn't working right now" in text
        assert "No money was taken" in text
        assert CONTACT in text
        assert "confirming" not in shopper.trail  # refused pushes are known not to be out
    assert daraja_down.ledger() == []


def test_payments_answering_503_show_the_contact_and_when_to_try_again(
    store_down: tuple[DevServer, str], tabs: dict[str, Page]
) -> None:
    """The store fails between the order and the prompt: the API answers 503 with the contact."""
    server, database = store_down

    def database_goes_down(route: Route) -> None:
        _accept_connections(database, on=False)
        route.continue_()

    shoppers = [Shopper(page, size, server.url) for size, page in tabs.items()]
    for shopper in shoppers:  # one at a time: the next one's order needs the store back
        shopper.page.route("**/api/payments/initiate", database_goes_down)
        try:
            shopper.pay(fresh_number())
            shopper.wait_for("unavailable")
        finally:
            _accept_connections(database, on=True)
        assert shopper.data("code") == "payments_unavailable"
        text = shopper.text()
        assert "not working right now" in text
        assert CONTACT in text
        assert "try again in 30 seconds" in text  # Retry-After


@pytest.fixture(scope="module")
def store_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, str]]:
    """`khalex-pay dev` on its own PostgreSQL database, which the test can take away."""
    services.require_postgres()
    with services.fresh_database() as url:
        tmp = tmp_path_factory.mktemp("store-down")
        with dev_server(tmp, DATABASE_URL=url) as dev:
            yield dev, url.rsplit("/", 1)[1]


def _accept_connections(database: str, *, on: bool) -> None:
    """Let `database` take connections again, or refuse them and drop the open ones."""
    admin = sa.create_engine(services.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(on).lower()}')
        )
        if not on:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": database},
            )  # fmt: skip
    admin.dispose()

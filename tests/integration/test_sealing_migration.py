"""Revision 0011 on PostgreSQL and SQLite: rows from before sealing stay readable and findable."""

from __future__ import annotations

import pytest

from migrations.run import upgrade
from store import payments
from store.db import make_engine
from tests.integration.test_orders_migration import _old_payment, empty_url  # noqa: F401

pytestmark = pytest.mark.integration


def test_rows_from_before_sealing_are_read_as_they_were_and_found_by_phone(
    empty_url: str,  # noqa: F811 - the imported fixture
) -> None:
    upgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        payment_id = _old_payment(conn, None, "254712345678")

    upgrade(empty_url)

    with engine.connect() as conn:
        found = payments.in_flight_for(conn, "254712345678")
        record = payments.get(conn, str(found))
    engine.dispose()
    assert found is not None
    assert str(found).replace("-", "") == payment_id.replace("-", "")
    assert record is not None
    assert (record.phone_number, record.customer_email) == ("254712345678", "e@x.io")

"""Revision 0011 on PostgreSQL and SQLite: rows from before sealing stay readable and findable."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from migrations.run import upgrade
from store import c2b, payments
from store.db import make_engine, utcnow
from store.rotation import rotate
from store.sealed import phone_index
from store.tables import c2b_payments
from tests.factories import c2b_request
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


def test_paybill_rows_from_before_sealing_are_found_by_phone_and_sealed_by_rotation(
    empty_url: str,  # noqa: F811 - the imported fixture
) -> None:
    upgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    body = c2b_request("ROLDC2B001", bill_ref="0712345678", msisdn="254712345678").decode()
    row_id = uuid.uuid4().hex  # as SQLAlchemy stores a Uuid on SQLite; PostgreSQL reads it too
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO c2b_payments (id, kind, received_at, headers, body, trans_id, "
                "bill_ref_number, amount, state, version) VALUES (:id, 'confirmation', :at, "
                "'{}', :body, 'ROLDC2B001', '0712345678', 1500, 'unmatched', 0)"
            ),
            {"id": row_id, "at": utcnow(), "body": body},
        )

    upgrade(empty_url)
    rotate(engine)

    with engine.connect() as conn:
        record = c2b.C2bRecord.from_row(conn.execute(sa.select(c2b_payments)).one())
        stored = conn.execute(
            sa.select(sa.type_coerce(c2b_payments.c.bill_ref_number, sa.Text), c2b_payments.c.body)
        ).one()
        index = conn.execute(sa.select(c2b_payments.c.phone_index)).scalar_one()
    engine.dispose()
    assert index == phone_index("254712345678")
    assert record.bill_ref_number == "0712345678"
    assert json.loads(record.body)["MSISDN"] == "254712345678"
    assert "254712345678" not in stored.body
    assert "KAMAU" not in stored.body
    assert stored[0].startswith("kp1:")

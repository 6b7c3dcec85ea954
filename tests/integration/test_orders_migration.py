"""The orders migration on PostgreSQL and SQLite: old order ids kept, schema as tables.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from migrations.run import upgrade
from store.db import make_engine, utcnow
from store.tables import metadata
from tests import services

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'khalex.db'}"
        return
    services.require_postgres()
    with services.fresh_database(migrated=False, prefix="khalex_mig") as url:
        yield url


def _old_payment(conn: sa.Connection, order_id: str | None, phone: str) -> str:
    payment_id = str(uuid.uuid4())
    now = utcnow()
    conn.execute(
        sa.text(
            "INSERT INTO payments (id, amount, currency, phone_number, product_id, product_name,"
            " customer_name, customer_email, order_id, status, callback_token, version,"
            " created_at, updated_at, receipt_pending, late_success, push_attempts,"
            " query_attempts) VALUES (:id, 1500, 'KES', :phone, 'p', 'P', 'n', 'e@x.io',"
            " :order_id, 'created', :token, 0, :now, :now, false, false, 0, 0)"
        ),
        {"id": payment_id if conn.dialect.name == "postgresql" else payment_id.replace("-", ""),
         "phone": phone, "order_id": order_id, "token": uuid.uuid4().hex, "now": now},
    )  # fmt: skip
    return payment_id


def test_old_order_ids_are_kept_in_the_payments_events_and_the_schema_matches_the_tables(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0008")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        kept = _old_payment(conn, "order-77", "254712345678")
        _old_payment(conn, None, "254712345679")

    upgrade(empty_url)

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payment_id, kind, data FROM payment_events")).all()
        order_ids = conn.execute(sa.text("SELECT order_id FROM payments")).scalars().all()
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
        if conn.dialect.name == "sqlite":
            indexes = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'uq_payments_phone_in_flight'")
            ).scalar_one()
            assert "WHERE" in indexes, "the table copy lost the partial index's condition"
    engine.dispose()
    assert order_ids == [None, None]
    [(payment_id, kind, data)] = rows
    assert str(uuid.UUID(str(payment_id))) == kept
    assert kind == "order_id_detached"
    data = data if isinstance(data, dict) else __import__("json").loads(data)
    assert data["orderId"] == "order-77"
    assert diff == []

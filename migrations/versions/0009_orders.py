"""orders, their events and idempotency keys; payments.order_id references orders

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 04:45:00.000000

Before this revision `payments.order_id` was free text that nothing checked, so no stored
value names a row of the new `orders` table. Each such value is kept in an
`order_id_detached` event of its payment before the column becomes a foreign key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_IN_FLIGHT = sa.text("status IN ('created', 'sending', 'pushed', 'unknown')")
#: Partial indexes on payments that SQLite's table copy (batch mode) must not lose.
_PARTIAL = (
    ("uq_payments_phone_in_flight", ["phone_number"], True, _IN_FLIGHT),
    ("ix_payments_pending_created", ["created_at"], False, _IN_FLIGHT),
    ("ix_payments_next_query", ["next_query_at"], False, sa.text("next_query_at IS NOT NULL")),
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _create_order_tables()
    _detach_old_order_ids(sqlite)
    if sqlite:
        # The table copy (batch mode; env.py turns SQLite's foreign keys off for it) must
        # not lose these indexes' conditions: drop them now, make them again after.
        for name, *_ in _PARTIAL:
            op.drop_index(name, table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.alter_column(
            "order_id",
            existing_type=sa.String(length=64),
            type_=sa.Uuid(as_uuid=False),
            existing_nullable=True,
            postgresql_using="order_id::uuid",
        )
        batch.create_foreign_key(
            op.f("fk_payments_order_id_orders"), "orders", ["order_id"], ["id"]
        )
    if sqlite:
        _create_partial_indexes()
    op.create_index(
        "uq_payments_order_in_flight", "payments", ["order_id"], unique=True,
        postgresql_where=_IN_FLIGHT, sqlite_where=_IN_FLIGHT,
    )  # fmt: skip
    op.create_index("ix_payments_order", "payments", ["order_id"], unique=False)


def _create_order_tables() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("order_items", _JSON, nullable=False),
        sa.Column("total_amount", sa.Integer(), nullable=False),
        sa.Column("delivery_fee", sa.Integer(), server_default="0", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="KES", nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_email", sa.String(length=254), nullable=True),
        sa.Column("customer_phone", sa.String(length=12), nullable=False),
        sa.Column("delivery_address", sa.String(length=500), nullable=True),
        sa.Column("notes", sa.String(length=1000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refund_due", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("refund_payment_ids", _JSON, nullable=False),
        sa.Column("paid_by_payment_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total_amount BETWEEN 1 AND 250000", name=op.f("ck_orders_total_range")),
        sa.CheckConstraint("delivery_fee >= 0", name=op.f("ck_orders_delivery_fee_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_created", "orders", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_orders_status_created", "orders", ["status", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_orders_refund_due", "orders", ["created_at"], unique=False,
        postgresql_where=sa.text("refund_due"), sqlite_where=sa.text("refund_due"),
    )  # fmt: skip
    op.create_table(
        "order_events",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index("ix_order_events_order", "order_events", ["order_id", "id"], unique=False)
    op.create_index(
        "ix_order_events_kind_created", "order_events", ["kind", "created_at"], unique=False
    )
    op.create_table(
        "order_idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_idempotency_keys_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_order_idempotency_keys")),
    )


#: Each payment's stored order_id, kept in an event (SQLite and PostgreSQL spell JSON apart).
_DETACH = {
    "sqlite": (
        "INSERT INTO payment_events (payment_id, kind, from_status, to_status, data, created_at) "
        "SELECT id, 'order_id_detached', status, status, "
        "json_object('orderId', order_id, 'reason', 'no such order (before orders existed)'), "
        "strftime('%Y-%m-%d %H:%M:%f', 'now') FROM payments WHERE order_id IS NOT NULL"
    ),
    "postgresql": (
        "INSERT INTO payment_events (payment_id, kind, from_status, to_status, data, created_at) "
        "SELECT id, 'order_id_detached', status, status, "
        "jsonb_build_object('orderId', order_id, 'reason', 'no such order (before orders existed)'),"
        " now() FROM payments WHERE order_id IS NOT NULL"
    ),
}


def _detach_old_order_ids(sqlite: bool) -> None:
    # No order existed before this revision, so every stored order_id is unknown: keep it in
    # the payment's append-only history, then clear it so the foreign key can hold.
    op.execute(_DETACH["sqlite" if sqlite else "postgresql"])
    op.execute("UPDATE payments SET order_id = NULL WHERE order_id IS NOT NULL")


def _create_partial_indexes() -> None:
    for name, columns, unique, where in _PARTIAL:
        op.create_index(
            name, "payments", columns, unique=unique, postgresql_where=where, sqlite_where=where
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_payments_order", table_name="payments")
    op.drop_index("uq_payments_order_in_flight", table_name="payments")
    if sqlite:
        for name, *_ in _PARTIAL:
            op.drop_index(name, table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("fk_payments_order_id_orders"), type_="foreignkey")
        batch.alter_column(
            "order_id",
            existing_type=sa.Uuid(as_uuid=False),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    if sqlite:
        _create_partial_indexes()
    op.drop_table("order_idempotency_keys")
    op.drop_index("ix_order_events_kind_created", table_name="order_events")
    op.drop_index("ix_order_events_order", table_name="order_events")
    op.drop_table("order_events")
    op.drop_index("ix_orders_refund_due", table_name="orders")
    op.drop_index("ix_orders_status_created", table_name="orders")
    op.drop_index("ix_orders_created", table_name="orders")
    op.drop_table("orders")

"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 08:42:45.894832
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("path_token", sa.String(length=64), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("checkout_request_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("payment_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_inbox")),
    )
    op.create_index(
        "ix_callback_inbox_checkout", "callback_inbox", ["checkout_request_id"], unique=False
    )
    op.create_index(
        "ix_callback_inbox_state", "callback_inbox", ["state", "received_at"], unique=False
    )
    op.create_table(
        "daraja_exchanges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daraja_exchanges")),
    )
    op.create_index(
        "ix_daraja_exchanges_payment", "daraja_exchanges", ["payment_id", "id"], unique=False
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="KES", nullable=False),
        sa.Column("phone_number", sa.String(length=12), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_email", sa.String(length=254), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checkout_request_id", sa.String(length=64), nullable=True),
        sa.Column("merchant_request_id", sa.String(length=64), nullable=True),
        sa.Column("mpesa_receipt_number", sa.String(length=32), nullable=True),
        sa.Column("receipt_pending", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("transaction_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result_code", sa.Integer(), nullable=True),
        sa.Column("result_desc", sa.String(length=255), nullable=True),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("late_success", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("push_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("callback_token", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("query_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("amount BETWEEN 1 AND 250000", name=op.f("ck_payments_amount_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("callback_token", name=op.f("uq_payments_callback_token")),
        sa.UniqueConstraint("checkout_request_id", name=op.f("uq_payments_checkout_request_id")),
        sa.UniqueConstraint("mpesa_receipt_number", name=op.f("uq_payments_mpesa_receipt_number")),
    )
    op.create_index(
        "ix_payments_next_query",
        "payments",
        ["next_query_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.create_index(
        "ix_payments_pending_created",
        "payments",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.create_index(
        "uq_payments_phone_in_flight",
        "payments",
        ["phone_number"],
        unique=True,
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_idempotency_keys_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "payment_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_events_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
    )
    op.create_index(
        "ix_payment_events_kind_created", "payment_events", ["kind", "created_at"], unique=False
    )
    op.create_index(
        "ix_payment_events_payment", "payment_events", ["payment_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_payment_events_payment", table_name="payment_events")
    op.drop_index("ix_payment_events_kind_created", table_name="payment_events")
    op.drop_table("payment_events")
    op.drop_table("idempotency_keys")
    op.drop_index(
        "uq_payments_phone_in_flight",
        table_name="payments",
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.drop_index(
        "ix_payments_pending_created",
        table_name="payments",
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.drop_index(
        "ix_payments_next_query",
        table_name="payments",
        postgresql_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
        sqlite_where=sa.text("status IN ('created', 'sending', 'pushed', 'unknown')"),
    )
    op.drop_table("payments")
    op.drop_index(
        "ix_outbox_unsent",
        table_name="outbox",
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.drop_table("outbox")
    op.drop_index("ix_daraja_exchanges_payment", table_name="daraja_exchanges")
    op.drop_table("daraja_exchanges")
    op.drop_index("ix_callback_inbox_state", table_name="callback_inbox")
    op.drop_index("ix_callback_inbox_checkout", table_name="callback_inbox")
    op.drop_table("callback_inbox")

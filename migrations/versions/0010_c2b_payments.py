"""c2b_payments: PayBill validation and confirmation requests, and how each was matched

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_COUNTED = sa.text("state IN ('matched', 'refund_due', 'unmatched')")


def upgrade() -> None:
    op.create_table(
        "c2b_payments",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_ip", sa.String(64)),
        sa.Column("headers", _JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("trans_id", sa.String(32)),
        sa.Column("bill_ref_number", sa.String(64)),
        sa.Column("amount", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255)),
        sa.Column("order_id", sa.Uuid(as_uuid=False)),
        sa.Column("payment_id", sa.Uuid(as_uuid=False)),
        sa.Column("result_code", sa.String(16)),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_c2b_payments_order_id_orders"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_c2b_payments"),
    )
    op.create_index("ix_c2b_payments_state_received", "c2b_payments", ["state", "received_at"])
    op.create_index("ix_c2b_payments_trans_id", "c2b_payments", ["trans_id"])
    op.create_index("ix_c2b_payments_order", "c2b_payments", ["order_id"])
    op.create_index("ix_c2b_payments_received", "c2b_payments", ["received_at"])
    op.create_index(
        "uq_c2b_payments_trans_id_counted", "c2b_payments", ["trans_id"], unique=True,
        postgresql_where=_COUNTED, sqlite_where=_COUNTED,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("c2b_payments")

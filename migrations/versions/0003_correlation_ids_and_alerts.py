"""correlation ids and alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:57:41.947057
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEAD = sa.text("dead_lettered_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("first_alerted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_alerted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_last_alerted", "alerts", ["last_alerted_at"], unique=False)
    op.add_column("outbox", sa.Column("correlation_id", sa.String(length=64), nullable=True))
    op.create_index("ix_payments_finished_at", "payments", ["finished_at"], unique=False)
    op.create_index(
        "ix_job_deliveries_dead", "job_deliveries", ["dead_lettered_at"], unique=False,
        postgresql_where=DEAD, sqlite_where=DEAD,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_job_deliveries_dead", table_name="job_deliveries")
    op.drop_index("ix_payments_finished_at", table_name="payments")
    op.drop_column("outbox", "correlation_id")
    op.drop_index("ix_alerts_last_alerted", table_name="alerts")
    op.drop_table("alerts")

"""Keep querying expired payments: the next-query index covers every payment that wants one

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FLIGHT = sa.text("status IN ('created', 'sending', 'pushed', 'unknown')")
WANTS_QUERY = sa.text("next_query_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_payments_next_query", table_name="payments")
    op.create_index(
        "ix_payments_next_query", "payments", ["next_query_at"], unique=False,
        postgresql_where=WANTS_QUERY, sqlite_where=WANTS_QUERY,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_payments_next_query", table_name="payments")
    op.create_index(
        "ix_payments_next_query", "payments", ["next_query_at"], unique=False,
        postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT,
    )  # fmt: skip

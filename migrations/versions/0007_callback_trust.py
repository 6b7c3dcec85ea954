"""Callback trust and retention: untrusted callbacks by payment; purge raw records by age

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = sa.text("sent_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_callback_inbox_payment", "callback_inbox", ["payment_id", "received_at"], unique=False
    )
    op.create_index("ix_daraja_exchanges_sent", "daraja_exchanges", ["sent_at"], unique=False)
    op.create_index(
        "ix_outbox_sent", "outbox", ["sent_at"], unique=False,
        postgresql_where=SENT, sqlite_where=SENT,
    )  # fmt: skip
    op.create_index(
        "ix_job_deliveries_last_started", "job_deliveries", ["last_started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_job_deliveries_last_started", table_name="job_deliveries")
    op.drop_index("ix_outbox_sent", table_name="outbox")
    op.drop_index("ix_daraja_exchanges_sent", table_name="daraja_exchanges")
    op.drop_index("ix_callback_inbox_payment", table_name="callback_inbox")

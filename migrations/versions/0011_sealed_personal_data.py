"""Personal data sealed at rest: sealed columns become text, blind-index columns added

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 08:00:00

Rows written before this revision keep their clear values (they are read as they are) until
`khalex-pay keys rotate-data` seals them. When the keys are set while migrating, the blind
indexes of existing rows are filled here, so look-ups by phone and by CheckoutRequestID find
them at once; otherwise `rotate-data` fills them. PayBill requests (c2b_payments, from
0010) get the same: their account reference is sealed, their raw bodies have MSISDN and
names sealed in place by `rotate-data`, and `phone_index` (the payer's number, when Daraja
sent one rather than a digest) is filled from the body.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from plumbing import sealing
from store.c2b import payer_index

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_FLIGHT = sa.text("status IN ('created', 'sending', 'pushed', 'unknown')")
_WANTS_QUERY = sa.text("next_query_at IS NOT NULL")
#: Partial indexes on payments that SQLite's table copy (batch mode) must not lose.
_PARTIAL = (
    ("ix_payments_pending_created", ["created_at"], False, _IN_FLIGHT),
    ("ix_payments_next_query", ["next_query_at"], False, _WANTS_QUERY),
    ("uq_payments_order_in_flight", ["order_id"], True, _IN_FLIGHT),
)
#: PayBill confirmations counted once per receipt (a partial index SQLite's copy must keep).
_C2B_COUNTED = sa.text("state IN ('matched', 'refund_due', 'unmatched')")
#: (table, column, width before this revision, nullable) of every column sealed here.
_SEALED = (
    ("payments", "phone_number", 12, False),
    ("payments", "customer_name", 200, False),
    ("payments", "customer_email", 254, False),
    ("payments", "checkout_request_id", 64, True),
    ("orders", "customer_name", 200, False),
    ("orders", "customer_email", 254, True),
    ("orders", "customer_phone", 12, False),
    ("orders", "delivery_address", 500, True),
    ("orders", "notes", 1000, True),
    ("callback_inbox", "checkout_request_id", 64, True),
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("uq_payments_phone_in_flight", table_name="payments")
    if sqlite:
        for name, *_ in _PARTIAL:
            op.drop_index(name, table_name="payments")
    op.drop_index("ix_callback_inbox_checkout", table_name="callback_inbox")
    for table in ("payments", "orders", "callback_inbox"):
        with op.batch_alter_table(table) as batch:
            for _, column, width, nullable in (s for s in _SEALED if s[0] == table):
                batch.alter_column(
                    column, existing_type=sa.String(width), type_=sa.Text(),
                    existing_nullable=nullable,
                )  # fmt: skip
            if table == "payments":
                batch.drop_constraint("uq_payments_checkout_request_id", type_="unique")
                batch.add_column(sa.Column("phone_index", sa.String(32), nullable=True))
                batch.add_column(sa.Column("checkout_index", sa.String(32), nullable=True))
                batch.create_unique_constraint("uq_payments_checkout_index", ["checkout_index"])
            elif table == "orders":
                batch.add_column(sa.Column("customer_phone_index", sa.String(32), nullable=True))
            else:
                batch.add_column(sa.Column("checkout_index", sa.String(32), nullable=True))
    if sqlite:
        _create_partial_indexes()
    op.create_index(
        "uq_payments_phone_in_flight", "payments", ["phone_index"], unique=True,
        postgresql_where=_IN_FLIGHT, sqlite_where=_IN_FLIGHT,
    )  # fmt: skip
    op.create_index("ix_orders_customer_phone_index", "orders", ["customer_phone_index"])
    op.create_index("ix_callback_inbox_checkout", "callback_inbox", ["checkout_index"])
    _seal_c2b(sqlite)
    _fill_indexes()


def _seal_c2b(sqlite: bool) -> None:
    """PayBill: the account reference is sealed, and the payer's number gets a blind index."""
    if sqlite:
        op.drop_index("uq_c2b_payments_trans_id_counted", table_name="c2b_payments")
    with op.batch_alter_table("c2b_payments") as batch:
        batch.alter_column(
            "bill_ref_number", existing_type=sa.String(64), type_=sa.Text(),
            existing_nullable=True,
        )  # fmt: skip
        batch.add_column(sa.Column("phone_index", sa.String(32), nullable=True))
    if sqlite:
        _create_c2b_counted()
    op.create_index("ix_c2b_payments_phone_index", "c2b_payments", ["phone_index"])


def _create_c2b_counted() -> None:
    op.create_index(
        "uq_c2b_payments_trans_id_counted", "c2b_payments", ["trans_id"], unique=True,
        postgresql_where=_C2B_COUNTED, sqlite_where=_C2B_COUNTED,
    )  # fmt: skip


def _fill_indexes() -> None:
    """Blind indexes of the rows already there, when the keys are installed."""
    try:
        keys = sealing.current()
    except sealing.SealingError:
        return
    conn = op.get_bind()
    for name, columns in (
        ("payments", {"phone_number": "phone_index", "checkout_request_id": "checkout_index"}),
        ("orders", {"customer_phone": "customer_phone_index"}),
        ("callback_inbox", {"checkout_request_id": "checkout_index"}),
    ):
        for source, target in columns.items():
            kind = "checkout" if source == "checkout_request_id" else "phone"
            t = sa.table(name, sa.column("id"), sa.column(source), sa.column(target))
            rows = conn.execute(sa.select(t.c.id, t.c[source]).where(t.c[source].is_not(None)))
            for row_id, value in rows.all():
                index = keys.blind_index(kind, keys.open(value))
                conn.execute(t.update().where(t.c.id == row_id).values({target: index}))
    c2b = sa.table("c2b_payments", sa.column("id"), sa.column("body"), sa.column("phone_index"))
    for row_id, body in conn.execute(sa.select(c2b.c.id, c2b.c.body)).all():
        if payer := payer_index(body):
            conn.execute(c2b.update().where(c2b.c.id == row_id).values(phone_index=payer))


def _create_partial_indexes() -> None:
    for name, columns, unique, where in _PARTIAL:
        op.create_index(
            name, "payments", columns, unique=unique, postgresql_where=where, sqlite_where=where
        )


def downgrade() -> None:
    """Structure only: sealed values must first be opened, or they will not fit the widths."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_c2b_payments_phone_index", table_name="c2b_payments")
    if sqlite:
        op.drop_index("uq_c2b_payments_trans_id_counted", table_name="c2b_payments")
    with op.batch_alter_table("c2b_payments") as batch:
        batch.drop_column("phone_index")
        batch.alter_column(
            "bill_ref_number", existing_type=sa.Text(), type_=sa.String(64),
            existing_nullable=True,
        )  # fmt: skip
    if sqlite:
        _create_c2b_counted()
    op.drop_index("ix_callback_inbox_checkout", table_name="callback_inbox")
    op.drop_index("ix_orders_customer_phone_index", table_name="orders")
    op.drop_index("uq_payments_phone_in_flight", table_name="payments")
    if sqlite:
        for name, *_ in _PARTIAL:
            op.drop_index(name, table_name="payments")
    for table in ("payments", "orders", "callback_inbox"):
        with op.batch_alter_table(table) as batch:
            if table == "payments":
                batch.drop_constraint("uq_payments_checkout_index", type_="unique")
                batch.drop_column("checkout_index")
                batch.drop_column("phone_index")
            elif table == "orders":
                batch.drop_column("customer_phone_index")
            else:
                batch.drop_column("checkout_index")
            for _, column, width, nullable in (s for s in _SEALED if s[0] == table):
                batch.alter_column(
                    column, existing_type=sa.Text(), type_=sa.String(width),
                    existing_nullable=nullable,
                )  # fmt: skip
            if table == "payments":
                batch.create_unique_constraint(
                    "uq_payments_checkout_request_id", ["checkout_request_id"]
                )
    if sqlite:
        _create_partial_indexes()
    op.create_index(
        "uq_payments_phone_in_flight", "payments", ["phone_number"], unique=True,
        postgresql_where=_IN_FLIGHT, sqlite_where=_IN_FLIGHT,
    )  # fmt: skip
    op.create_index("ix_callback_inbox_checkout", "callback_inbox", ["checkout_request_id"])

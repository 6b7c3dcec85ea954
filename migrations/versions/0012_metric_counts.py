"""metric counts kept by triggers (metric_deltas, metric_totals), payments.created_at index

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 07:40:00.000000

`/metrics` used to aggregate all of history at every scrape (seconds at a million
payments). From here on, every INSERT, UPDATE or DELETE on `payments` and `c2b_payments` (PayBill confirmations by
state) and every INSERT or UPDATE on `daraja_exchanges` appends what it changed in each counted figure to
`metric_deltas`, in the same transaction, whoever writes (our code, an operator's SQL, a
test). The scheduler folds the deltas into `metric_totals`; a scrape adds the two small
tables. Appending, never updating a shared row, means no two transactions ever wait on
each other for a counter.

PostgreSQL runs one statement-level trigger per statement (transition tables), so a bulk
statement costs one aggregated INSERT; SQLite (embedded, small) has row-level triggers.

Exchanges count on DELETE no more: the retention purge no longer makes the call counters
fall. The rows already stored are counted once, here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The buckets (seconds) of operations.ops.PROCESSING_BUCKETS_S and
#: operations.metrics.DARAJA_BUCKETS_S, frozen here as this revision counts them.
PROCESSING_BUCKETS_S = (2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0)
DARAJA_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_NUMBER = sa.Numeric(asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "metric_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("label1", sa.String(length=64), nullable=False),
        sa.Column("label2", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", _NUMBER, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_deltas")),
    )
    op.create_table(
        "metric_totals",
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("label1", sa.String(length=64), nullable=False),
        sa.Column("label2", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", _NUMBER, nullable=False),
        sa.PrimaryKeyConstraint("family", "label1", "label2", name=op.f("pk_metric_totals")),
    )
    op.create_table(
        "metric_watermarks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_watermarks")),
    )
    op.create_index("ix_payments_created", "payments", ["created_at"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in (*_backfill(dialect), *_triggers(dialect)):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in _TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS khalex_counts_{event} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS khalex_{table}_counts()")
    else:
        for table in _TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS khalex_{table}_counts_{event}")
    op.drop_index("ix_payments_created", table_name="payments")
    op.drop_table("metric_watermarks")
    op.drop_table("metric_totals")
    op.drop_table("metric_deltas")


# --- What one row counts for ------------------------------------------------------------------


def _seconds(dialect: str, start: str, end: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _bucket(value: str, bounds: Sequence[float], scale: int = 1) -> str:
    """The label of the smallest bound holding `value` (`+Inf` past the last)."""
    whens = " ".join(f"WHEN {value} <= {round(b * scale, 6)!r} THEN '{b!r}'" for b in bounds)
    return f"CASE {whens} ELSE '+Inf' END"


#: One counted figure: (family, label1, label2, n, total) expressions and when a row counts.
Part = tuple[tuple[str, str, str, str, str], str]


def _payment_parts(dialect: str, r: str, sign: int) -> list[Part]:
    """What each payment row `r` counts for, with `sign` (1 added, -1 taken away)."""
    secs = _seconds(dialect, f"{r}.created_at", f"{r}.finished_at")
    return [
        (("'payments'", f"{r}.status", "''", str(sign), "0"), "1 = 1"),
        (
            ("'failures'", f"{r}.failure_reason", "''", str(sign), "0"),
            f"{r}.failure_reason IS NOT NULL AND {r}.status <> 'completed'",
        ),
        (("'late_successes'", "''", "''", str(sign), "0"), f"{r}.late_success"),
        (
            ("'processing'", f"{r}.status", _bucket(secs, PROCESSING_BUCKETS_S), str(sign),
             f"{sign} * {secs}"),
            f"{r}.finished_at IS NOT NULL",
        ),
    ]  # fmt: skip


def _exchange_parts(_dialect: str, r: str, sign: int) -> list[Part]:
    """What each Daraja exchange row `r` counts for."""
    outcome = (
        f"CASE WHEN {r}.error IS NOT NULL THEN 'transport_error' "
        f"WHEN {r}.http_status < 300 THEN 'ok' WHEN {r}.http_status < 500 THEN 'http_4xx' "
        "ELSE 'http_5xx' END"
    )
    latency = _bucket(f"{r}.elapsed_ms", DARAJA_BUCKETS_S, 1000)
    return [
        (
            ("'daraja_calls'", f"{r}.operation", outcome, str(sign), "0"),
            f"{r}.answered_at IS NOT NULL",
        ),
        (
            ("'daraja_latency'", f"{r}.operation", latency, str(sign),
             f"{sign} * {r}.elapsed_ms / 1000.0"),
            f"{r}.elapsed_ms IS NOT NULL",
        ),
    ]  # fmt: skip


def _c2b_parts(_dialect: str, r: str, sign: int) -> list[Part]:
    """What each PayBill (C2B) row `r` counts for: confirmations by state."""
    return [
        (("'paybill'", f"{r}.state", "''", str(sign), "0"), f"{r}.kind = 'confirmation'"),
    ]


_COLUMNS = ("family", "label1", "label2", "n", "total")


def _select(part: Part, source: str) -> str:
    exprs, condition = part
    columns = ", ".join(f"{e} AS {c}" for e, c in zip(exprs, _COLUMNS, strict=True))
    return f"SELECT {columns} {source} WHERE {condition}"


def _selects(parts: list[Part], source: str = "") -> list[str]:
    return [_select(part, source) for part in parts]


def _insert_deltas(selects: list[str]) -> str:
    """One INSERT of the summed parts (none when they cancel out, as most updates do)."""
    union = " UNION ALL ".join(selects)
    # Built from this module's own text only: no value from outside reaches it.
    return " ".join((
        "INSERT INTO metric_deltas (family, label1, label2, n, total)",
        "SELECT family, label1, label2, sum(n), sum(total)",
        f"FROM ({union}) AS parts",
        "GROUP BY family, label1, label2 HAVING sum(n) <> 0 OR sum(total) <> 0",
    ))  # fmt: skip


_TABLES = {
    "payments": _payment_parts,
    "daraja_exchanges": _exchange_parts,
    "c2b_payments": _c2b_parts,
}
#: Exchanges are never counted down: the retention purge deletes old ones. PayBill
#: confirmations are a gauge of the rows stored (as before), so a purge counts them down.
_EVENTS = {
    "payments": ("insert", "update", "delete"),
    "daraja_exchanges": ("insert", "update"),
    "c2b_payments": ("insert", "update", "delete"),
}


def _backfill(dialect: str) -> list[str]:
    """The rows stored before this revision, counted once."""
    return [
        _insert_deltas(_selects(parts(dialect, "r", 1), f"FROM {table} AS r"))
        for table, parts in _TABLES.items()
    ]


def _triggers(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [s for table in _TABLES for s in _pg_triggers(table)]
    return [s for table in _TABLES for s in _sqlite_triggers(table)]


def _pg_triggers(table: str) -> list[str]:
    parts = _TABLES[table]
    new = _selects(parts("postgresql", "r", 1), "FROM new_rows AS r")
    old = _selects(parts("postgresql", "r", -1), "FROM old_rows AS r")
    function = f"""
        CREATE FUNCTION khalex_{table}_counts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_insert_deltas(new)};
            ELSIF TG_OP = 'UPDATE' THEN
                {_insert_deltas(new + old)};
            ELSE
                {_insert_deltas(old)};
            END IF;
            RETURN NULL;
        END $$"""
    referencing = {
        "insert": "NEW TABLE AS new_rows",
        "update": "NEW TABLE AS new_rows OLD TABLE AS old_rows",
        "delete": "OLD TABLE AS old_rows",
    }
    return [function] + [
        f"CREATE TRIGGER khalex_counts_{event} AFTER {event.upper()} ON {table} "
        f"REFERENCING {referencing[event]} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION khalex_{table}_counts()"
        for event in _EVENTS[table]
    ]


def _sqlite_triggers(table: str) -> list[str]:
    parts = _TABLES[table]
    new, old = _selects(parts("sqlite", "NEW", 1)), _selects(parts("sqlite", "OLD", -1))
    rows = {"insert": new, "update": new + old, "delete": old}
    return [
        f"CREATE TRIGGER khalex_{table}_counts_{event} AFTER {event.upper()} ON {table} "
        f"BEGIN {_insert_deltas(rows[event])}; END"
        for event in _EVENTS[table]
    ]

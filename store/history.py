"""The append-only event rows of payments and orders: one writer and one reader for both.

Each history table has the same columns beside the owner's id (`payment_id`, `order_id`):
kind, from_status, to_status, data and created_at. Personal values in `data` (a
CheckoutRequestID, say) are sealed like those of raw records (store/raw.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from store import raw


def append(  # noqa: PLR0917 - the call sites read as one sentence
    conn: sa.Connection,
    owner: sa.Column[Any],
    owner_id: str,
    kind: str,
    from_status: str | None,
    to_status: str,
    data: dict[str, object],
    at: datetime,
) -> None:
    """Add one event row to `owner`'s table (e.g. `payment_events.c.payment_id`)."""
    values = row(owner, owner_id, kind, from_status, to_status, data, at)
    conn.execute(_insert(owner.table), values)


def appended_after(owner: sa.Column[Any], written: sa.CTE) -> sa.CTE:
    """A CTE that adds one event row for each row `written` returns (its `id` is the
    owner's), in the statement that writes them: the change and its event are one statement.

    Its values are bound by name; `event_params` gives them.
    """
    t = owner.table
    return (
        t.insert()
        .from_select(
            [owner.name, "kind", "from_status", "to_status", "data", "created_at"],
            sa.select(
                written.c.id,
                *(sa.bindparam(f"e_{name}", type_=t.c[name].type) for name in _EVENT_COLUMNS),
            ),
        )
        .cte(f"{t.name}_appended")
    )


#: The columns of an event row besides its owner's id, in `appended_after`'s order.
_EVENT_COLUMNS = ("kind", "from_status", "to_status", "data", "created_at")


def event_params(
    kind: str, from_status: str | None, to_status: str, data: dict[str, object], at: datetime
) -> dict[str, object]:
    """The values `appended_after`'s statement binds, personal ones sealed as `append` does."""
    return {
        "e_kind": kind, "e_from_status": from_status, "e_to_status": to_status,
        "e_data": raw.seal_tree(data), "e_created_at": at,
    }  # fmt: skip


#: One plain INSERT per history table, built once (its columns come with each call).
_INSERTS: dict[str, sa.Insert] = {}


def _insert(table: sa.Table) -> sa.Insert:
    stmt = _INSERTS.get(table.name)
    if stmt is None:
        stmt = _INSERTS[table.name] = table.insert()
    return stmt


def of(conn: sa.Connection, owner: sa.Column[Any], owner_id: str) -> list[dict[str, Any]]:
    """The events of `owner_id`, oldest first."""
    table = owner.table
    query = sa.select(table).where(owner == owner_id).order_by(table.c.id)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    return [{**row, "data": raw.open_tree(row["data"])} for row in rows]


def row(  # noqa: PLR0917 - as `append`
    owner: sa.Column[Any],
    owner_id: str,
    kind: str,
    from_status: str | None,
    to_status: str,
    data: dict[str, object],
    at: datetime,
) -> dict[str, object]:
    """The values `append` writes, for a writer that inserts the row in a statement of its own
    (store/payments.py: a new payment's rows in one statement)."""
    return {
        owner.name: owner_id, "kind": kind, "from_status": from_status, "to_status": to_status,
        "data": raw.seal_tree(data), "created_at": at,
    }  # fmt: skip

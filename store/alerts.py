"""Claims on the `alerts` table: what was alerted, so it is not alerted again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import alerts


def claim_once(conn: sa.Connection, kind: str, keys: list[str], now: datetime) -> list[str]:
    """Record `keys`; returns those never recorded before (in `keys`' order)."""
    if not keys:
        return []
    known = set(conn.execute(sa.select(alerts.c.key).where(alerts.c.key.in_(keys))).scalars())
    fresh = [key for key in keys if key not in known]
    if not fresh:
        return []
    rows = [_row(key, kind, now) for key in fresh]
    won = set(conn.execute(_insert_new(conn).values(rows).returning(alerts.c.key)).scalars())
    return [key for key in fresh if key in won]


def claim_repeating(conn: sa.Connection, kind: str, key: str, now: datetime, repeat_s: int) -> bool:
    """True when `key` was never alerted, or last alerted at least `repeat_s` ago."""
    if conn.execute(_insert_new(conn).values(_row(key, kind, now)).returning(alerts.c.key)).first():
        return True
    stmt = (
        alerts.update()
        .where(alerts.c.key == key, alerts.c.last_alerted_at <= now - timedelta(seconds=repeat_s))
        .values(last_alerted_at=now, times=alerts.c.times + 1)
    )
    return conn.execute(stmt).rowcount == 1


def _row(key: str, kind: str, now: datetime) -> dict[str, object]:
    return {"key": key, "kind": kind, "first_alerted_at": now, "last_alerted_at": now}


def _insert_new(conn: sa.Connection) -> Any:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(alerts).on_conflict_do_nothing(index_elements=[alerts.c.key])

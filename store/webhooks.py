"""Shop webhook events and their delivery attempts (`payments.shop_webhooks` decides)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from store.tables import webhook_attempts, webhook_events

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)


@dataclass(frozen=True)
class WebhookEvent:
    """One `webhook_events` row."""

    id: str
    type: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sending_until: datetime | None
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> WebhookEvent:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: the shop's status and answer, or why there was none."""

    attempted_at: datetime
    http_status: int | None
    latency_ms: int
    answer: str | None
    error: str | None
    manual: bool = False


def insert(
    conn: sa.Connection, event_id: str, event_type: str, payload: dict[str, Any],
    *, now: datetime, next_attempt_at: datetime,
) -> None:  # fmt: skip
    conn.execute(
        webhook_events.insert().values(
            id=event_id, type=event_type, payload=payload, state=PENDING, attempts=0,
            created_at=now, next_attempt_at=next_attempt_at,
        )
    )  # fmt: skip


def get(conn: sa.Connection, event_id: str, *, lock: bool = False) -> WebhookEvent | None:
    query = sa.select(webhook_events).where(webhook_events.c.id == event_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return WebhookEvent.from_row(row) if row else None


def update(conn: sa.Connection, event_id: str, **values: object) -> None:
    conn.execute(webhook_events.update().where(webhook_events.c.id == event_id).values(**values))


def add_attempt(conn: sa.Connection, event_id: str, attempt: Attempt) -> None:
    conn.execute(webhook_attempts.insert().values(event_id=event_id, **attempt.__dict__))


def claim_due(conn: sa.Connection, now: datetime, then: datetime, limit: int) -> list[str]:
    """Pending events due by `now` (skipping ones another scheduler holds), moved to `then`."""
    t = webhook_events
    ids = list(
        conn.execute(
            sa.select(t.c.id)
            .where(t.c.state == PENDING, t.c.next_attempt_at <= now)  # the partial index
            .order_by(t.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        conn.execute(t.update().where(t.c.id.in_(ids)).values(next_attempt_at=then))
    return ids


def listing(conn: sa.Connection, state: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest events (of `state`), each with its last attempt (`last_attempt`, or None)."""
    t, a = webhook_events, webhook_attempts
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(t.c.state == state)
    events = [dict(row._mapping) for row in conn.execute(query)]
    newest = (
        sa.select(sa.func.max(a.c.id))
        .where(a.c.event_id.in_([e["id"] for e in events]))
        .group_by(a.c.event_id)
    )
    last = {
        row.event_id: dict(row._mapping)
        for row in conn.execute(sa.select(a).where(a.c.id.in_(newest)))
    }
    return [{**e, "last_attempt": last.get(e["id"])} for e in events]


def attempts(conn: sa.Connection, event_id: str) -> list[dict[str, Any]]:
    """The event's attempts, oldest first."""
    a = webhook_attempts
    query = sa.select(a).where(a.c.event_id == event_id).order_by(a.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]

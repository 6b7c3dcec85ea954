"""The shop servers' API keys: made, listed, revoked, and looked up by their hash.

A key is 256 random bits; only its SHA-256 is stored (a fast hash is enough for a secret
this long: there is nothing to guess). The key itself is returned once, by `create`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from store.db import utcnow
from store.tables import api_keys

#: Every key starts with this, so a leaked one is recognisable (and secret scanners can match).
KEY_PREFIX = "kp_"
#: How many characters of a key `keys list` shows.
DISPLAY_CHARS = 11
#: `last_used_at` is moved at most this often, so a busy key does not write on every request.
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create(conn: sa.Connection, name: str) -> tuple[ApiKey, str]:
    """A new key named `name`: its record and the key itself (shown once, never stored)."""
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise ValueError("a key's name is 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        id=str(uuid.uuid4()), name=name, prefix=key[:DISPLAY_CHARS], created_at=utcnow(),
        revoked_at=None, last_used_at=None,
    )  # fmt: skip
    conn.execute(
        api_keys.insert().values(
            id=record.id, name=record.name, prefix=record.prefix, key_hash=hash_key(key),
            created_at=record.created_at,
        )
    )  # fmt: skip
    return record, key


def all_keys(conn: sa.Connection) -> list[ApiKey]:
    rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
    return [_record(row) for row in rows]


def revoke(conn: sa.Connection, key_id: str) -> ApiKey | None:
    """Revoke the key `key_id` (again: no change); None when there is no such key."""
    try:
        uuid.UUID(key_id)
    except ValueError:
        return None
    conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    return _record(row) if row else None


def authenticate(conn: sa.Connection, key: str) -> ApiKey | None:
    """The live key whose secret is `key`, its use noted; None for an unknown or revoked one."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = conn.execute(
        sa.select(api_keys).where(
            api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    now = utcnow()
    last_used = row.last_used_at
    if last_used is None or last_used < now - LAST_USED_GRANULARITY:
        # At most one write a minute per key: most requests only read.
        conn.execute(
            api_keys.update()
            .where(
                api_keys.c.id == row.id,
                sa.or_(
                    api_keys.c.last_used_at.is_(None),
                    api_keys.c.last_used_at < now - LAST_USED_GRANULARITY,
                ),
            )
            .values(last_used_at=now)
        )
    return _record(row)


def _record(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=str(m["id"]), name=m["name"], prefix=m["prefix"], created_at=m["created_at"],
        revoked_at=m["revoked_at"], last_used_at=m["last_used_at"],
    )  # fmt: skip

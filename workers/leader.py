"""One scheduler acts at a time: a PostgreSQL session advisory lock held on its own connection.

If the leader's process or connection dies, PostgreSQL releases the lock and another
scheduler takes over at its next tick. SQLite (the one-process dev mode) needs no lock.
"""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store import db

log = logging.getLogger(__name__)

#: Advisory lock key: "khalex-scheduler" folded into a bigint.
LOCK_KEY = 0x6B68616C6578


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        """True while this process is the leader; tries to become it otherwise."""
        if self._engine.dialect.name != "postgresql":
            return True
        if self._conn is not None and self._alive():
            return True
        self.release()
        conn = self._engine.connect()
        got = db.try_advisory_lock(conn, LOCK_KEY)
        conn.commit()
        if not got:
            conn.close()
            return False
        log.info("this scheduler is now the leader")
        self._conn = conn
        return True

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            db.ping(self._conn)
            self._conn.commit()
        except sa.exc.DBAPIError:
            log.warning("lost the leader connection; trying to lead again")
            return False
        return True

    def release(self) -> None:
        """Stop leading. The session itself is closed: the lock is a *session* lock, and a
        connection handed back to the pool would keep holding it."""
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

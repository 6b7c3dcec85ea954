"""Engines and transactions, the same for PostgreSQL (psycopg 3) and SQLite."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

#: libpq's codes for an empty query's result and a working connection.
EMPTY_QUERY = 0  # PGRES_EMPTY_QUERY
CONNECTION_OK = 0

#: How long SQLite waits for another writer before giving up (seconds).
SQLITE_BUSY_TIMEOUT_S = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Connections a process keeps to PostgreSQL, at most. All are kept once opened: the pool
#: closes an overflow connection as soon as it is returned, so a busy process would open and
#: close connections (a backend start each) many times a second.
POOL_SIZE = 15


def make_engine(url: str, *, pool_size: int = POOL_SIZE, ping: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so threads can share it.

    `ping=False` checks out PostgreSQL connections without pinging them: for a process
    whose every statement is retried (`retrying`, or the job it runs in), where a backend
    that died while idle in the pool costs one retry rather than a failed request.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # Every checkout is pinged, so a backend killed (or a database restarted) between two
    # requests is found by the pool, not by a request: pinging only idle connections failed
    # the fault-injection suite, and so did looking at the socket instead of pinging (a
    # backend terminated a moment before the checkout had not closed its socket yet). The
    # ping is an empty query sent through libpq itself (`_ping_on_checkout`), not
    # `pool_pre_ping`'s SELECT 1 through a cursor: the same round trip for a fraction of the CPU.
    libpq_ping = ping and sa.engine.make_url(url).get_driver_name() == "psycopg"
    engine = sa.create_engine(
        url,
        pool_pre_ping=ping and not libpq_ping,  # another driver: SQLAlchemy's own ping
        pool_size=pool_size,
        max_overflow=0,
    )
    if libpq_ping:
        event.listen(engine, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Ping a pooled psycopg connection as it is checked out; a dead one is replaced.

    Raising DisconnectionError makes the pool discard the connection and check out
    another (a fresh one when every pooled one is dead), as `pool_pre_ping` does.
    """
    pgconn = dbapi_connection.pgconn
    try:
        result = pgconn.exec_(b"")
    except Exception as exc:  # the socket is gone: libpq could not even send
        raise sa.exc.DisconnectionError(f"ping failed: {exc}") from exc
    if result.status != EMPTY_QUERY or pgconn.status != CONNECTION_OK:
        raise sa.exc.DisconnectionError(f"ping failed: {pgconn.error_message!r}")


def autocommit(engine: Engine) -> Engine:
    """`engine` for single statements (reads, a lone UPDATE): no BEGIN and no ROLLBACK
    round trips around them. SQLite keeps its transactions (see `_sqlite_begin_immediate`).

    Made once per engine and kept: making one copies the engine's options and event
    listeners, which costs more CPU than a statement.
    """
    if (
        engine.dialect.name == "sqlite"
        or engine.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        return engine  # SQLite, or already the autocommit copy
    made: Engine | None = getattr(engine, _AUTOCOMMIT, None)
    if made is None:
        made = engine.execution_options(isolation_level="AUTOCOMMIT")
        setattr(engine, _AUTOCOMMIT, made)
    return made


#: The attribute an engine keeps its autocommit copy in, so the two live and go together.
#: (A weak-keyed map would keep every engine alive for ever: the copy refers to its engine.
#: The test suite's dropped engines then held their pooled connections until PostgreSQL
#: refused new ones.)
_AUTOCOMMIT = "_khalex_autocommit"


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN; we issue it ourselves (below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    # Take the write lock at BEGIN: a read-then-write transaction that upgrades later can
    # fail with "database is locked" without waiting for the busy timeout.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_unique_violation(exc: sa.exc.IntegrityError, constraint: str | None = None) -> bool:
    """True when `exc` is a unique-constraint violation (on `constraint`, if named)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        diag = getattr(orig, "diag", None)
        name = getattr(diag, "constraint_name", None)
        return bool(sqlstate == "23505" and (constraint is None or name == constraint))
    text = str(orig)
    return "UNIQUE constraint failed" in text and (
        constraint is None or _sqlite_mentions(text, constraint)
    )


def _sqlite_mentions(text: str, constraint: str) -> bool:
    # SQLite names the columns, not the index: "UNIQUE constraint failed: payments.phone_index"
    columns = {
        "uq_payments_phone_in_flight": "payments.phone_index",
        "uq_payments_checkout_index": "payments.checkout_index",
        "uq_payments_mpesa_receipt_number": "payments.mpesa_receipt_number",
        "pk_idempotency_keys": "idempotency_keys.key",
        "uq_payments_order_in_flight": "payments.order_id",
        "pk_order_idempotency_keys": "order_idempotency_keys.key",
    }
    return columns.get(constraint, constraint) in text


def retrying(work: Callable[[], T], *, attempts: int = 6, first_wait_s: float = 0.2) -> T:
    """Run `work`, again after a lost connection or a failover, with a doubling wait.

    For writes we must not lose (a push's answer, a callback): the database may be
    restarting or may have killed our backend. `work` must be its own transaction, safe to
    run again.
    """
    wait = first_wait_s
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except sa.exc.OperationalError as exc:
            if attempt == attempts:
                raise
            reason = type(exc.orig).__name__
            log.warning("database unavailable (%s); retrying in %.1f s", reason, wait)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def ping(conn: sa.Connection) -> bool:
    """True when the database answers on `conn`."""
    return conn.execute(sa.select(1)).scalar() == 1


def try_advisory_lock(conn: sa.Connection, key: int) -> bool:
    """PostgreSQL's session advisory lock `key`, held by `conn`'s session if it was free."""
    return bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())


def among(
    conn: sa.Connection, column: sa.ColumnElement[T], values: Sequence[T]
) -> sa.ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL.

    An IN list of N values is N parameters: a statement text of its own per N, which the
    driver parses again and the server plans again. `= ANY(array)` is one text, whatever
    N. SQLite has no arrays: it keeps the IN list.
    """
    if conn.dialect.name == "postgresql":
        array = postgresql.ARRAY(column.type)
        return column == sa.any_(sa.bindparam(None, list(values), type_=array))
    return column.in_(values)

"""Every raw Daraja request and answer, written before we act on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store import raw
from store.db import autocommit, retrying, utcnow
from store.tables import daraja_exchanges

#: Longest answer body kept (an HTML error page can be large).
MAX_ANSWER_CHARS = 20_000


#: The columns of a request, each from its parameter `r_<name>` (`request_params`).
_REQUEST = ("payment_id", "operation", "url", "request", "sent_at")
_REQUEST_VALUES = {
    name: sa.bindparam(f"r_{name}", type_=daraja_exchanges.c[name].type) for name in _REQUEST
}
#: The two statements of an exchange, built once: one made per call costs more CPU than
#: its round trip.
_INSERT = daraja_exchanges.insert().values(_REQUEST_VALUES).returning(daraja_exchanges.c.id)
ANSWER = (
    daraja_exchanges.update()
    .where(daraja_exchanges.c.id == sa.bindparam("handle"))
    .values(
        {
            name: sa.bindparam(f"a_{name}", type_=daraja_exchanges.c[name].type)
            for name in ("http_status", "answer", "error", "elapsed_ms", "answered_at")
        }
    )
)


class StoreRecorder:
    """Daraja client recorder that writes one `daraja_exchanges` row per HTTP attempt.

    Each write commits on its own, so the request is durable before it is sent and the
    answer is durable before the caller acts on it.

    With `hold_answer`, the last attempt's answer is held instead, for the caller to write
    in the very statement that acts on it (`held_answer`); an earlier attempt's is written
    before the next request goes out. Whatever the caller does not take it must `flush()`
    before acting on the call's end, or when interrupted: an answer held is not yet stored.
    """

    def __init__(
        self, engine: Engine, payment_id: str | None, *, hold_answer: bool = False
    ) -> None:
        # Each write is one statement: in autocommit it is committed by itself, without
        # the BEGIN and COMMIT round trips (on SQLite, a transaction of its own as before).
        self._engine = autocommit(engine)
        self._payment_id = payment_id
        self._hold = hold_answer
        self._held: dict[str, object] | None = None

    def request_sent(self, operation: str, url: str, body: Mapping[str, object]) -> object:
        self.flush()
        return retrying(lambda: self._insert(operation, url, body))

    def _insert(self, operation: str, url: str, body: Mapping[str, object]) -> int:
        with self._engine.begin() as conn:
            params = request_params(self._payment_id, operation, url, body)
            return int(conn.execute(_INSERT, params).scalar_one())

    def answer_received(
        self,
        handle: object,
        http_status: int | None,
        text: str | None,
        error: str | None,
        elapsed_ms: int,
    ) -> None:
        params = answer_params(handle, http_status, text, error, elapsed_ms)
        if self._hold:
            self._held = params
            return
        # The answer may hold the only copy of a CheckoutRequestID: wait out a database blip.
        retrying(lambda: store_answer(self._engine, params), attempts=8)

    def held_answer(self) -> dict[str, object] | None:
        """The held answer's parameters for `ANSWER` (or a statement holding it), handed
        over once: whoever takes it writes it."""
        held, self._held = self._held, None
        return held

    def flush(self) -> None:
        """Write the held answer, if any; it stays held if the write fails."""
        held = self._held
        if held is not None:
            retrying(lambda: store_answer(self._engine, held), attempts=8)
            self._held = None


def request_params(
    payment_id: str | None, operation: str, url: str, body: Mapping[str, object]
) -> dict[str, object]:
    """A request's parameters (`r_<column>`): its body sealed, its URL cut to size."""
    return {
        "r_payment_id": payment_id, "r_operation": operation, "r_url": url[:255],
        "r_request": raw.seal_tree(dict(body)), "r_sent_at": utcnow(),
    }  # fmt: skip


def requested_after(moved: sa.CTE) -> sa.CTE:
    """The request (`request_params`) stored by the statement whose `moved` CTE moved a
    payment, and only if it did: its `id` is the exchange's handle."""
    t = daraja_exchanges
    values = sa.select(*_REQUEST_VALUES.values()).where(sa.exists(sa.select(moved.c.id)))
    return t.insert().from_select(list(_REQUEST), values).returning(t.c.id).cte("requested")


def request_id(conn: sa.Connection, payment_id: str, sent_at: object) -> int | None:
    """The exchange id of the payment's request stored at `sent_at` (as `request_params`
    set it), if there is one."""
    t = daraja_exchanges
    query = sa.select(t.c.id).where(t.c.payment_id == payment_id, t.c.sent_at == sent_at)
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def store_answer(engine: Engine, params: dict[str, object]) -> None:
    """Write an answer (`answer_params`) to its exchange row, committed on its own."""
    with autocommit(engine).begin() as conn:
        conn.execute(ANSWER, params)


def answer_params(
    handle: object, http_status: int | None, text: str | None, error: str | None, elapsed_ms: int
) -> dict[str, object]:
    """`ANSWER`'s parameters: the answer sealed and cut to size."""
    answer = raw.seal_personal(text[:MAX_ANSWER_CHARS]) if text is not None else None
    return {
        "handle": handle, "a_http_status": http_status, "a_answer": answer,
        "a_error": error[:500] if error else None, "a_elapsed_ms": elapsed_ms,
        "a_answered_at": utcnow(),
    }  # fmt: skip


def for_payment(conn: sa.Connection, payment_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(daraja_exchanges)
        .where(daraja_exchanges.c.payment_id == payment_id)
        .order_by(daraja_exchanges.c.id)
    )
    return [_opened(dict(row._mapping)) for row in conn.execute(query)]


def _opened(row: dict[str, Any]) -> dict[str, Any]:
    answer = row["answer"]
    return {
        **row,
        "request": raw.open_tree(row["request"]),
        "answer": raw.open_personal(answer) if answer is not None else None,
    }


def push_answers(conn: sa.Connection, payment_id: str) -> list[str]:
    """The bodies of the HTTP 200 answers to the payment's STK pushes, newest first.

    A worker may die after storing an answer and before applying it: this is where the
    push's CheckoutRequestID is then found again.
    """
    t = daraja_exchanges
    query = (
        sa.select(t.c.answer)
        .where(
            t.c.payment_id == payment_id, t.c.operation == "stk_push", t.c.http_status == 200,
            t.c.answer.is_not(None),
        )
        .order_by(t.c.id.desc())
    )  # fmt: skip
    return [raw.open_personal(str(text)) for text in conn.execute(query).scalars()]

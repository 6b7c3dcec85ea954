"""Re-sealing everything under the first data key (`khalex-pay keys rotate-data`).

Walks every table that holds sealed values in primary-key order, a batch per transaction:
sealed columns not under the first key (clear legacy values included) are sealed again,
raw records and event data have their personal values (re)sealed, and missing blind indexes
are filled. Each batch commits, so a run that stops keeps what it did and a second run
finds only what is left; a batch locks its few rows for milliseconds, never a table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from plumbing import sealing
from store import c2b, raw
from store.db import retrying
from store.sealed import CHECKOUT, PHONE, Sealed
from store.tables import (
    c2b_payments,
    callback_inbox,
    daraja_exchanges,
    order_events,
    orders,
    payment_events,
    payments,
    refused_requests,
)

#: Rows per transaction: small, so the rows a batch locks are free again at once.
BATCH = 200


def _field(value: str) -> str:
    keys = sealing.current()
    return value if keys.is_current(value) else keys.seal(keys.open(value))


def _body(text: str) -> str:
    """A raw body sealed under the first key: old tokens re-sealed, clear values sealed."""
    return raw.seal_personal(sealing.TOKEN.sub(lambda m: _field(m.group()), text))


def _tree(node: Any) -> Any:
    if isinstance(node, dict):
        return {_tree(k): _tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_tree(v) for v in node]
    return _field(node) if isinstance(node, str) and sealing.is_sealed(node) else node


def _json(node: Any) -> Any:
    return raw.seal_tree(_tree(node))


#: How each kind of stored column is brought under the first key.
FIELD, BODY, JSON = _field, _body, _json

#: A blind index of a row (its stored, perhaps sealed, values), or None when it has none.
Indexer = Callable[[sa.RowMapping], str | None]


def _of(source: str, kind: str) -> Indexer:
    """The blind index of sealed column `source`, as `kind`."""

    def index(row: sa.RowMapping) -> str | None:
        keys = sealing.current()
        value = row[source]
        return None if value is None else keys.blind_index(kind, keys.open(value))

    return index


def _payer(row: sa.RowMapping) -> str | None:
    return c2b.payer_index(row["body"])


@dataclass(frozen=True)
class Target:
    """One table: its key, its columns and how each is re-sealed, its blind indexes."""

    table: sa.Table
    columns: dict[str, Callable[[Any], Any]]
    #: index column -> how it is made from the row's columns (filled when missing)
    indexes: dict[str, Indexer]

    @property
    def name(self) -> str:
        return self.table.name


TARGETS = (
    Target(payments, dict.fromkeys(
        ("phone_number", "customer_name", "customer_email", "checkout_request_id"), FIELD),
        {"phone_index": _of("phone_number", PHONE),
         "checkout_index": _of("checkout_request_id", CHECKOUT)}),
    Target(orders, dict.fromkeys(
        ("customer_name", "customer_email", "customer_phone", "delivery_address", "notes"), FIELD),
        {"customer_phone_index": _of("customer_phone", PHONE)}),
    Target(callback_inbox, {"checkout_request_id": FIELD, "body": BODY},
           {"checkout_index": _of("checkout_request_id", CHECKOUT)}),
    Target(c2b_payments, {"bill_ref_number": FIELD, "body": BODY}, {"phone_index": _payer}),
    Target(daraja_exchanges, {"request": JSON, "answer": BODY}, {}),
    Target(refused_requests, {"body": BODY}, {}),
    Target(payment_events, {"data": JSON}, {}),
    Target(order_events, {"data": JSON}, {}),
)  # fmt: skip


@dataclass(frozen=True)
class Progress:
    table: str
    seen: int  # rows of this table looked at so far
    total: int  # rows of this table when it started
    changed: int  # rows of this table re-sealed so far


def rotate(engine: Engine, on_progress: Callable[[Progress], None] | None = None) -> int:
    """Re-seal every table under the first key; returns how many rows changed."""
    changed = 0
    for target in TARGETS:
        for progress in _rotate_table(engine, target):
            if on_progress:
                on_progress(progress)
            changed_here = progress.changed
        changed += changed_here
    return changed


def _rotate_table(engine: Engine, target: Target) -> Iterator[Progress]:
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(target.table)).scalar_one()
    seen = changed = 0
    after: Any = None
    yield Progress(target.name, 0, total, 0)
    while True:
        done, n, after = retrying(functools.partial(_batch, engine, target, after))
        seen, changed = seen + done, changed + n
        yield Progress(target.name, min(seen, total), max(total, seen), changed)
        if done < BATCH:
            return


def _batch(engine: Engine, target: Target, after: Any) -> tuple[int, int, Any]:
    """One transaction: BATCH rows after key `after` (locked), re-sealed where needed."""
    t = target.table
    (key,) = t.primary_key.columns
    # Raw text, not through the Sealed type: we must see which key sealed each value.
    cols = [sa.type_coerce(t.c[name], sa.Text if _sealed(t.c[name]) else t.c[name].type)
            .label(name) for name in target.columns]  # fmt: skip
    index_cols = [t.c[name] for name in target.indexes]
    query = sa.select(key, *cols, *index_cols).order_by(key).limit(BATCH).with_for_update()
    if after is not None:
        query = query.where(key > after)
    with engine.begin() as conn:
        rows = conn.execute(query).all()
        updated = 0
        for row in rows:
            values = _new_values(target, row._mapping)
            if values:
                conn.execute(_raw_update(t, key, row._mapping[key.name], values))
                updated += 1
    return len(rows), updated, rows[-1]._mapping[key.name] if rows else after


def _sealed(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, Sealed)


def _new_values(target: Target, row: sa.RowMapping) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, reseal in target.columns.items():
        old = row[name]
        if old is not None and (new := reseal(old)) != old:
            values[name] = new
    for index, make in target.indexes.items():
        if row[index] is None and (made := make(row)) is not None:
            values[index] = made
    return values


def _raw_update(
    t: sa.Table, key: sa.Column[Any], key_value: Any, values: dict[str, Any]
) -> sa.Update:
    # Sealed values are written as they are (already sealed), not through the column type.
    params = {
        name: sa.type_coerce(sa.literal(v, sa.Text), sa.Text) if _sealed(t.c[name]) else v
        for name, v in values.items()
    }
    return t.update().where(key == key_value).values(**params)

"""The webhook's door on PostgreSQL and SQLite: a callback on its own payment's URL is
stored and queued in one go; one that names another payment is never queued to move it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrations.run import upgrade
from payments import callbacks, initiation
from payments.container import Container
from payments.jobs import PROCESS_CALLBACK
from plumbing import correlation
from plumbing.settings import load_settings
from store import inbox
from store.db import make_engine
from store.outbox import Job
from store.tables import callback_inbox, outbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, ScriptedDaraja, new_payment

pytestmark = pytest.mark.integration

SAFARICOM = "196.201.214.200"
HEADERS = {"Content-Type": "application/json", "User-Agent": "Daraja", "Cookie": "not kept"}


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Harness]:
    url = f"sqlite:///{tmp_path / 'khalex.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = dataclasses.replace(load_settings({}), database_url=url)
    daraja, published = ScriptedDaraja(), list[Job]()
    yield Harness(Container(settings, engine, published.append, daraja=daraja), daraja, published)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def door(request: pytest.FixtureRequest) -> Harness:
    """The same door on each database (PostgreSQL stores in one statement)."""
    name = "h" if request.param == "postgresql" else "on_sqlite"
    harness: Harness = request.getfixturevalue(name)
    return harness


def _receive(h: Harness, body: bytes, token: str) -> callbacks.Received:
    return callbacks.receive(h.container, body, source_ip=SAFARICOM, token=token, headers=HEADERS)


def _jobs(h: Harness) -> list[tuple[str, list[object], str | None]]:
    query = sa.select(outbox.c.actor, outbox.c.args, outbox.c.correlation_id).order_by(outbox.c.id)
    with h.container.engine.connect() as conn:
        return [(actor, list(args), cid) for actor, args, cid in conn.execute(query)]


def _inbox_count(h: Harness) -> int:
    with h.container.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(callback_inbox)).scalar_one()
        )


def test_a_callback_on_its_own_url_is_stored_whole_and_its_job_queued_and_sent(
    door: Harness,
) -> None:
    p = door.pushed()
    body = stk_callback(p.checkout_request_id or "")

    with correlation.bound("req-door-1"):
        received = _receive(door, body, p.callback_token)

    assert (received.status_code, received.state, received.reason) == (200, inbox.RECEIVED, None)
    with door.container.engine.connect() as conn:
        row = inbox.get(conn, received.inbox_id)
        headers = conn.execute(
            sa.select(callback_inbox.c.headers).where(callback_inbox.c.id == received.inbox_id)
        ).scalar_one()
    assert row is not None
    assert (row.state, row.path_token, row.source_ip) == (
        inbox.RECEIVED,
        p.callback_token,
        SAFARICOM,
    )
    assert (row.checkout_request_id, row.payment_id, row.reason) == (
        p.checkout_request_id,
        None,
        None,
    )
    assert json.loads(row.body) == json.loads(body)  # re-written JSON, the same values
    assert headers == {"Content-Type": "application/json", "User-Agent": "Daraja"}
    assert _jobs(door)[-1] == (PROCESS_CALLBACK.actor, [received.inbox_id], "req-door-1")
    sent = door.published[-1]
    assert (sent.actor, sent.args, sent.correlation_id) == (
        PROCESS_CALLBACK.actor, [received.inbox_id], "req-door-1",
    )  # fmt: skip


def test_a_callback_on_its_own_url_before_the_push_answer_is_stored_and_queued(
    door: Harness,
) -> None:
    payment_id = initiation.initiate(door.container, new_payment()).payment.id
    token = door.get(payment_id).callback_token

    received = _receive(door, stk_callback("ws_CO_EARLY01"), token)

    assert (received.status_code, received.state) == (200, inbox.RECEIVED)
    assert _jobs(door)[-1][:2] == (PROCESS_CALLBACK.actor, [received.inbox_id])
    callbacks.process(door.container, received.inbox_id)
    assert door.get(payment_id).status == "completed"


def test_a_callback_naming_another_payment_on_this_url_is_refused_and_not_queued(
    door: Harness,
) -> None:
    mine = door.pushed("254712345678")
    other = door.pushed("254712345679")

    received = _receive(door, stk_callback(other.checkout_request_id or ""), mine.callback_token)

    assert (received.status_code, received.state) == (403, inbox.REJECTED)
    assert "does not belong" in (received.reason or "")
    assert PROCESS_CALLBACK.actor not in [actor for actor, _, _ in _jobs(door)]


def test_a_callback_naming_a_pushed_payment_on_the_url_of_one_not_pushed_is_refused(
    door: Harness,
) -> None:
    other = door.pushed("254712345679")
    waiting = initiation.initiate(door.container, new_payment("254712345678")).payment.id
    token = door.get(waiting).callback_token

    received = _receive(door, stk_callback(other.checkout_request_id or ""), token)

    assert (received.status_code, received.state) == (403, inbox.REJECTED)
    assert PROCESS_CALLBACK.actor not in [actor for actor, _, _ in _jobs(door)]


def test_the_one_statement_store_writes_nothing_for_a_callback_not_its_urls_own(
    door: Harness,
) -> None:
    mine = door.pushed("254712345678")
    other = door.pushed("254712345679")
    before = (_inbox_count(door), _jobs(door))

    stored = inbox.add_on_own_url(
        door.container.engine, body="{}", source_ip=SAFARICOM, token=mine.callback_token,
        headers={}, checkout_request_id=other.checkout_request_id or "", job=PROCESS_CALLBACK,
    )  # fmt: skip
    unknown = inbox.add_on_own_url(
        door.container.engine, body="{}", source_ip=SAFARICOM, token="no-such-token",
        headers={}, checkout_request_id="ws_CO_NOBODY", job=PROCESS_CALLBACK,
    )  # fmt: skip

    assert (stored, unknown) == (None, None)
    assert (_inbox_count(door), _jobs(door)) == before

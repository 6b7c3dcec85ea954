"""Use cases against the real PostgreSQL: a clean schema per test, a scripted Daraja."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from daraja.client import ExchangeRecorder
from daraja.wire import PushAccepted, QueryResult
from payments import initiation
from payments.container import Container
from plumbing.settings import load_settings
from store import api_keys, payments
from store.db import make_engine
from store.outbox import Job
from store.payments import NewPayment, PaymentRecord
from store.tables import metadata

pytestmark = pytest.mark.integration


@dataclass
class ScriptedDaraja:
    """A Daraja that answers from a script and counts every push it was asked for."""

    push_answers: list[PushAccepted | BaseException] = field(default_factory=list)
    query_answers: list[QueryResult | Exception] = field(default_factory=list)
    pushes: list[dict[str, object]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def stk_push(
        self, *, phone: str, amount: int, callback_url: str, account_reference: str,
        description: str, recorder: ExchangeRecorder | None = None,
    ) -> PushAccepted:  # fmt: skip
        handle = (
            recorder.request_sent("stk_push", "http://daraja/push", {"PartyA": phone})
            if recorder
            else None
        )
        # Counted once it leaves: a recorder that refuses the request stops it, as it does
        # the real client's.
        self.pushes.append({"phone": phone, "amount": amount, "callback_url": callback_url})
        answer = self.push_answers.pop(0) if self.push_answers else _accepted(len(self.pushes))
        if recorder:
            recorder.answer_received(handle, 200, "{}", None, 5)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def stk_query(
        self, checkout_request_id: str, *, recorder: ExchangeRecorder | None = None
    ) -> QueryResult:
        self.queries.append(checkout_request_id)
        answer = self.query_answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass


def _accepted(n: int) -> PushAccepted:
    return PushAccepted(f"mr-{n}", f"ws_CO_TEST{n:06d}", "Success. Request accepted for processing")


@dataclass
class Harness:
    container: Container
    daraja: ScriptedDaraja
    published: list[Job]

    def get(self, payment_id: str) -> PaymentRecord:
        """The payment as stored now."""
        with self.container.engine.connect() as conn:
            record = payments.get(conn, payment_id)
        assert record is not None
        return record

    def pushed(self, phone: str = "254712345678", amount: int = 1500) -> PaymentRecord:
        """A payment whose push Daraja accepted (the scripted answer, or the next default)."""
        payment_id = initiation.initiate(self.container, new_payment(phone, amount)).payment.id
        initiation.send_push(self.container, payment_id)
        return self.get(payment_id)


@pytest.fixture
def h(postgres_url: str) -> Iterator[Harness]:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    settings = dataclasses.replace(load_settings({}), database_url=postgres_url)
    daraja = ScriptedDaraja()
    published: list[Job] = []
    container = Container(settings, engine, published.append, daraja=daraja)
    yield Harness(container, daraja, published)
    engine.dispose()


def new_payment(phone: str = "254712345678", amount: int = 1500, **changes: object) -> NewPayment:
    base = NewPayment(
        amount=amount, phone_number=phone, product_id="board-01",
        product_name="Tournament board", customer_name="Wanjiru",
        customer_email="wanjiru@example.com", order_id=None,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def shop_key(h: Harness, name: str = "test shop") -> str:
    """A new shop API key (the key itself, as `keys create` prints it)."""
    with h.container.engine.begin() as conn:
        return api_keys.create(conn, name)[1]


def as_shop(client: Any, h: Harness) -> Any:
    """`client` (a TestClient), sending a new shop API key with every request."""
    client.headers["Authorization"] = f"Bearer {shop_key(h)}"
    return client

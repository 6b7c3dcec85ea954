"""End to end: the shop's webhook receiver is down for a minute, and a completed payment's
event still reaches it afterwards, signed, once per webhook-id (the real API, worker,
scheduler and simulator processes)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from store.db import make_engine
from store.tables import webhook_attempts, webhook_events
from tests.processes import Shop, new_shop_key
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + base64.b64encode(b"the-shop-servers-own-secret-key!").decode()
#: How long the shop's receiver answers 503 (slowly) before it comes back.
DOWN_S = 60.0
#: Short retry steps, so the minute of downtime is retried many times.
RETRY_S = "1,2,4" + ",5" * 30


@dataclass
class Outage:
    """Slow 503s until `up_at`, then 200s."""

    up_at: float = float("inf")

    def __call__(self) -> int:
        if time.monotonic() < self.up_at:
            time.sleep(0.5)  # a shop that is down is slow to say so: not a wait for anything
            return 503
        return 200


@dataclass
class Webhooked:
    """The shop's frontend and its webhook receiver (with its outage) on one running system."""

    shop: Shop
    receiver: Receiver
    outage: Outage
    database_url: str


@pytest.fixture(scope="module")
def system(
    postgres_url: str, redis_url: str, launch_system: Callable[..., AbstractContextManager[Any]]
) -> Iterator[Webhooked]:
    outage = Outage()
    with Receiver(outage) as receiver, launch_system(
        "e2e-webhook-logs", postgres_url, redis_url,
        SIM_CALLBACK_DELAY="0.5", RECONCILE_AFTER_S="2",
        SHOP_WEBHOOK_URL=receiver.url, SHOP_WEBHOOK_SECRET=SECRET, SHOP_WEBHOOK_RETRY_S=RETRY_S,
    ) as system:  # fmt: skip
        yield Webhooked(system.shop(new_shop_key(postgres_url)), receiver, outage, postgres_url)


def _for_payment(receiver: Receiver, payment_id: str) -> list[Any]:
    return [r for r in receiver.received if f'"paymentId":"{payment_id}"' in r.body]


def test_event_sent_while_the_shop_is_down_arrives_once_it_is_back(system: Webhooked) -> None:
    shop, receiver = system.shop, system.receiver
    started = time.monotonic()
    system.outage.up_at = started + DOWN_S
    first = shop.wait_final(shop.pay("0712 345 678", amount=1500), timeout_s=30)
    second = shop.wait_final(shop.pay("0723 456 789", amount=2500), timeout_s=30)
    paid_in = time.monotonic() - started

    # A shop that is down (and slow to say so) costs the payments nothing.
    assert (first["status"], second["status"]) == ("completed", "completed")
    assert paid_in < 30
    deadline = time.monotonic() + DOWN_S + 60
    while time.monotonic() < deadline and not all(
        any(r.status == 200 for r in _for_payment(receiver, p["paymentId"]))
        for p in (first, second)
    ):
        time.sleep(0.5)
    time.sleep(8)  # longer than a retry step and a scheduler tick: nothing more may come

    for payment in (first, second):
        posts = _for_payment(receiver, payment["paymentId"])
        ids = {r.headers["webhook-id"] for r in posts}
        assert len(ids) == 1, ids  # the same webhook-id on every attempt
        assert [r.status for r in posts].count(200) == 1  # accepted once, never sent after
        assert posts[-1].status == 200
        assert len(posts) >= 3  # refused while the shop was down
        body = Webhook(SECRET).verify(posts[-1].body, posts[-1].headers)
        assert body["type"] == "payment.completed"
        assert body["data"]["mpesaReceiptNumber"] == payment["mpesaReceiptNumber"]
        assert body["data"]["amount"] == payment["amount"]
        assert body["data"]["phoneNumber"] == payment["phoneNumber"]
        _assert_stored(system.database_url, ids.pop(), posts)


def _assert_stored(database_url: str, event_id: str, posts: list[Any]) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        state, attempts = conn.execute(
            sa.select(webhook_events.c.state, webhook_events.c.attempts).where(
                webhook_events.c.id == event_id
            )
        ).one()
        statuses = conn.execute(
            sa.select(webhook_attempts.c.http_status)
            .where(webhook_attempts.c.event_id == event_id)
            .order_by(webhook_attempts.c.id)
        ).scalars().all()  # fmt: skip
    engine.dispose()
    assert (state, attempts) == ("delivered", len(posts))
    assert statuses == [r.status for r in posts]

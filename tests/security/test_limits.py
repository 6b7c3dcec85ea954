"""Floods are refused with 429 `rate_limited` and Retry-After, before anything is written.

Per address (RATE_LIMIT_IP), per phone (RATE_LIMIT_PHONE, whatever way it is written) and
per key (RATE_LIMIT_KEY); in Redis, counted across API processes.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.integration.conftest import Harness, shop_key
from tests.security.conftest import BODY, App, bearer, counts

pytestmark = pytest.mark.integration


def _phone(i: int) -> str:
    return f"07120{i:05d}"


def test_a_flood_from_one_address_is_429_and_writes_nothing_more(h: Harness, app: App) -> None:
    client, key = app(rate_limit_ip=(5, 60)), bearer(shop_key(h))

    answers = [
        client.post("/api/payments/initiate", json={**BODY, "phoneNumber": _phone(i)}, headers=key)
        for i in range(12)
    ]

    assert [a.status_code for a in answers] == [202] * 5 + [429] * 7
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert counts(h) == (5, 5, 0)  # payments, outbox rows (so pushes), refused-request rows
    assert len(h.published) == 5


def test_a_flood_at_one_phone_is_429_in_any_spelling_of_the_number(h: Harness, app: App) -> None:
    client, key = app(rate_limit_phone=(3, 600)), bearer(shop_key(h))
    spellings = ["0712345678", "+254712345678", "254 712 345 678", "712-345-678", "0712345678"]

    answers = [
        client.post("/api/payments/initiate", json={**BODY, "phoneNumber": s}, headers=key)
        for s in spellings
    ]

    assert [a.status_code for a in answers] == [202, 409, 409, 429, 429]
    error = answers[-1].json()["error"]
    assert (error["code"], error["field"]) == ("rate_limited", "phoneNumber")
    assert 500 < int(answers[-1].headers["retry-after"]) <= 600
    assert counts(h)[:2] == (1, 1)


def test_each_key_has_its_own_budget(h: Harness, app: App) -> None:
    client = app(rate_limit_key=(2, 60))
    first, second = bearer(shop_key(h, "one")), bearer(shop_key(h, "two"))

    def pay(i: int, key: dict[str, str]) -> int:
        body = {**BODY, "phoneNumber": _phone(i)}
        return client.post("/api/payments/initiate", json=body, headers=key).status_code

    assert [pay(i, first) for i in range(3)] == [202, 202, 429]
    assert pay(3, second) == 202


def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(
    h: Harness, app: App
) -> None:
    client, key = app(rate_limit_ip=(2, 60)), bearer(shop_key(h))

    codes = [
        client.post(
            "/api/payments/initiate", json={**BODY, "phoneNumber": _phone(i)},
            headers={**key, "X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(4)
    ]  # fmt: skip

    assert codes == [202, 202, 429, 429]


def test_limits_are_shared_by_api_processes_through_redis(
    h: Harness, app: App, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    key = bearer(shop_key(h))
    one = app(redis_url=redis_url, rate_limit_ip=(4, 60))
    two = app(redis_url=redis_url, rate_limit_ip=(4, 60))

    def pay(client: Any, i: int) -> int:
        body = {**BODY, "phoneNumber": _phone(i)}
        return int(client.post("/api/payments/initiate", json=body, headers=key).status_code)

    codes = [pay(one if i % 2 else two, i) for i in range(6)]

    assert codes == [202] * 4 + [429] * 2
    assert counts(h)[0] == 4


def test_limits_still_hold_while_redis_is_down(h: Harness, app: App) -> None:
    client, key = app(redis_url="redis://127.0.0.1:1/0", rate_limit_ip=(2, 60)), bearer(shop_key(h))

    codes = [
        client.post(
            "/api/payments/initiate", json={**BODY, "phoneNumber": _phone(i)}, headers=key
        ).status_code
        for i in range(3)
    ]

    assert codes == [202, 202, 429]  # counted in this process until Redis is back

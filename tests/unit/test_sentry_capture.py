"""Real Sentry events from a real request handler and a real actor leave scrubbed.

Sentry is started with `init_sentry` (the integrations the processes use) and a transport
that keeps each envelope; the test then searches the serialized envelopes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import sentry_sdk
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from litestar import get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from api.app import create_app
from api.errors import ApiError
from migrations.run import upgrade
from payments.container import Container
from plumbing.observability import init_sentry
from plumbing.settings import SANDBOX_PASSKEY, load_settings
from store import api_keys, inbox
from store.db import make_engine

pytestmark = pytest.mark.unit

PHONE, EMAIL = "254712345678", "wanjiru@example.com"
PHONE_FORMS = (PHONE, "0712345678", "0712 345 678", "712345678")
CALLBACK_TOKEN = "Zq3vV8cTokenOfThePaymentUrl1234"  # a made-up callback token
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlcyI6WyJvcHMiXX0.c2lnbmF0dXJl"  # a made-up JWT
#: What no event may carry, in any form.
SECRETS = (*PHONE_FORMS, EMAIL, "wanjiru%40example.com", SANDBOX_PASSKEY, CALLBACK_TOKEN, BEARER)


class Captured(sentry_sdk.transport.Transport):
    """Keeps every envelope Sentry would have sent, serialized as it would leave."""

    sent: list[str] = []  # noqa: RUF012 - one list per test, reset by the fixture

    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            Captured.sent.append(item.payload.get_bytes().decode("utf-8", "replace"))


@pytest.fixture
def sentry() -> Iterator[list[str]]:
    Captured.sent = []
    settings = dataclasses.replace(load_settings({}), sentry_dsn="http://public@127.0.0.1:9/1")
    assert init_sentry(settings, "test", transport=Captured)
    try:
        yield Captured.sent
    finally:
        sentry_sdk.get_client().close()
        # Back to no DSN and no integrations: a bare init() would switch on Sentry's
        # Litestar integration, which answers malformed JSON with a 500 in later tests.
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


def _events(sent: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for text in sent:
        try:
            parsed.append(json.loads(text))
        except ValueError:
            continue
    return [e for e in parsed if e.get("exception") or e.get("message") or e.get("logentry")]


def _assert_clean(sent: list[str]) -> None:
    text = "\n".join(sent)
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == []
    for event in _events(sent):
        for exc in event.get("exception", {}).get("values", []):
            frames = exc.get("stacktrace", {}).get("frames", [])
            assert [f for f in frames if f.get("vars")] == []
        assert "data" not in event.get("request", {})


@post("/boom/webhook/{token:str}", sync_to_thread=True)
def boom(token: FromPath[str], data: JSONBody[dict[str, Any]]) -> None:
    phone, email, passkey = data["phoneNumber"], data["customerEmail"], SANDBOX_PASSKEY
    url = f"https://shop.example.com/api/payments/webhook/{token}"
    raise RuntimeError(f"Daraja refused {phone} for {email} (passkey {passkey}, CallBackURL {url})")


@get("/refuse", sync_to_thread=False)
def refuse() -> None:
    raise ApiError(422, "invalid_phone_number", "Phone number must be a Kenyan mobile number.")


def _client() -> TestClient[Any]:
    container = Container(load_settings({}), make_engine("sqlite://"), lambda job: None)
    # Made after init_sentry, as in every process: Sentry patches Litestar's constructor.
    return TestClient(app=create_app(container, extra_handlers=[boom, refuse]))


def test_exception_in_a_request_handler_reaches_sentry_scrubbed(sentry: list[str]) -> None:
    with _client() as client:
        answer = client.post(
            f"/boom/webhook/{CALLBACK_TOKEN}?phone=0712345678&email={EMAIL}",
            json={"phoneNumber": "0712 345 678", "customerEmail": EMAIL, "phone": PHONE},
            headers={"Authorization": f"Bearer {BEARER}", "Cookie": f"session={BEARER}",
                     "X-Request-ID": "req-sentry-1"},
        )  # fmt: skip

    assert answer.status_code == 500
    events = [e for e in _events(sentry) if "exception" in e]
    assert {e["exception"]["values"][-1]["type"] for e in events} == {"RuntimeError"}
    assert {e["tags"]["correlation_id"] for e in events} == {"req-sentry-1"}
    _assert_clean(sentry)


def test_answers_meant_for_the_client_are_not_sentry_events(sentry: list[str]) -> None:
    with _client() as client:
        answer = client.get("/refuse")

    assert answer.status_code == 422
    assert _events(sentry) == []


def test_with_sentry_on_bad_bodies_are_still_answered_400_and_callbacks_stored(
    sentry: list[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'khalex.db'}"
    upgrade(url)
    container = Container(load_settings({}), make_engine(url), lambda job: None)
    with container.engine.begin() as conn:
        _, key = api_keys.create(conn, "shop")

    with TestClient(app=create_app(container)) as client:
        initiate = client.post(
            "/api/payments/initiate", content=b"{amount: 1",
            headers={"content-type": "application/json", "Authorization": f"Bearer {key}"},
        )  # fmt: skip
        callback = client.post(
            "/api/payments/webhook", content=b"<not json>",
            headers={"content-type": "application/json"},
        )  # fmt: skip

    assert (initiate.status_code, initiate.json()["error"]["code"]) == (400, "malformed_json")
    assert (callback.status_code, callback.json()["error"]["code"]) == (400, "invalid_callback")
    with container.engine.connect() as conn:
        assert inbox.get(conn, callback.json()["error"]["inboxId"]) is not None


def test_exception_in_an_actor_reaches_sentry_scrubbed(sentry: list[str]) -> None:
    broker = StubBroker()  # after init: Sentry's Dramatiq middleware goes in first
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, max_retries=0, queue_name="payments")
    def send_push(payment_id: str) -> None:
        phone, email = PHONE, EMAIL  # what the job loads from the database
        raise RuntimeError(f"push for {payment_id} to {phone} ({email}) failed")

    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        send_push.send("0b6f2c1e-pay")
        broker.join("payments", fail_fast=False)
    finally:
        worker.stop()

    # Dramatiq logs the failure first, so the logging integration's event is the one kept
    # (Sentry drops the Dramatiq middleware's copy of the same exception as a duplicate).
    [event] = [e for e in _events(sentry) if "exception" in e]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "0b6f2c1e-pay" in json.dumps(event)
    _assert_clean(sentry)

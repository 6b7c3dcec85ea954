"""Shop webhooks: signatures the shop's `standardwebhooks` verifier accepts, the retry schedule
and the settings that configure them."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payments import shop_webhooks, webhook_sender
from payments.webhook_sender import Answer
from plumbing.settings import (
    DEV_SHOP_WEBHOOK_SECRET,
    SettingsError,
    load_settings,
    webhook_secret_bytes,
)
from store.webhooks import DELIVERED, FAILED, PENDING, WebhookEvent

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PAYLOAD = {
    "type": "payment.completed",
    "timestamp": "2026-11-30T04:00:00.123456Z",
    "data": {"paymentId": "p-1", "amount": 1500, "phoneNumber": "2547****5678",
             "mpesaReceiptNumber": "TKA1B2C3D4", "note": "Malipo ya bodi, asante sana"},
}  # fmt: skip
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def _signed(secret: str = SECRET) -> tuple[str, dict[str, str]]:
    body = shop_webhooks.body(PAYLOAD)
    key = webhook_secret_bytes(secret)
    return body, webhook_sender.headers(key, "msg_0123abcd", body, time.time())


def test_signed_webhook_is_verified_by_the_standard_webhooks_package() -> None:
    body, headers = _signed()

    assert Webhook(SECRET).verify(body, headers) == PAYLOAD
    assert headers["webhook-id"] == "msg_0123abcd"
    assert headers["webhook-signature"].startswith("v1,")


def test_signature_made_with_another_secret_is_refused() -> None:
    body, headers = _signed(SECRET)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()

    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_changed_body_is_refused() -> None:
    body, headers = _signed()

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("1500", "15"), headers)


def test_body_is_type_timestamp_data_in_that_order() -> None:
    assert shop_webhooks.body(PAYLOAD).startswith('{"type":"payment.completed","timestamp":')


def test_default_retry_schedule_spans_about_three_days_like_svix() -> None:
    schedule = load_settings({}).shop_webhook_retry_s

    assert schedule[:7] == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert timedelta(days=3) <= timedelta(seconds=sum(schedule)) < timedelta(days=3.5)


def test_each_failed_attempt_waits_the_next_step_until_none_is_left() -> None:
    schedule = (5.0, 300.0, 1800.0)

    waits = [shop_webhooks.next_delay_s(schedule, n) for n in range(1, 5)]

    assert waits == [5.0, 300.0, 1800.0, None]


def _event(state: str = PENDING, attempts: int = 0) -> WebhookEvent:
    return WebhookEvent("msg_1", "payment.completed", PAYLOAD, state, attempts, NOW, NOW,
                        None, None)  # fmt: skip


def _answer(status: int | None) -> Answer:
    return Answer(status, 12, "ok", None if status else "ConnectError")


def test_refused_attempt_schedules_the_next_one_by_the_schedule() -> None:
    after = shop_webhooks.after_attempt(_event(attempts=1), _answer(503), (5.0, 60.0), NOW)

    assert after["state"] == PENDING
    assert after["attempts"] == 2
    assert after["next_attempt_at"] == NOW + timedelta(seconds=60)


def test_refused_last_attempt_fails_the_event() -> None:
    after = shop_webhooks.after_attempt(_event(attempts=2), _answer(None), (5.0, 60.0), NOW)

    assert after["state"] == FAILED
    assert after["next_attempt_at"] is None


def test_any_2xx_delivers() -> None:
    after = shop_webhooks.after_attempt(_event(), _answer(204), (5.0,), NOW)

    assert after["state"] == DELIVERED
    assert after["delivered_at"] == NOW


def test_refused_redelivery_of_a_delivered_event_leaves_it_delivered() -> None:
    after = shop_webhooks.after_attempt(_event(DELIVERED, attempts=1), _answer(500), (5.0,), NOW)

    assert after["state"] == DELIVERED


# Settings -------------------------------------------------------------------------------------


def test_sandbox_signs_with_a_development_secret_when_none_is_set() -> None:
    s = load_settings({"SHOP_WEBHOOK_URL": "http://127.0.0.1:9000/hooks"})

    assert s.shop_webhook_secret == DEV_SHOP_WEBHOOK_SECRET
    assert len(webhook_secret_bytes(s.shop_webhook_secret)) >= 24


@pytest.mark.parametrize(
    "secret", ["plainsecret", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_secret_not_in_standard_webhooks_form_is_refused(secret: str) -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings({"SHOP_WEBHOOK_SECRET": secret})

    assert [p for p in bad.value.problems if p.startswith("SHOP_WEBHOOK_SECRET must be whsec_")]


def test_retry_schedule_is_read_from_comma_separated_seconds() -> None:
    s = load_settings({"SHOP_WEBHOOK_RETRY_S": "1, 2.5,10"})

    assert s.shop_webhook_retry_s == (1.0, 2.5, 10.0)


@pytest.mark.parametrize("raw", ["soon", "1,,2", "5,-1"])
def test_bad_retry_schedule_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings({"SHOP_WEBHOOK_RETRY_S": raw})

    assert bad.value.problems == [
        f"SHOP_WEBHOOK_RETRY_S must be comma-separated seconds (e.g. 5,300,1800), not {raw!r}"
        " (from the environment)"
    ]


def test_bad_webhook_url_is_refused() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings({"SHOP_WEBHOOK_URL": "shop.example/hooks"})

    assert bad.value.problems == [
        "SHOP_WEBHOOK_URL must be an http(s) URL, not 'shop.example/hooks' (from the environment)"
    ]


def _production(**env: str) -> dict[str, str]:
    return {
        "MPESA_ENVIRONMENT": "production",
        "MPESA_CONSUMER_KEY": "key", "MPESA_CONSUMER_SECRET": "secret",
        "MPESA_BUSINESS_SHORTCODE": "600100", "MPESA_PASSKEY": "p" * 64,
        "MPESA_CALLBACK_URL": "https://pay.khalexchess.co.ke/api/payments/webhook",
        "JWT_SECRET": "j" * 40, "WEBHOOK_SECRET": "w" * 40,
        "REDIS_URL": "redis://redis:6379/0", "DATABASE_URL": "postgresql://db/khalex",
        **env,
    }  # fmt: skip


def test_production_refuses_a_webhook_url_without_a_secret() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings(_production(SHOP_WEBHOOK_URL="https://shop.example/hooks"))

    assert bad.value.problems == [
        "production needs SHOP_WEBHOOK_SECRET (whsec_...) with SHOP_WEBHOOK_URL"
        " (SHOP_WEBHOOK_URL from the environment)"
    ]


def test_production_refuses_a_plain_http_webhook_url() -> None:
    env = _production(SHOP_WEBHOOK_URL="http://shop.example/hooks", SHOP_WEBHOOK_SECRET=SECRET)

    with pytest.raises(SettingsError) as bad:
        load_settings(env)

    assert bad.value.problems == [
        "production needs an https:// SHOP_WEBHOOK_URL (SHOP_WEBHOOK_URL from the environment)"
    ]


def test_production_accepts_https_webhook_with_its_secret() -> None:
    env = _production(SHOP_WEBHOOK_URL="https://shop.example/hooks", SHOP_WEBHOOK_SECRET=SECRET)

    assert load_settings(env).shop_webhook_secret == SECRET

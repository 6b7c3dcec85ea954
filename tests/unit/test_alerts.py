"""Alert settings, the webhook body and how an alert is sent (no database, no network)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from operations import alerts
from plumbing import alerting
from plumbing.alerting import Alert
from plumbing.settings import Settings, SettingsError, load_settings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
#: A payment id with a digit run ("115619209") that phone masking would garble.
PAYMENT_ID = "005d5cf6-37bd-48c9-bc9e-a115619209b7"
ALERT = Alert(
    alerts.LATE_SUCCESS,
    f"payment {PAYMENT_ID} was paid after we had failed it",
    {"paymentId": PAYMENT_ID, "amount": 1500},
)


def test_alert_settings_have_their_documented_defaults() -> None:
    s = load_settings({})

    assert (s.alert_interval_s, s.alert_success_window_s, s.alert_success_rate_min) == (
        30.0,
        900,
        0.5,
    )
    assert (s.alert_min_payments, s.alert_queue_age_s, s.alert_repeat_s) == (10, 120.0, 900)
    assert s.alert_webhook_url == ""


def test_alert_settings_are_read_from_the_environment() -> None:
    s = load_settings(
        {
            "ALERT_INTERVAL_S": "5", "ALERT_SUCCESS_WINDOW_S": "600",
            "ALERT_SUCCESS_RATE_MIN": "0.8", "ALERT_MIN_PAYMENTS": "3",
            "ALERT_QUEUE_AGE_S": "60", "ALERT_REPEAT_S": "120",
            "ALERT_WEBHOOK_URL": "https://hooks.example.com/khalex",
        }
    )  # fmt: skip

    assert (s.alert_interval_s, s.alert_success_window_s, s.alert_success_rate_min) == (
        5.0,
        600,
        0.8,
    )
    assert (s.alert_min_payments, s.alert_queue_age_s, s.alert_repeat_s) == (3, 60.0, 120)
    assert s.alert_webhook_url == "https://hooks.example.com/khalex"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ALERT_INTERVAL_S", "0", "ALERT_INTERVAL_S must be more than 0"),
        ("ALERT_SUCCESS_WINDOW_S", "15m", "ALERT_SUCCESS_WINDOW_S must be a whole number"),
        ("ALERT_SUCCESS_RATE_MIN", "1.5", "ALERT_SUCCESS_RATE_MIN must be between 0 and 1"),
        ("ALERT_MIN_PAYMENTS", "2.5", "ALERT_MIN_PAYMENTS must be a whole number"),
        ("ALERT_MIN_PAYMENTS", "0", "ALERT_MIN_PAYMENTS must be more than 0"),
        ("ALERT_QUEUE_AGE_S", "-1", "ALERT_QUEUE_AGE_S must not be negative"),
        ("ALERT_REPEAT_S", "0", "ALERT_REPEAT_S must be more than 0"),
        ("ALERT_WEBHOOK_URL", "hooks.example.com", "ALERT_WEBHOOK_URL must be an http(s) URL"),
    ],
)
def test_bad_alert_settings_stop_the_start_with_one_line_each(
    name: str, value: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})

    assert [p for p in caught.value.problems if p.startswith(problem)]
    assert len(caught.value.problems) == 1


def test_webhook_body_has_kind_message_details_and_time_with_ids_intact() -> None:
    body = alerting.webhook_body(ALERT, NOW)

    assert set(body) == {"alert", "message", "details", "at"}
    assert (body["alert"], body["at"]) == ("late_success", "2026-11-26T09:00:00+00:00")
    assert body["details"] == {"paymentId": PAYMENT_ID, "amount": 1500}
    assert PAYMENT_ID in body["message"]


class _Poster:
    def __init__(self, answer: httpx.Response | Exception) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, **kwargs: Any) -> httpx.Response:
        self.calls.append({"url": url, **kwargs})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _settings(**changes: Any) -> Settings:
    return Settings(**changes)


def test_alert_is_logged_at_error_and_posted_with_a_short_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    post = _Poster(httpx.Response(204, request=httpx.Request("POST", "http://hook")))

    alerting.notify(_settings(alert_webhook_url="http://hook"), ALERT, NOW, post=post)

    [call] = post.calls
    assert call["url"] == "http://hook"
    assert call["json"]["alert"] == "late_success"
    assert call["timeout"] <= 10
    [record] = [r for r in caplog.records if r.name == "plumbing.alerting"]
    assert record.levelno == logging.ERROR
    assert record.payment_id == PAYMENT_ID  # type: ignore[attr-defined]


def test_no_webhook_url_means_no_post() -> None:
    post = _Poster(RuntimeError("must not be called"))

    alerting.notify(_settings(), ALERT, NOW, post=post)

    assert post.calls == []


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ConnectError("refused"),
        httpx.Response(500, request=httpx.Request("POST", "http://hook/secret-token")),
    ],
)
def test_a_failing_webhook_is_logged_without_its_url_not_raised(
    answer: httpx.Response | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    alerting.notify(
        _settings(alert_webhook_url="http://hook/secret-token"), ALERT, NOW, post=_Poster(answer)
    )

    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "alert webhook failed for late_success" in warning.getMessage()
    assert "secret-token" not in warning.getMessage()

"""No phone number or e-mail reaches a log line or a Sentry event."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sentry_sdk

from plumbing.logs import MaskingJsonFormatter
from plumbing.observability import before_send, scrub, scrub_text, secrets_of
from plumbing.settings import Settings

pytestmark = pytest.mark.unit

RAW_NUMBERS = ("254712345678", "0712345678", "254110987654")


def test_log_lines_mask_phone_numbers_in_messages_and_arguments() -> None:
    formatter = MaskingJsonFormatter("test")
    record = logging.LogRecord(
        "khalex", logging.INFO, __file__, 1, "pushing to %s and %s", RAW_NUMBERS[:2], None
    )

    line = formatter.format(record)

    assert json.loads(line)["level"] == "info"
    assert not any(number in line for number in RAW_NUMBERS)


def test_scrub_masks_numbers_in_strings_json_numbers_and_emails() -> None:
    event = {
        "message": "callback from 254712345678 for wanjiru@example.com",
        "extra": {"item": {"Name": "PhoneNumber", "Value": 254712345678}},
        "list": ["+254 110 987 654", 42, True],
    }

    text = json.dumps(scrub(event))

    assert "254712345678" not in text
    assert "wanjiru@example.com" not in text
    assert "987 654" not in text
    assert "42" in text


def test_secret_url_segments_are_masked_in_log_lines_and_sentry_events() -> None:
    token, c2b_secret = "Jq3xV9sKd02LmPz7", "c2b-Secret_0123456789abcdefXYZ"
    paths = (
        f"POST /api/payments/webhook/{token}",
        f"POST /api/payments/c2b/confirmation/{c2b_secret}",
        f"POST /api/payments/c2b/validation/{c2b_secret}",
    )

    masked = [scrub_text(f"unhandled error on {path}") for path in paths]

    assert not any(token in line or c2b_secret in line for line in masked)
    assert masked[1].endswith("/c2b/confirmation/[token]")
    assert c2b_secret in secrets_of(Settings(c2b_url_secret=c2b_secret))


def test_sentry_events_leave_without_phone_numbers_or_locals() -> None:
    sent: list[dict[str, Any]] = []

    class Capture(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.payload.json is not None:
                    sent.append(item.payload.json)

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=Capture,
        before_send=before_send,
        include_local_variables=False,
    )
    try:
        phone = "254712345678"  # a local the event must not carry
        try:
            raise ValueError(f"Daraja refused {phone}")
        except ValueError:
            sentry_sdk.capture_exception()
        sentry_sdk.capture_message(f"payment for {phone} by wanjiru@example.com")
        sentry_sdk.flush()
    finally:
        # Back to no DSN, and no integrations patched into Litestar for the tests after us.
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)

    text = json.dumps(sent)
    assert len(sent) == 2
    assert phone not in text
    assert "wanjiru@example.com" not in text

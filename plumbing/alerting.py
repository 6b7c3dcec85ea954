"""Sending an alert to operators: an ERROR log line, a Sentry event and ALERT_WEBHOOK_URL.

What to alert, and claiming it once, is the operators' side (`operations.alerts`,
`store.alerts`); this is only the sending, shared by every alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger

from plumbing.observability import scrub
from plumbing.settings import Settings

log = logging.getLogger(__name__)
# The ERROR line must not become a second Sentry event: `notify` sends its own, tagged.
ignore_logger(__name__)

#: Seconds the webhook POST may take: a slow receiver must not hold up the next pass.
WEBHOOK_TIMEOUT_S = 5.0

#: Sends the webhook: `httpx.post`'s signature (tests pass their own).
Post = Callable[..., httpx.Response]


@dataclass(frozen=True)
class Alert:
    """One alert: its kind, a sentence for a person, and ids and numbers (no personal data)."""

    kind: str
    message: str
    details: dict[str, Any]


def notify(settings: Settings, alert: Alert, now: datetime, *, post: Post = httpx.post) -> None:
    """Log `alert` at ERROR, send it to Sentry and to ALERT_WEBHOOK_URL when configured."""
    log.error(
        "alert %s: %s", alert.kind, alert.message,
        extra={"alert": alert.kind, "payment_id": alert.details.get("paymentId")},
    )  # fmt: skip
    if settings.sentry_dsn:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("alert", alert.kind)
            scope.set_context("alert", alert.details)
            sentry_sdk.capture_message(f"{alert.kind}: {alert.message}", level="error")
    if settings.alert_webhook_url:
        _post(settings.alert_webhook_url, webhook_body(alert, now), post)


def webhook_body(alert: Alert, now: datetime) -> dict[str, Any]:
    """What ALERT_WEBHOOK_URL receives: `{"alert", "message", "details", "at"}`.

    Alerts hold ids, amounts and counts only; the body is scrubbed all the same.
    """
    body = {"alert": alert.kind, "message": alert.message, "details": alert.details,
            "at": now.isoformat()}  # fmt: skip
    return dict(scrub(body))


def _post(url: str, body: dict[str, Any], post: Post) -> None:
    try:
        post(url, json=body, timeout=WEBHOOK_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as exc:
        # The URL may hold a secret (chat webhooks do): name the failure, not the address.
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        log.warning(
            "alert webhook failed for %s: %s%s", body["alert"], type(exc).__name__,
            f" ({status})" if status else "",
        )  # fmt: skip

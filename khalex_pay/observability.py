"""Sentry for the API and workers, scrubbed: no phone number, e-mail, secret or token leaves.

Initialise it before the Dramatiq broker is built: Sentry's Dramatiq integration patches
the broker's constructor.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.integrations.litestar import LitestarIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.transport import Transport

from domain.phone import mask_msisdns_in
from khalex_pay import correlation
from khalex_pay.settings import Settings

#: Keys whose values never leave the process, whatever they hold.
DENYLIST = [
    *DEFAULT_DENYLIST,
    "phone", "phone_number", "phonenumber", "msisdn", "partya", "customer_email",
    "customeremail", "email", "passkey", "consumer_secret", "consumer_key", "access_token",
    "callback_token", "token", "jwt_secret", "webhook_secret",
]  # fmt: skip
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
#: A 12-digit Kenyan MSISDN sent as a JSON number (Daraja's callback PhoneNumber).
_MSISDN_NUMBER_MIN, _MSISDN_NUMBER_MAX = 254_100_000_000, 254_799_999_999


def scrub_text(text: str) -> str:
    """`text` with every phone number and e-mail masked."""
    return _EMAIL.sub("[email]", mask_msisdns_in(text))


def scrub(value: Any) -> Any:
    """`value` with every phone number and e-mail masked, walking dicts and lists."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and _MSISDN_NUMBER_MIN <= value <= _MSISDN_NUMBER_MAX:
        return mask_msisdns_in(str(value))
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def before_send(event: Any, _hint: Any) -> Any:
    """Scrub `event` and tag it with the correlation id of the request or job it came from."""
    if isinstance(event, dict) and (correlation_id := correlation.current()):
        event.setdefault("tags", {})["correlation_id"] = correlation_id
    return scrub(event)


def init_sentry(
    settings: Settings, component: str, *, transport: type[Transport] | None = None
) -> bool:
    """Start Sentry when SENTRY_DSN is set; True if it was started.

    Parameters:
        transport: where events go instead of SENTRY_DSN's server (tests capture them).
    """
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        transport=transport,
        environment=settings.mpesa_environment,
        server_name=component,
        integrations=[LitestarIntegration(), DramatiqIntegration()],
        send_default_pii=False,
        include_local_variables=False,  # frame locals hold phone numbers
        max_request_body_size="never",  # request bodies hold them too
        event_scrubber=EventScrubber(denylist=DENYLIST, recursive=True),
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=lambda crumb, _hint: scrub(crumb),
        traces_sample_rate=0.0,
    )
    sentry_sdk.set_tag("component", component)
    return True

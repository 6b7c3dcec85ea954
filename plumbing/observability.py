"""Sentry for the API and workers, scrubbed: no phone number, e-mail, secret or token leaves.

Initialise it before the Dramatiq broker is built: Sentry's Dramatiq integration patches
the broker's constructor.

Sentry's Litestar integration stays off: it parses every request body as JSON before the
handler runs, so a malformed body became a 500 instead of our 400, and a callback that is
not JSON was never stored. The API's unhandled errors reach Sentry through the logging
integration instead (`api.errors.internal_error_handler` logs each with its traceback).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.integrations.httpx import HttpxIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.transport import Transport

from domain.phone import mask_msisdns_in
from plumbing import correlation
from plumbing.settings import Settings

#: Keys whose values never leave the process, whatever they hold.
DENYLIST = [
    *DEFAULT_DENYLIST,
    "phone", "phone_number", "phonenumber", "msisdn", "partya", "customer_email",
    "customeremail", "email", "passkey", "consumer_secret", "consumer_key", "access_token",
    "callback_token", "token", "jwt_secret", "webhook_secret",
]  # fmt: skip
#: E-mail addresses, also URL-encoded (`name%40example.com` in a query string).
_EMAIL = re.compile(r"[\w.+-]+(?:@|%40)[\w-]+\.[\w.-]+")
#: A payment's secret callback token in its webhook URL path, and C2B_URL_SECRET in the
#: PayBill URLs' paths.
_CALLBACK_TOKEN = re.compile(r"(/webhook/|/c2b/validation/|/c2b/confirmation/)[A-Za-z0-9_\-]{8,}")
#: A 12-digit Kenyan MSISDN sent as a JSON number (Daraja's callback PhoneNumber).
_MSISDN_NUMBER_MIN, _MSISDN_NUMBER_MAX = 254_100_000_000, 254_799_999_999
#: Configured secrets shorter than this are not searched for (they would mask common words).
_MIN_SECRET_LENGTH = 8


def scrub_text(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with phone numbers, e-mails, callback tokens and the `secrets` masked."""
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    text = _CALLBACK_TOKEN.sub(r"\1[token]", text)
    # The e-mail pattern tries every run of word characters; most lines hold no address.
    maybe_email = "@" in text or "%40" in text
    text = mask_msisdns_in(text)  # adds no "@" and no "%40"
    return _EMAIL.sub("[email]", text) if maybe_email else text


def scrub(value: Any, secrets: Sequence[str] = ()) -> Any:
    """`value` with every phone number, e-mail and secret masked, walking dicts and lists."""
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and _MSISDN_NUMBER_MIN <= value <= _MSISDN_NUMBER_MAX:
        return mask_msisdns_in(str(value))
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """The configured secrets, to be masked wherever they turn up in an event."""
    values = (
        settings.mpesa_passkey, settings.mpesa_consumer_key, settings.mpesa_consumer_secret,
        settings.jwt_secret, settings.webhook_secret, settings.c2b_url_secret,
        settings.alert_webhook_url,  # chat webhooks carry their secret in the URL
    )  # fmt: skip
    return tuple(v for v in values if len(v) >= _MIN_SECRET_LENGTH)


def before_send(event: Any, hint: Any, secrets: Sequence[str] = ()) -> Any:
    """Scrub `event` and tag it with the correlation id of the request or job it came from.

    Drops the events of answers meant for the client (an error with a 4xx `status_code`,
    e.g. a 422 or a 404 `ApiError`): Sentry's Litestar integration reports every exception
    that is not one of Litestar's own.
    """
    if _client_error(hint):
        return None
    if isinstance(event, dict):
        if correlation_id := correlation.current():
            event.setdefault("tags", {})["correlation_id"] = correlation_id
        _trim_request(event)
    return scrub(event, secrets)


def _client_error(hint: Any) -> bool:
    exc_info = hint.get("exc_info") if isinstance(hint, dict) else None
    status = getattr(exc_info[1], "status_code", None) if exc_info else None
    return isinstance(status, int) and 400 <= status < 500


def _trim_request(event: dict[str, Any]) -> None:
    # Bodies, cookies and query strings carry what callers typed (names, numbers): the
    # Litestar integration attaches the parsed body even with max_request_body_size="never".
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "query_string"):
            request.pop(key, None)
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]


def init_sentry(
    settings: Settings, component: str, *, transport: type[Transport] | None = None
) -> bool:
    """Start Sentry when SENTRY_DSN is set; True if it was started.

    Parameters:
        transport: where events go instead of SENTRY_DSN's server (tests capture them).
    """
    if not settings.sentry_dsn:
        return False
    secrets = secrets_of(settings)
    hook = functools.partial(before_send, secrets=secrets)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        transport=transport,
        environment=settings.mpesa_environment,
        server_name=component,
        # Chosen, not auto-enabled: that would switch the Litestar integration on (see the
        # module docstring), and `disabled_integrations` cannot undo an integration another
        # init in this process already set up.
        integrations=[DramatiqIntegration(), HttpxIntegration()],
        auto_enabling_integrations=False,
        # No personal data: send_default_pii is left unset (off; setting it is deprecated).
        include_local_variables=False,  # frame locals hold phone numbers
        max_request_body_size="never",  # request bodies hold them too
        event_scrubber=EventScrubber(denylist=DENYLIST, recursive=True),
        before_send=hook,
        before_send_transaction=hook,
        before_breadcrumb=lambda crumb, _hint: scrub(crumb, secrets),
        traces_sample_rate=0.0,
    )
    sentry_sdk.set_tag("component", component)
    return True

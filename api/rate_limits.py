"""Rate limits (CONTRACT.md §9), counted with the `limits` package.

In Redis when REDIS_URL is set, so every API process shares the counts; in memory in dev.
Each limit is a moving window. A refused request is 429 `rate_limited` with `Retry-After`,
raised before anything is written or queued, so a refused initiate never reaches Daraja.
Phone numbers are counted under a keyed hash, never in clear (Redis keys are personal data
too).
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.callers import Caller, Checkout, Operator, ShopServer
from api.errors import ApiError
from plumbing.settings import Rate, Settings
from store.sealed import phone_index

log = logging.getLogger(__name__)

#: How long a limit check may wait for Redis before counting in this process instead.
REDIS_TIMEOUT_S = 0.5


class RateLimits:
    """The three limits of one API process."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self._limiter = MovingWindowRateLimiter(storage or _storage(settings.redis_url))
        # Used only while the shared storage fails: limits still hold, per process.
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self.phone = _item(settings.rate_limit_phone)
        self.address = _item(settings.rate_limit_ip)
        self.key = _item(settings.rate_limit_key)

    def initiate_by(self, address: str, caller: Caller) -> None:
        """Count an initiate from `address` by `caller`; 429 past RATE_LIMIT_IP or _KEY."""
        self._hit(self.address, "initiate-ip", address, "this address")
        subject = _subject(caller)
        if subject is not None:
            self._hit(self.key, "initiate-key", subject, "this API key or checkout token")

    def prompt_to(self, msisdn: str) -> None:
        """Count a prompt to the phone `msisdn`; 429 past RATE_LIMIT_PHONE."""
        digest = phone_index(msisdn)  # the blind index: the number itself never reaches Redis
        self._hit(self.phone, "prompt-phone", digest, "this phone number", field="phoneNumber")

    def _hit(
        self, item: RateLimitItem, kind: str, who: str, what: str, field: str | None = None
    ) -> None:
        try:
            allowed = self._limiter.hit(item, kind, who)
            limiter = self._limiter
        except (StorageError, OSError) as exc:
            log.warning("rate limits counted in this process: storage failed (%s)", exc)
            limiter = self._fallback
            allowed = limiter.hit(item, kind, who)
        if allowed:
            return
        try:
            reset = limiter.get_window_stats(item, kind, who).reset_time
        except (StorageError, OSError):
            reset = time.time() + item.get_expiry()
        retry = max(1, math.ceil(reset - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many payment requests for {what}; try again in {retry} seconds.",
            field,
            headers={"Retry-After": str(retry)},
        )


def _item(rate: Rate) -> RateLimitItem:
    count, window_s = rate
    return RateLimitItemPerSecond(count, window_s, namespace="khalex-pay")


def _subject(caller: Caller) -> str | None:
    if isinstance(caller, ShopServer):
        return f"key:{caller.key_id}" if caller.key_id else None
    if isinstance(caller, Checkout):
        return f"checkout:{caller.subject}"
    if isinstance(caller, Operator):
        return f"operator:{caller.subject}"
    return None


def _storage(redis_url: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    url = (
        "redis+unix://" + redis_url.removeprefix("unix://")
        if redis_url.startswith("unix://")
        else redis_url
    )
    storage = storage_from_string(
        url, wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )  # fmt: skip
    assert isinstance(storage, Storage)
    return storage

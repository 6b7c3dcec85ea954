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
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from litestar.di import NamedDependency
from redis.commands.core import Script
from redis.exceptions import RedisError

from api.callers import Caller, Checkout, Operator, ShopServer
from api.errors import ApiError
from plumbing.settings import Rate, Settings
from store.sealed import phone_index

log = logging.getLogger(__name__)

#: One limit to count: the window, the kind of counter, whose counter, and (for the
#: refusal's message) what it counts and which request field it is about, if any.
_Hit = tuple[RateLimitItem, str, str, str, str | None]

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
        self._acquire_in_turn: Script | None = None
        shared = self._limiter.storage
        if isinstance(shared, RedisStorage):
            connection = shared.get_connection()
            self._acquire_in_turn = connection.register_script(_ACQUIRE_IN_TURN.encode())
            self._prefix = shared.key_prefix

    def initiate_by(self, address: str, caller: Caller, phone: str | None = None) -> None:
        """Count an initiate from `address` by `caller`, and a prompt to the phone `phone`
        if given; 429 past RATE_LIMIT_IP, _KEY or _PHONE.

        In Redis every window is counted in one round trip (`_ACQUIRE_IN_TURN`), as calls
        one by one would count them: the address first, then the key, then the phone, each
        only if the ones before allowed it.
        """
        subject = _subject(caller)
        hits: list[_Hit] = [(self.address, "initiate-ip", address, "this address", None)]
        if subject is not None:
            hits.append((self.key, "initiate-key", subject, "this API key or checkout token", None))
        if phone is not None:
            hits.append(self._phone_hit(phone))
        self._count(hits)

    def _phone_hit(self, msisdn: str) -> _Hit:
        digest = phone_index(msisdn)  # the blind index: the number itself never reaches Redis
        return (self.phone, "prompt-phone", digest, "this phone number", "phoneNumber")

    def _count(self, hits: list[_Hit]) -> None:
        if self._acquire_in_turn is None:
            for hit in hits:
                self._hit(hit)
            return
        try:
            keys, args = [], [time.time()]
            for item, kind, who, _, _ in hits:
                keys.append(f"{self._prefix}:{item.key_for(kind, who)}")
                args += [item.amount, item.get_expiry()]
            refused = int(self._acquire_in_turn(keys, args))
        except (StorageError, OSError, RedisError) as exc:
            log.warning("rate limits counted in this process: storage failed (%s)", exc)
            for hit in hits:
                item, kind, who, _, _ = hit
                self._refuse_unless(self._fallback, self._fallback.hit(item, kind, who), hit)
            return
        if refused:
            self._refuse_unless(self._limiter, False, hits[refused - 1])

    def _hit(self, hit: _Hit) -> None:
        item, kind, who, _, _ = hit
        try:
            allowed = self._limiter.hit(item, kind, who)
            limiter = self._limiter
        except (StorageError, OSError) as exc:
            log.warning("rate limits counted in this process: storage failed (%s)", exc)
            limiter = self._fallback
            allowed = limiter.hit(item, kind, who)
        self._refuse_unless(limiter, allowed, hit)

    def _refuse_unless(self, limiter: MovingWindowRateLimiter, allowed: bool, hit: _Hit) -> None:
        if allowed:
            return
        item, kind, who, what, field = hit
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


#: The per-app rate limits, injected by name.
Limits = NamedDependency[RateLimits]


#: Moving windows counted in turn, atomically, as `limits`' own acquire script counts one
#: (a list of hit times per key, newest first). KEYS: one per window; ARGV: the time, then
#: each window's limit and length in seconds. Returns 0 when every window took the hit,
#: else the (1-based) number of the first window that refused; the windows before it
#: counted the hit, the later ones were not asked.
_ACQUIRE_IN_TURN = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    if limit < 1 then
        return i
    end
    local entry = redis.call('lindex', key, limit - 1)
    if entry and tonumber(entry) >= now - expiry then
        return i
    end
    redis.call('lpush', key, now)
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, expiry)
end
return 0
"""


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

"""One Daraja OAuth token, shared by every process and thread that calls Daraja.

Daraja's portal says each new token request may invalidate the previous token (DARAJA.md §1),
so tokens are never fetched per request: a cache hands out the current one and fetches a new
one under a lock, so only one caller fetches while the others wait and reuse its answer.
The cached copy expires a safety margin before Daraja's `expires_in`, so it is replaced
before Daraja starts refusing it.

Tokens are cached per *scope* (a hash of the base URL and consumer key), so sandbox,
production and simulator tokens never mix in one Redis.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis
from redis.exceptions import LockError, RedisError

from daraja.errors import AnswerKind, Reason, Refused
from daraja.wire import AccessToken

#: Refresh this long before Daraja's `expires_in` (3599 s → refreshed after 55 minutes)...
SAFETY_MARGIN_S = 300.0
#: ...but never more than this share of a short lifetime (the simulator's chaos knob).
SAFETY_FRACTION = 0.1
#: Redis keys: `<prefix>:<scope>` holds the token, `<prefix>:<scope>:lock` the refresh lock.
KEY_PREFIX = "khalex-pay:daraja:token"
#: A refresh lock frees itself after this long if its holder dies mid-fetch.
LOCK_TIMEOUT_S = 30.0
#: How long a caller waits for another process's fetch before giving up (retryable).
LOCK_WAIT_S = 35.0
#: How long a process reuses the token it read from Redis without asking Redis again (never
#: past the Redis copy's own expiry). A token another process replaced meanwhile is refused
#: by Daraja before processing, and then invalidated and read afresh, like any refused one.
LOCAL_TTL_S = 5.0

#: Fetches a fresh token from Daraja; raises `Refused` when it cannot.
Fetch = Callable[[], AccessToken]

log = logging.getLogger("daraja.tokens")

#: Delete the key only if it still holds the token we were refused with, so a fresh token
#: another process just stored survives our late invalidation.
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def token_scope(base_url: str, consumer_key: str) -> str:
    """A short, non-reversible cache scope for one Daraja app on one host."""
    return hashlib.sha256(f"{base_url}\0{consumer_key}".encode()).hexdigest()[:16]


def cache_ttl_s(expires_in_s: float) -> float:
    """How long to keep a token Daraja says lives `expires_in_s` seconds."""
    return expires_in_s - min(SAFETY_MARGIN_S, expires_in_s * SAFETY_FRACTION)


class TokenCache(Protocol):
    """Where `DarajaClient` gets its access token."""

    def token(self, scope: str, fetch: Fetch) -> str:
        """The cached token for `scope`, or a fresh one from `fetch` (one fetch at a time)."""
        ...

    def invalidate(self, scope: str, token: str) -> None:
        """Forget `token` (Daraja refused it), unless it has already been replaced."""
        ...


class MemoryTokenCache:
    """A per-process cache for the embedded dev mode and tests; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def token(self, scope: str, fetch: Fetch) -> str:
        # Holding the lock across the fetch is the point: concurrent callers wait for it.
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and entry[1] > self._clock():
                return entry[0]
            started = self._clock()
            fresh = fetch()
            self._entries[scope] = (fresh.value, started + cache_ttl_s(fresh.expires_in_s))
            log.info("fetched a Daraja token valid for %ss", fresh.expires_in_s)
            return fresh.value

    def invalidate(self, scope: str, token: str) -> None:
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and entry[0] == token:
                del self._entries[scope]


class RedisTokenCache:
    """A cache shared by every process through Redis; refreshes under a Redis lock.

    Each process keeps the token it read for up to `local_ttl_s` (within the Redis copy's
    expiry), so a call costs no round trip to Redis.
    """

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        prefix: str = KEY_PREFIX,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        lock_wait_s: float = LOCK_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        local_ttl_s: float = LOCAL_TTL_S,
    ) -> None:
        self._redis = client
        self._local_ttl_s = local_ttl_s
        #: scope -> (token, until) on `clock`; replaced whole, so threads may read it freely.
        self._local: dict[str, tuple[str, float]] = {}
        self._prefix = prefix
        self._lock_timeout_s = lock_timeout_s
        self._lock_wait_s = lock_wait_s
        self._clock = clock
        self._delete_if = client.register_script(_COMPARE_AND_DELETE)

    def token(self, scope: str, fetch: Fetch) -> str:
        now = self._clock()
        local = self._local.get(scope)
        if local is not None and local[1] > now:
            return local[0]
        key = f"{self._prefix}:{scope}"
        try:
            found = self._get_with_ttl(key)
            if found is None:
                value = self._fetch_locked(key, fetch)
                found = self._get_with_ttl(key) or (value, 0.0)
        except RedisError as exc:
            raise _unavailable(f"token cache unavailable: {type(exc).__name__}") from exc
        value, ttl_s = found
        self._local[scope] = (value, now + min(self._local_ttl_s, ttl_s))
        return value

    def invalidate(self, scope: str, token: str) -> None:
        local = self._local.get(scope)
        if local is not None and local[0] == token:
            self._local.pop(scope, None)
        try:
            self._delete_if(keys=[f"{self._prefix}:{scope}"], args=[token])
        except RedisError as exc:
            raise _unavailable(f"token cache unavailable: {type(exc).__name__}") from exc

    def _get_with_ttl(self, key: str) -> tuple[str, float] | None:
        """The token stored at `key` and the seconds it has left, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        value, ttl_ms = pipe.execute()
        if value is None:
            return None
        token = value.decode() if isinstance(value, bytes) else str(value)
        return token, max(0.0, int(ttl_ms) / 1000)

    def _get(self, key: str) -> str | None:
        value = self._redis.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def _fetch_locked(self, key: str, fetch: Fetch) -> str:
        lock = self._redis.lock(
            f"{key}:lock", timeout=self._lock_timeout_s, blocking_timeout=self._lock_wait_s
        )
        if not lock.acquire():
            raise _unavailable("another process is still fetching the token")
        try:
            # Whoever held the lock before us has probably stored a token already.
            return self._get(key) or self._store(key, fetch)
        finally:
            _release(lock)

    def _store(self, key: str, fetch: Fetch) -> str:
        started = self._clock()
        fresh = fetch()
        ttl_ms = int((cache_ttl_s(fresh.expires_in_s) - (self._clock() - started)) * 1000)
        if ttl_ms > 0:
            self._redis.set(key, fresh.value, px=ttl_ms)
        log.info(
            "fetched a Daraja token valid for %ss, cached for %sms", fresh.expires_in_s, ttl_ms
        )
        return fresh.value


def _release(lock: redis.lock.Lock) -> None:
    try:
        lock.release()
    except LockError:
        # The lock timed out during a slow fetch and may now be someone else's: nothing to do.
        log.warning("token refresh lock expired before it was released")


def _unavailable(message: str) -> Refused:
    return Refused(message, retryable=True, reason=Reason.TOKEN_UNAVAILABLE, kind=AnswerKind.LOCAL)

"""The shared OAuth token caches: reuse, early refresh, one fetch at a time, invalidation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest

from daraja.errors import AnswerKind, Reason, Refused
from daraja.tokens import (
    KEY_PREFIX,
    MemoryTokenCache,
    RedisTokenCache,
    cache_ttl_s,
    token_scope,
)
from daraja.wire import AccessToken

pytestmark = pytest.mark.unit

SCOPE = token_scope("https://sandbox.safaricom.co.ke", "key")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """Stands in for Daraja's token endpoint: numbered tokens, counted fetches."""

    def __init__(self, expires_in_s: int = 3599, delay_s: float = 0.0) -> None:
        self.fetches = 0
        self.expires_in_s = expires_in_s
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def __call__(self) -> AccessToken:
        time.sleep(self.delay_s)
        with self._lock:
            self.fetches += 1
            return AccessToken(f"token-{self.fetches}", self.expires_in_s)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def _redis_cache(server: fakeredis.FakeServer, **kwargs: Any) -> RedisTokenCache:
    return RedisTokenCache(fakeredis.FakeRedis(server=server), **kwargs)


def test_ttl_refreshes_a_standard_token_five_minutes_early() -> None:
    assert cache_ttl_s(3599) == 3299


def test_ttl_keeps_most_of_a_short_lifetime() -> None:
    assert cache_ttl_s(10) == 9


def test_scope_differs_per_host_and_app_and_hides_the_key() -> None:
    assert token_scope("https://a", "key") != token_scope("https://b", "key")
    assert token_scope("https://a", "key") != token_scope("https://a", "other")
    assert "key" not in token_scope("https://a", "key")


def test_memory_cache_reuses_the_token_until_shortly_before_expiry() -> None:
    clock, issuer = Clock(), Issuer()
    cache = MemoryTokenCache(clock=clock)
    assert cache.token(SCOPE, issuer) == "token-1"
    clock.now += 3298
    assert cache.token(SCOPE, issuer) == "token-1"
    clock.now += 2  # 3300 s: past the refresh point, still before Daraja's 3599 s
    assert cache.token(SCOPE, issuer) == "token-2"
    assert issuer.fetches == 2


def test_memory_cache_invalidates_only_the_token_it_was_told_about() -> None:
    cache, issuer = MemoryTokenCache(), Issuer()
    stale = cache.token(SCOPE, issuer)
    cache.invalidate(SCOPE, stale)
    fresh = cache.token(SCOPE, issuer)
    cache.invalidate(SCOPE, stale)  # a late invalidation from another thread
    assert cache.token(SCOPE, issuer) == fresh == "token-2"


def test_memory_cache_fetches_once_for_concurrent_callers() -> None:
    _assert_one_fetch_for_concurrent_callers(MemoryTokenCache().token)


def test_redis_cache_stores_the_token_with_a_ttl_before_darajas_expiry(
    server: fakeredis.FakeServer,
) -> None:
    cache = _redis_cache(server)
    assert cache.token(SCOPE, Issuer()) == "token-1"
    ttl_ms = fakeredis.FakeRedis(server=server).pttl(f"{KEY_PREFIX}:{SCOPE}")
    assert 3_290_000 < ttl_ms <= 3_299_000


def test_redis_cache_is_shared_between_processes(server: fakeredis.FakeServer) -> None:
    issuer = Issuer()
    first, second = _redis_cache(server), _redis_cache(server)
    assert first.token(SCOPE, issuer) == second.token(SCOPE, issuer) == "token-1"
    assert issuer.fetches == 1


def test_redis_cache_fetches_again_once_the_cached_copy_expired(
    server: fakeredis.FakeServer,
) -> None:
    issuer = Issuer(expires_in_s=1)
    cache = _redis_cache(server)
    assert cache.token(SCOPE, issuer) == "token-1"
    time.sleep(1.0)  # cached for 0.9 s: Redis's own expiry, on its own clock, must pass
    assert cache.token(SCOPE, issuer) == "token-2"


def test_redis_cache_reuses_its_copy_for_a_few_seconds_without_asking_redis(
    server: fakeredis.FakeServer,
) -> None:
    clock, issuer = Clock(), Issuer()
    cache = _redis_cache(server, clock=clock, local_ttl_s=5.0)
    assert cache.token(SCOPE, issuer) == "token-1"
    fakeredis.FakeRedis(server=server).set(f"{KEY_PREFIX}:{SCOPE}", "token-from-elsewhere")

    clock.now += 4.9
    assert cache.token(SCOPE, issuer) == "token-1"
    clock.now += 0.2
    assert cache.token(SCOPE, issuer) == "token-from-elsewhere"
    assert issuer.fetches == 1


def test_redis_cache_drops_its_own_copy_of_a_refused_token(server: fakeredis.FakeServer) -> None:
    clock, issuer = Clock(), Issuer()
    cache = _redis_cache(server, clock=clock, local_ttl_s=60.0)
    stale = cache.token(SCOPE, issuer)
    fakeredis.FakeRedis(server=server).set(f"{KEY_PREFIX}:{SCOPE}", "token-from-elsewhere")

    cache.invalidate(SCOPE, stale)

    assert cache.token(SCOPE, issuer) == "token-from-elsewhere"


def test_redis_cache_fetches_once_for_concurrent_processes(server: fakeredis.FakeServer) -> None:
    caches = [_redis_cache(server) for _ in range(4)]
    calls = iter(caches * 2)
    lock = threading.Lock()

    def token(scope: str, fetch: Callable[[], AccessToken]) -> str:
        with lock:
            cache = next(calls)
        return cache.token(scope, fetch)

    _assert_one_fetch_for_concurrent_callers(token)


def test_redis_cache_invalidates_only_the_token_it_was_told_about(
    server: fakeredis.FakeServer,
) -> None:
    cache, issuer = _redis_cache(server), Issuer()
    stale = cache.token(SCOPE, issuer)
    cache.invalidate(SCOPE, stale)
    fresh = cache.token(SCOPE, issuer)
    cache.invalidate(SCOPE, stale)
    assert cache.token(SCOPE, issuer) == fresh == "token-2"


def test_redis_cache_gives_up_waiting_for_a_stuck_refresh(server: fakeredis.FakeServer) -> None:
    holder = fakeredis.FakeRedis(server=server).lock(f"{KEY_PREFIX}:{SCOPE}:lock", timeout=30)
    assert holder.acquire()
    cache = _redis_cache(server, lock_wait_s=0.2)
    with pytest.raises(Refused) as caught:
        cache.token(SCOPE, Issuer())
    assert caught.value.retryable
    assert caught.value.reason is Reason.TOKEN_UNAVAILABLE


def test_redis_outage_is_a_retryable_refusal(server: fakeredis.FakeServer) -> None:
    cache = _redis_cache(server)
    server.connected = False
    with pytest.raises(Refused) as caught:
        cache.token(SCOPE, Issuer())
    assert caught.value.retryable
    assert caught.value.reason is Reason.TOKEN_UNAVAILABLE


def test_a_token_fetch_refusal_passes_through_the_cache(server: fakeredis.FakeServer) -> None:
    refusal = Refused("bad key", retryable=False, reason=Reason.AUTH_FAILED, kind=AnswerKind.LOCAL)

    def refuse() -> AccessToken:
        raise refusal

    with pytest.raises(Refused) as caught:
        _redis_cache(server).token(SCOPE, refuse)
    assert caught.value is refusal


def _assert_one_fetch_for_concurrent_callers(token: Callable[[str, Issuer], str]) -> None:
    issuer = Issuer(delay_s=0.2)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(token(SCOPE, issuer))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["token-1"] * 8
    assert issuer.fetches == 1

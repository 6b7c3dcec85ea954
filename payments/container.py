"""What the use cases need, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Protocol

from sqlalchemy.engine import Engine

from daraja.client import DarajaClient, DarajaConfig, ExchangeRecorder
from daraja.tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from daraja.wire import PushAccepted, QueryResult
from plumbing.settings import Settings
from store.db import autocommit, make_engine
from store.outbox import Job, SentMarker

#: Hands one outbox job to the broker; raises if the broker cannot take it.
Publish = Callable[[Job], None]


class Daraja(Protocol):
    """What the use cases ask of Daraja (`daraja.client.DarajaClient`, or a test fake)."""

    def stk_push(
        self,
        *,
        phone: str,
        amount: int,
        callback_url: str,
        account_reference: str,
        description: str,
        recorder: ExchangeRecorder | None = None,
    ) -> PushAccepted: ...

    def stk_query(
        self, checkout_request_id: str, *, recorder: ExchangeRecorder | None = None
    ) -> QueryResult: ...

    def close(self) -> None: ...


class Container:
    """Settings, the database engine, the way to publish jobs, and the Daraja client.

    A plain class on purpose: Litestar injects it as an opaque dependency.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        publish: Publish,
        *,
        token_cache: TokenCache | None = None,
        daraja: Daraja | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.publish = publish
        self.token_cache = token_cache
        self._daraja = daraja

    @classmethod
    def build(cls, settings: Settings, publish: Publish, *, ping: bool = True) -> Container:
        """The container of a process; `ping`: see `store.db.make_engine`."""
        engine = make_engine(settings.database_url, ping=ping)
        return cls(settings=settings, engine=engine, publish=publish)

    @cached_property
    def reads(self) -> Engine:
        """The engine for one-statement reads: no transaction round trips around them."""
        return autocommit(self.engine)

    @cached_property
    def sent_marker(self) -> SentMarker:
        """Marks the jobs this process published right after their commit (payments/relay.py)."""
        return SentMarker(self.reads)

    def flush_sent(self) -> None:
        """Mark sent every job this process has published so far."""
        if "sent_marker" in self.__dict__:
            self.sent_marker.flush()

    @cached_property
    def daraja(self) -> Daraja:
        """The Daraja client, made on first use (the API process never needs one)."""
        if self._daraja is not None:
            return self._daraja
        tokens = self.token_cache or _token_cache(self.settings)
        return DarajaClient(daraja_config(self.settings), tokens)

    def close(self) -> None:
        if "sent_marker" in self.__dict__:
            self.sent_marker.close()
        if "daraja" in self.__dict__:
            self.daraja.close()
        self.engine.dispose()


def daraja_config(settings: Settings) -> DarajaConfig:
    """The client's config from the `MPESA_*` settings every process reads at start."""
    return DarajaConfig(
        base_url=settings.mpesa_base_url.rstrip("/"),
        consumer_key=settings.mpesa_consumer_key,
        consumer_secret=settings.mpesa_consumer_secret,
        shortcode=settings.mpesa_business_shortcode,
        passkey=settings.mpesa_passkey,
        transaction_type=settings.mpesa_transaction_type,
        party_b=settings.mpesa_party_b,
        timeout_s=settings.mpesa_timeout_s,
        max_concurrency=settings.daraja_max_concurrency,
    )


def _token_cache(settings: Settings) -> TokenCache:
    if settings.redis_url:
        import redis  # noqa: PLC0415 - only processes that talk to Daraja need it

        return RedisTokenCache(redis.Redis.from_url(settings.redis_url))
    return MemoryTokenCache()

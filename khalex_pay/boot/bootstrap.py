"""The one start order of every process: logging, then Sentry, then the broker, the container."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from payments.container import Container
from plumbing import sealing
from plumbing.logs import setup_logging
from plumbing.observability import init_sentry
from plumbing.settings import Settings, keyring
from workers import actors
from workers.broker import build_broker, publisher
from workers.poison import PoisonGuard, RedisCounter


@dataclass(frozen=True)
class Started:
    """A process's broker and the container its use cases run in."""

    broker: dramatiq.Broker
    container: Container


def bootstrap(role: str, settings: Settings, *, in_process: bool = False) -> Started:
    """Set up `role`'s process; `in_process` gives the stub broker (dev) instead of Redis."""
    plain = settings.log_format == "plain" or (settings.log_format == "auto" and role == "dev")
    setup_logging(role, settings.log_level, plain=plain)
    install_keyring(settings)
    init_sentry(settings, role)  # before the broker: Sentry patches its constructor
    broker = build_broker(settings, in_process=in_process)
    # A worker's jobs are idempotent and retried, and so is each write they must not lose:
    # a backend killed while its connection sat in the pool costs a retry, so the worker
    # does not spend a round trip pinging every checkout (three a push) to avoid one. The
    # API pings: a request that met a dead connection would fail in the shop's face.
    ping = role != "worker"
    return Started(broker, Container.build(settings, publisher(broker), ping=ping))


def install_keyring(settings: Settings) -> None:
    """Install the personal-data keys; a process that stores payments cannot run without."""
    keys = keyring(settings)
    if keys is None:
        raise sealing.SealingError(
            "DATA_ENCRYPTION_KEYS and BLIND_INDEX_KEY are not set: personal data cannot be "
            "stored (`khalex-pay dev` makes its own; see docs/OPERATIONS.md)"
        )
    sealing.install(keys)


def consume_jobs(started: Started) -> None:
    """Make this process run the actors: the global broker, the poison guard, the actors."""
    broker, container = started.broker, started.container
    dramatiq.set_broker(broker)
    # On Redis the starts and finishes are counted there, next to the broker's own keys.
    counter = RedisCounter(broker.client) if isinstance(broker, RedisBroker) else None
    broker.add_middleware(PoisonGuard(container.engine, counter=counter))
    actors.bind(container)
    actors.register(broker, expiry_s=container.settings.payment_expiry_s)

"""The module each `dramatiq` worker process imports: broker, container and actors."""

from __future__ import annotations

import dramatiq

from khalex_pay.container import Container
from plumbing.logs import setup_logging
from plumbing.observability import init_sentry
from plumbing.settings import load_settings
from workers import actors
from workers.broker import build_broker, publisher
from workers.poison import PoisonGuard

settings = load_settings()
setup_logging("worker")
init_sentry(settings, "worker")  # before the broker: Sentry patches its constructor
broker = build_broker(settings)
dramatiq.set_broker(broker)
container = Container.build(settings, publisher(broker))
broker.add_middleware(PoisonGuard(container.engine))
actors.bind(container)
actors.register(broker, expiry_s=settings.payment_expiry_s)

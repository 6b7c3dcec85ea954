"""The production ASGI app, built from the environment (`khalex-pay api` serves it)."""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from khalex_pay.container import Container
from plumbing.logs import setup_logging
from plumbing.observability import init_sentry
from plumbing.settings import load_settings
from workers.broker import build_broker, publisher


def app_from_env() -> Litestar:
    """Settings from the environment; jobs go to the Redis broker through the outbox."""
    settings = load_settings()
    setup_logging("api")
    init_sentry(settings, "api")  # before the broker: Sentry patches its constructor
    broker = build_broker(settings)
    return create_app(Container.build(settings, publisher(broker)))

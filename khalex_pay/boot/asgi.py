"""The production ASGI app, built from the environment (`khalex-pay api` serves it)."""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from khalex_pay.boot.bootstrap import bootstrap
from plumbing.settings import load_settings


def app_from_env() -> Litestar:
    """Settings from the environment; jobs go to the Redis broker through the outbox."""
    return create_app(bootstrap("api", load_settings()).container)

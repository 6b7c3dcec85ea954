"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from api import client_js, health, ops, schema_viewer
from api.c2b import C2bController
from api.callers import Caller, VerifiedKeys, caller_provider
from api.content_type import require_json
from api.correlation import correlation_middleware
from api.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    internal_error_handler,
    validation_error_handler,
)
from api.events import payment_events
from api.openapi_docs import COMPONENTS, OVERVIEW
from api.orders import OrderController
from api.payment_config import payment_config
from api.payments import PaymentController
from api.rate_limits import Limits, RateLimits
from api.types import AnyRequest, Deps
from operations.dlq import QueueReader
from payments.container import Container

#: Largest request body we read (a callback is ~1 KB; an initiate request less).
MAX_BODY_BYTES = 64 * 1024


def create_app(
    container: Container,
    *,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
    debug: bool = False,
    queues: QueueReader | None = None,
    verified_keys: VerifiedKeys | None = None,
) -> Litestar:
    """The API, serving `container`; `extra_handlers` mounts e.g. the simulator in dev.

    `queues` is what `/metrics` and `/api/ops/queues` read the broker with (default: Redis
    when REDIS_URL is set, else the dev process's stub broker). `verified_keys` holds the
    API keys verified lately (api/callers.py; a test may bring its own clock).
    """
    settings = container.settings
    rate_limits = RateLimits(settings)
    resolve_caller = caller_provider(container, verified_keys)

    # Litestar resolves a handler's independent dependencies as tasks of a task group, which
    # costs more than these providers do; each one names the one before it (container, then
    # rate limits, then caller), so they are resolved in turn instead.
    def provide_rate_limits(container: Deps) -> RateLimits:
        return rate_limits

    async def provide_caller(request: AnyRequest, rate_limits: Limits) -> Caller:
        return await resolve_caller(request)

    return Litestar(
        route_handlers=[
            PaymentController,
            C2bController,
            OrderController,
            payment_events,
            payment_config,
            client_js.client_module,
            client_js.client_types,
            schema_viewer.assets(),
            health.live,
            health.ready,
            *ops.routes(container, queues),
            *extra_handlers,
        ],
        dependencies={
            "container": Provide(lambda: container, sync_to_thread=False),
            # Resolved only for handlers that declare `caller: Caller` (api/callers.py).
            "caller": Provide(provide_caller),
            "rate_limits": Provide(provide_rate_limits, sync_to_thread=False),
        },
        guards=[require_json],
        # Off unless the shop names its origins: no other site's page may call us.
        cors_config=_cors(settings.cors_allow_origins),
        exception_handlers={
            ApiError: api_error_handler,
            ValidationException: validation_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Khalex Pay",
            version="0.1.0",
            description=OVERVIEW,
            use_handler_docstrings=True,  # each handler's docstring describes its operation
            components=COMPONENTS,
            render_plugins=schema_viewer.render_plugins(),
        ),
        request_max_body_size=MAX_BODY_BYTES,
        middleware=[correlation_middleware],
        on_startup=list(on_startup),
        on_shutdown=[*on_shutdown, container.close],
        logging_config=None,  # plumbing.logs owns logging (JSON, phone numbers masked)
        debug=debug,
    )


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Location", "Retry-After", "Idempotent-Replayed"],
        max_age=600,
    )

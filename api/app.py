"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from api import health, ops
from api.callers import provide_caller
from api.correlation import correlation_middleware
from api.errors import ApiError, api_error_handler, http_error_handler, internal_error_handler
from api.orders import OrderController
from api.payments import PaymentController
from khalex_pay.container import Container
from khalex_pay.dlq import QueueReader

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
) -> Litestar:
    """The API, serving `container`; `extra_handlers` mounts e.g. the simulator in dev.

    `queues` is what `/metrics` and `/api/ops/queues` read the broker with (default: Redis
    when REDIS_URL is set, else the dev process's stub broker).
    """
    return Litestar(
        route_handlers=[
            PaymentController,
            OrderController,
            health.live,
            health.ready,
            *ops.routes(container, queues),
            *extra_handlers,
        ],
        dependencies={
            "container": Provide(lambda: container, sync_to_thread=False),
            # Resolved only for handlers that declare `caller: Caller` (api/callers.py).
            "caller": Provide(provide_caller, sync_to_thread=True),
        },
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        openapi_config=OpenAPIConfig(title="Khalex Pay", version="0.1.0"),
        request_max_body_size=MAX_BODY_BYTES,
        middleware=[correlation_middleware],
        on_startup=list(on_startup),
        on_shutdown=[*on_shutdown, container.close],
        logging_config=None,  # khalex_pay.logs owns logging (JSON, phone numbers masked)
        debug=debug,
    )

"""The simulator as a Litestar app, or as a Router to mount at the root of another app.

`simulator_router(state)` carries every handler and injects `state` into them, so the one-
process dev mode mounts exactly the handlers the standalone server runs. Its paths
(`/oauth`, `/mpesa`, `/simulator`) never collide with Khalex Pay's `/api` and `/health`.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ExceptionHandler

from daraja.simulator import control_routes, daraja_routes, errors, ids, paybill_routes
from daraja.simulator.answers import error_answer
from daraja.simulator.config import SimulatorConfig
from daraja.simulator.errors import Refusal
from daraja.simulator.state import SimulatorState

log = logging.getLogger("daraja.simulator")

#: Draws request ids for refusals made outside any simulator state (unknown paths, crashes).
_REQUEST_IDS = random.Random()  # noqa: S311 - request ids are not secrets

ROUTE_HANDLERS = (
    daraja_routes.generate_token,
    daraja_routes.process_request,
    daraja_routes.query_request,
    control_routes.read_ledger,
    control_routes.list_prompts,
    control_routes.act_on_prompt,
    control_routes.read_chaos,
    control_routes.change_chaos,
    control_routes.reset,
    paybill_routes.register_v1,
    paybill_routes.register_v2,
    paybill_routes.pay_by_paybill,
    paybill_routes.read_paybill,
)


def simulator_router(state: SimulatorState) -> Router:
    """Every simulator handler at the root path, bound to `state`.

    The host app must call `state.aclose()` on shutdown to stop timers and close the
    callback client.
    """
    return Router(
        path="/",
        route_handlers=list(ROUTE_HANDLERS),
        dependencies={"sim": Provide(lambda: state, sync_to_thread=False)},
        exception_handlers={Exception: _crash_answer},
        include_in_schema=False,
    )


def route_handlers(state: SimulatorState) -> list[Router]:
    """The handlers to pass in a host app's `route_handlers` (one Router)."""
    return [simulator_router(state)]


def create_app(config: SimulatorConfig) -> Litestar:
    """A standalone simulator server for `config`."""
    state = SimulatorState(config)
    return Litestar(
        route_handlers=route_handlers(state),
        on_shutdown=[state.aclose],
        exception_handlers={
            NotFoundException: _answer_with(errors.RESOURCE_NOT_FOUND),
            MethodNotAllowedException: _answer_with(errors.METHOD_NOT_ALLOWED),
        },
        openapi_config=None,
    )


def _answer_with(error: Refusal) -> ExceptionHandler[Exception]:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        return error_answer(error, ids.request_id(_REQUEST_IDS))

    return handler


def _crash_answer(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Bad input must never take the simulator down; answer as Daraja does when it breaks.
    # No path in the line: prompt paths carry CheckoutRequestIDs, which embed the phone number.
    log.error("simulator handler failed on a %s", request.method, exc_info=exc)
    return error_answer(errors.INTERNAL_ERROR, ids.request_id(_REQUEST_IDS))

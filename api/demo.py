"""The person-facing pages of `khalex-pay dev`: a demo checkout and a virtual phone.

`/` is a small Khalex Chess shop that pays through the real API; `/phone` shows the Daraja
simulator's open prompts so a person can pay, cancel or ignore them by hand. The shop page
calls `/demo/api/payments/...`: the demo shop's own server side, which calls the payment
API as the shop server would with its key (a browser never holds a shop key). Both are plain
HTML files with inline script, served as they are (no build step, nothing from a CDN), and
mounted only in dev mode: production serves neither the pages nor the simulator they use.
"""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, get, post
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler

from api.callers import ShopServer
from api.payments import Limits, initiate_as, status_as
from api.types import AnyRequest, Deps

#: Where the page files live (shipped inside the `api` package).
STATIC = Path(__file__).resolve().parent / "static"
#: The pages change while someone edits them; never let a browser keep an old copy.
NO_CACHE = {"Cache-Control": "no-store"}


def _page(name: str) -> Response[bytes]:
    # Read on each request so an edited page shows on reload without restarting dev mode.
    return Response((STATIC / name).read_bytes(), media_type=MediaType.HTML, headers=NO_CACHE)


@get("/", include_in_schema=False, sync_to_thread=False)
def checkout_page() -> Response[bytes]:
    """The demo shop: pick a chess product, pay with M-Pesa, watch the payment's state."""
    return _page("checkout.html")


@get("/phone", include_in_schema=False, sync_to_thread=False)
def phone_page() -> Response[bytes]:
    """The virtual phone: the simulator's open prompts with Pay / Cancel / Wrong PIN / Ignore."""
    return _page("phone.html")


#: Who the demo shop's server side calls as.
DEMO_SHOP = ShopServer(key_id=None)


@post("/demo/api/payments/initiate", include_in_schema=False, sync_to_thread=True,
      status_code=HTTP_202_ACCEPTED)  # fmt: skip
def demo_initiate(
    request: AnyRequest, container: Deps, rate_limits: Limits, body: RawBody
) -> Response[dict[str, object]]:
    """The demo shop's server: initiate as the shop server (limits and checks as for anyone)."""
    return initiate_as(request, container, rate_limits, DEMO_SHOP, body)


@get("/demo/api/payments/status/{ref:str}", include_in_schema=False, sync_to_thread=True)
def demo_status(ref: FromPath[str], container: Deps) -> dict[str, object]:
    """The demo shop's server: a payment's status, as the shop server reads it."""
    return status_as(container, DEMO_SHOP, ref)


def route_handlers() -> list[ControllerRouterHandler]:
    """The handlers dev mode mounts next to the simulator's."""
    return [checkout_page, phone_page, demo_initiate, demo_status]

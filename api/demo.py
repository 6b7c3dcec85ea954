"""The person-facing pages of `khalex-pay dev`: a demo checkout and a virtual phone.

`/` is a small Khalex Chess shop that pays through the real API: `POST /demo/orders` plays
the shop's server (it creates the order at the shop's prices and hands the page a checkout
token), and the page pays that order with only the customer's phone number. `/phone` shows
the Daraja simulator's open prompts so a person can pay, cancel or ignore them by hand. Both
are plain HTML files with inline script, served as they are (no build step, nothing from a
CDN), and mounted only in dev mode: production serves neither the pages nor the simulator they use.
"""

from __future__ import annotations

import json
from pathlib import Path

from litestar import MediaType, Response, get, post
from litestar.params import RawBody
from litestar.status_codes import HTTP_201_CREATED
from litestar.types import ControllerRouterHandler

from api import checkout_tokens
from api.errors import ApiError
from api.order_schemas import parse_order
from api.schemas import decode_object
from api.types import AnyRequest, Deps
from payments import orders

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


#: The demo shop's prices, held by its "server": the page names a product, never a price.
CATALOGUE = {
    "board-01": ("Tournament chess board", 1500),
    "pieces-01": ("Weighted Staunton pieces", 3200),
    "clock-02": ("Digital chess clock", 2800),
    "book-01": ("Openings for club players", 1200),
    "travel-01": ("Magnetic travel set", 650),
}


@post("/demo/orders", include_in_schema=False, sync_to_thread=True, status_code=HTTP_201_CREATED)
def demo_order(request: AnyRequest, container: Deps, body: RawBody) -> dict[str, object]:
    """What a shop's server does: create the order at its own prices, hand the page a token.

    Body: productId, phoneNumber, customerName, customerEmail. Answers orderId, totalAmount,
    the checkoutToken the page pays with, the shop's name the prompt shows and how long a
    payment may wait for the PIN (the page's countdown).
    """
    data = decode_object(body)
    product = CATALOGUE.get(str(data.get("productId")))
    if product is None:
        raise ApiError(422, "invalid_field", "Choose a product.", "productId")
    name, price = product
    order = {
        "customerName": data.get("customerName"),
        "customerEmail": data.get("customerEmail") or None,
        "customerPhone": data.get("phoneNumber"),
        "items": [{"productId": data["productId"], "productName": name, "quantity": 1,
                   "unitPrice": price}],
    }  # fmt: skip
    new = parse_order(json.dumps(order).encode())
    try:
        view = orders.create(container, new, request.headers.get("idempotency-key"))
    except orders.IdempotencyKeyReused as exc:
        raise ApiError(409, "idempotency_key_reused", "Start a new attempt.") from exc
    return {
        "orderId": view.order.id,
        "totalAmount": view.order.total_amount,
        "checkoutToken": checkout_tokens.mint(container.settings.jwt_secret, view.order.id),
        "shopName": container.settings.mpesa_transaction_desc,
        "paymentExpiryS": container.settings.payment_expiry_s,
    }


def route_handlers() -> list[ControllerRouterHandler]:
    """The handlers dev mode mounts next to the simulator's."""
    return [checkout_page, phone_page, demo_order]

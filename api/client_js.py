"""`GET /khalex-pay.js` and `GET /khalex-pay.d.ts`: the shop page's client, from the package.

Plain files in api/static (no build step, no CDN, no dependency); served in every mode,
since the shop's own page imports the module (cross-origin: list it in CORS_ALLOW_ORIGINS).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import Response, get

#: The files, next to this module.
STATIC = Path(__file__).resolve().parent / "static"
#: Revalidated on each load, so a new release reaches pages at once; never sniffed.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@get("/khalex-pay.js", sync_to_thread=False, include_in_schema=False)
def client_module() -> Response[bytes]:
    """The ES module: createPayments, PaymentError, isFinal and the Vue usePayments."""
    return Response(
        _read("khalex-pay.js"), media_type="text/javascript; charset=utf-8", headers=HEADERS
    )


@get("/khalex-pay.d.ts", sync_to_thread=False, include_in_schema=False)
def client_types() -> Response[bytes]:
    """TypeScript declarations for the module."""
    return Response(
        _read("khalex-pay.d.ts"), media_type="application/typescript; charset=utf-8",
        headers=HEADERS,
    )  # fmt: skip

"""`GET /ops`: the operators' dashboard, one HTML file with its own script and charts.

The page holds no data, so it needs no token; it asks the operator for one and calls the
guarded `/api/ops/*` endpoints with it. No build step and nothing from a CDN.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import MediaType, Response, get

#: The page, next to this module.
PAGE = Path(__file__).parent / "static" / "ops.html"
#: Inline script and style only, data from this origin only, never framed.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    ),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _html() -> str:
    return PAGE.read_text(encoding="utf-8")


@get("/ops", sync_to_thread=False, include_in_schema=False)
def page() -> Response[str]:
    """The dashboard: queue depths, success rate, times, failures, stuck payments, dead letters."""
    return Response(_html(), media_type=MediaType.HTML, headers=HEADERS)

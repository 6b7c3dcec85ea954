"""`/schema`: the OpenAPI viewer (Swagger UI), served from an installed package, not a CDN.

The page then works offline, on a shop's closed network, and under a strict content policy.
`/schema/openapi.json` is the document itself.
"""

from __future__ import annotations

from litestar import Router
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

#: Where the viewer's scripts and styles are served.
ASSETS = "/schema/assets"


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at `/schema` (and `/schema/swagger`), from ASSETS; the JSON beside it."""
    swagger = SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
    )
    return [swagger, JsonRenderPlugin()]


def assets() -> Router:
    """The viewer's files, from the `swagger-ui-bundle` package."""
    return create_static_files_router(
        path=ASSETS, directories=[swagger_ui_path], include_in_schema=False
    )

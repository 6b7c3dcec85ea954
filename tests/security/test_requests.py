"""Only JSON reaches the shop endpoints (415 otherwise); CORS is off unless configured;
/metrics wants METRICS_TOKEN when one is set; proxies are trusted only when listed."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request

from api.client_address import client_address
from khalex_pay import cli
from plumbing.settings import load_settings
from tests.integration.conftest import Harness, shop_key
from tests.security.conftest import BODY, App, bearer, counts

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_an_initiate_that_is_not_json_is_415_and_writes_nothing(
    h: Harness, app: App, content_type: str | None
) -> None:
    import json

    headers = bearer(shop_key(h))
    if content_type:
        headers["Content-Type"] = content_type
    answer = app().post("/api/payments/initiate", content=json.dumps(BODY), headers=headers)

    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    assert counts(h) == (0, 0, 0)


def test_json_with_a_charset_is_json(h: Harness, app: App) -> None:
    import json

    headers = {**bearer(shop_key(h)), "Content-Type": "application/json; charset=utf-8"}

    answer = app().post("/api/payments/initiate", content=json.dumps(BODY), headers=headers)

    assert answer.status_code == 202


def test_safaricoms_callback_is_not_held_to_the_shops_content_type(app: App) -> None:
    answer = app().post(
        "/api/payments/webhook", content=b"<not json>", headers={"Content-Type": "text/plain"}
    )

    assert answer.status_code != 415


def test_cors_is_off_unless_origins_are_configured(h: Harness, app: App) -> None:
    preflight = {
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }  # fmt: skip
    key = bearer(shop_key(h))

    off = app()
    off_preflight = off.options("/api/payments/initiate", headers=preflight)
    off_get = off.get("/api/payments/status/x", headers={**key, "Origin": SHOP})
    on = app(cors_allow_origins=(SHOP,))
    on_preflight = on.options("/api/payments/initiate", headers=preflight)
    stranger = on.get("/api/payments/status/x", headers={**key, "Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in off_preflight.headers
    assert "access-control-allow-origin" not in off_get.headers
    assert on_preflight.status_code in (200, 204)
    assert on_preflight.headers["access-control-allow-origin"] == SHOP
    assert "authorization" in on_preflight.headers["access-control-allow-headers"].lower()
    assert stranger.headers.get("access-control-allow-origin") != "https://evil.example"


def test_metrics_are_open_when_no_token_is_set(app: App) -> None:
    assert app().get("/metrics").status_code == 200  # for a scraper on a private network


def test_metrics_want_the_token_when_one_is_set(app: App) -> None:
    client = app(metrics_token="scrape-me-0123456789")

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("scrape-me-012345678")).status_code == 401
    assert client.get("/metrics", headers=bearer("scrape-me-0123456789")).status_code == 200


def _request(peer: str, forwarded: str | None) -> Request[Any, Any, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope: Any = {
        "type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
        "headers": headers, "client": (peer, 40000), "server": ("127.0.0.1", 8000),
        "scheme": "http", "root_path": "", "app": None,
    }  # fmt: skip
    return Request(scope)


def test_the_client_address_believes_forwarded_for_only_from_a_trusted_proxy() -> None:
    proxies = load_settings({"TRUSTED_PROXIES": "10.0.0.0/8"}).trusted_proxies
    spoofed = "198.51.100.7, 203.0.113.9"

    assert client_address(_request("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert client_address(_request("127.0.0.1", "1.2.3.4"), ()) == "127.0.0.1"
    assert client_address(_request("10.0.0.5", spoofed), proxies) == "203.0.113.9"
    assert client_address(_request("10.0.0.5", f"{spoofed}, 10.0.0.6"), proxies) == "203.0.113.9"
    assert client_address(_request("10.0.0.5", "not-an-ip"), proxies) == "10.0.0.5"


def test_the_api_command_does_not_let_uvicorn_believe_forwarded_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))

    assert cli.main(["api"]) == 0
    assert seen["proxy_headers"] is False

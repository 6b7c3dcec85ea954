"""`/schema` works offline: the viewer's every script, style and icon is served by us."""

from __future__ import annotations

import re

from litestar.testing import TestClient

from api.app import create_app
from payments.container import Container
from plumbing.settings import Settings
from store.db import make_engine


def test_the_schema_page_loads_every_asset_from_this_server() -> None:
    container = Container(Settings(), make_engine("sqlite://"), publish=lambda job: None)
    with TestClient(create_app(container)) as client:
        page = client.get("/schema")
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        answers = {url: client.get(url) for url in urls}

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert len(urls) == 4  # the icon, the stylesheet and two scripts
    assert all(url.startswith("/schema/assets/") for url in urls), urls
    assert "SwaggerUIBundle(" in page.text
    assert {url: answer.status_code for url, answer in answers.items()} == dict.fromkeys(urls, 200)
    assert len(answers["/schema/assets/swagger-ui-bundle.js"].content) > 100_000

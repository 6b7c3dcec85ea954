"""`GET /ops`: one self-contained page, no token needed, nothing loaded from elsewhere."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from operations.dlq import NoQueues
from payments.container import Container
from plumbing.settings import load_settings
from store.db import make_engine

pytestmark = pytest.mark.unit


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    settings = dataclasses.replace(load_settings({}), database_url="sqlite://")
    container = Container(settings, make_engine(settings.database_url), lambda job: None)
    with TestClient(app=create_app(container, queues=NoQueues())) as test_client:
        yield test_client


def test_ops_page_is_served_with_its_script(client: TestClient[Any]) -> None:
    answer = client.get("/ops")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<script>" in page
    for path in ("/api/ops/queues", "/api/ops/summary", "/api/ops/stuck", "/api/ops/dead-letters"):
        assert path in page
    assert 'api("/api/ops/paybill")' in page  # PayBill payments that paid no order
    assert "localStorage" in page
    assert "setInterval(refresh" in page


def test_ops_page_loads_nothing_from_another_host(client: TestClient[Any]) -> None:
    answer = client.get("/ops")

    assert not re.search(r"""(src|href)=["']?(https?:)?//""", answer.text)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy


def test_ops_page_never_writes_api_data_as_html(client: TestClient[Any]) -> None:
    assert "innerHTML" not in client.get("/ops").text

"""Behind a TLS proxy (docs/SECURITY.md): the callback allow-list sees Safaricom's address,
taken from X-Forwarded-For only when the peer is one of TRUSTED_PROXIES."""

# The fixtures are imported to be used here, and parameters named after them are how
# pytest hands them over: ruff would call each one a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import TestClient

from api.app import create_app
from operations.dlq import NoQueues
from payments import callbacks
from store.tables import callback_inbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, h  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

PROXY = "10.0.0.2"
SAFARICOM = "196.201.214.200"


class FromPeer:
    """The app as reached from `peer` (the TestClient's own peer is not an address)."""

    def __init__(self, app: Litestar, peer: str) -> None:
        self.app, self.peer = app, peer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (self.peer, 40000)}
        await self.app(scope, receive, send)


def _behind_proxy(h: Harness, peer: str) -> TestClient[Any]:
    h.container.settings = dataclasses.replace(
        h.container.settings,
        trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),),
        mpesa_callback_allowed_ips=(ipaddress.ip_network("196.201.214.0/24"),),
    )
    app = create_app(h.container, queues=NoQueues())
    return TestClient(app=FromPeer(app, peer))


def _process_last_callback(h: Harness) -> None:
    with h.container.engine.connect() as conn:
        inbox_id = conn.execute(sa.select(sa.func.max(callback_inbox.c.id))).scalar_one()
    callbacks.process(h.container, inbox_id)


def test_a_callback_relayed_by_a_trusted_proxy_is_judged_by_safaricoms_address(
    h: Harness,
) -> None:
    p = h.pushed()
    with _behind_proxy(h, PROXY) as client:
        answer = client.post(
            f"/api/payments/webhook/{p.callback_token}",
            content=stk_callback(p.checkout_request_id or ""),
            headers={"X-Forwarded-For": SAFARICOM},
        )
    _process_last_callback(h)

    assert answer.status_code == 200
    assert h.get(p.id).status == "completed"


def test_a_forwarded_for_from_an_untrusted_peer_does_not_pass_the_allow_list(
    h: Harness,
) -> None:
    p = h.pushed()
    with _behind_proxy(h, "8.8.8.8") as client:
        answer = client.post(
            f"/api/payments/webhook/{p.callback_token}",
            content=stk_callback(p.checkout_request_id or ""),
            headers={"X-Forwarded-For": SAFARICOM},
        )

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "callback_refused"
    assert h.get(p.id).status == "pushed"

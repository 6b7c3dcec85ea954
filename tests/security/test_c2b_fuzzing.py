"""Property-based fuzzing of the PayBill (C2B) URLs: whatever the bytes, never a 5xx, and
every request is stored before it is answered (its job, if any, runs without a crash)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from api.app import create_app
from payments import c2b
from store.tables import c2b_payments
from tests.factories import c2b_request
from tests.integration.conftest import Harness
from tests.security.test_fuzzing import (
    FUZZ,
    _encode,
    _escaped,
    bodies,
    json_ish,
    tokens,
    too_large,
)

pytestmark = pytest.mark.integration


@st.composite
def c2b_shaped(draw: st.DrawFn) -> bytes:
    """A C2B request whose fields are replaced by anything."""
    body = json.loads(c2b_request(bill_ref="KP0123456789"))
    for name in draw(st.sets(st.sampled_from(sorted(body)))):
        body[name] = draw(json_ish)
    return _encode(body)


c2b_bodies = st.one_of(bodies, c2b_shaped())
kinds = st.sampled_from(["validation", "confirmation"])


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(h.container)) as test_client:
        yield test_client


def _stored(h: Harness) -> int:
    with h.container.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(c2b_payments)).scalar_one())


@FUZZ
@given(body=c2b_bodies, kind=kinds)
def test_any_bytes_on_the_c2b_urls_are_stored_and_never_5xx(
    h: Harness, client: TestClient[Any], body: bytes, kind: str
) -> None:
    before = _stored(h)
    h.published.clear()

    answer = client.post(f"/api/payments/c2b/{kind}", content=body)

    if too_large(answer, body):
        assert _stored(h) == before
        return
    assert answer.status_code in (200, 400, 403), answer.text
    assert _stored(h) == before + 1
    for job in h.published:  # the matching job copes with whatever was stored
        c2b.process(h.container, str(job.args[0]))


@FUZZ
@given(body=c2b_shaped(), token=tokens)
def test_any_secret_segment_is_refused_and_stored_without_a_5xx(
    h: Harness, client: TestClient[Any], body: bytes, token: str
) -> None:
    before = _stored(h)

    answer = client.post(f"/api/payments/c2b/confirmation/{_escaped(token)}", content=body)

    if too_large(answer, body):
        assert _stored(h) == before
        return
    assert answer.status_code in (400, 403, 404), answer.text
    if answer.status_code != 404:
        assert _stored(h) == before + 1

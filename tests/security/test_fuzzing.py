"""Property-based fuzzing of the POST endpoints through the ASGI app on PostgreSQL.

Whatever the bytes (random, invalid UTF-8, NUL, lone surrogates, deep nesting, numbers out of
range, ids wider than their columns, any size up to the 64 KiB limit), the answer is < 500,
and every webhook body is stored.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from api.app import MAX_BODY_BYTES, create_app
from store.tables import callback_inbox
from tests.factories import stk_callback
from tests.integration.conftest import Harness, as_shop

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Text with what databases and decoders choke on: NUL, controls, lone surrogates, astral.
nasty_text = st.text(
    st.characters(codec=None, categories=None, exclude_categories=()), max_size=80
) | st.sampled_from(["\x00", "ws_CO_\x00", "\ud800", "x" * 5000, "𝄞" * 40, ""])
numbers = st.one_of(
    st.integers(), st.integers(min_value=10**18, max_value=10**60), st.floats(),
    st.sampled_from([0, -1, 2**31, 2**63, 10**20, 1.5, 250001, 1e308]),
)  # fmt: skip
scalars = st.none() | st.booleans() | numbers | nasty_text
json_ish = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=20,
)


def _escaped(text: str, safe: str = "") -> str:
    """`text` percent-encoded byte for byte (lone surrogates too), as a raw client could."""
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def _encode(value: Any) -> bytes:
    # ensure_ascii writes lone surrogates as \\udXXX escapes: JSON that decodes to bad text.
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@st.composite
def callback_shaped(draw: st.DrawFn) -> bytes:
    """An STK callback whose fields are replaced by anything."""
    body = json.loads(stk_callback("ws_CO_191220191020363925"))
    cb = body["Body"]["stkCallback"]
    for name in draw(st.sets(st.sampled_from(sorted(cb)))):
        cb[name] = draw(json_ish)
    metadata = cb.get("CallbackMetadata")
    items = metadata.get("Item", []) if isinstance(metadata, dict) else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and draw(st.booleans()):
            item["Value"] = draw(json_ish)
    return _encode(body)


def _filled(chunk: bytes) -> bytes:
    return (chunk * (MAX_BODY_BYTES // len(chunk) + 1))[:MAX_BODY_BYTES]


def _deep(depth: int, wrap: bool) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return b'{"Body":{"stkCallback":' + nested + b"}}" if wrap else nested


bodies = st.one_of(
    st.binary(max_size=512),
    st.binary(min_size=1, max_size=64).map(_filled),  # up to the body limit
    json_ish.map(_encode),
    callback_shaped(),
    callback_shaped().map(lambda b: b.replace(b"ws_CO", b"ws\xff\xfe\x00CO")),  # invalid UTF-8, NUL
    st.builds(_deep, st.integers(100, 30_000), st.booleans()),
)  # fmt: skip
content_types = st.sampled_from(["application/json", "text/plain", "application/octet-stream"])
tokens = nasty_text.filter(lambda t: t not in ("", ".", "..") and "/" not in t)


@pytest.fixture
def client(h: Harness) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(h.container)) as test_client:
        yield test_client


@pytest.fixture
def shop_client(h: Harness) -> Iterator[TestClient[Any]]:
    """The app as the shop's server sees it: with an API key, and limits out of the way (the
    fuzzer sends hundreds of bodies from one address; tests/security/test_limits.py pins
    the limits down)."""
    wide = (10**6, 60)
    h.container.settings = dataclasses.replace(
        h.container.settings, rate_limit_phone=wide, rate_limit_ip=wide, rate_limit_key=wide
    )
    with TestClient(app=create_app(h.container)) as test_client:
        yield as_shop(test_client, h)


def too_large(answer: Any, body: bytes) -> bool:
    """Whether `body` is over the limit: then it was refused (413) before anything read it.

    `json_ish` can draw a body past 64 KiB (a few 5000-character strings), rarely."""
    if len(body) <= MAX_BODY_BYTES:
        return False
    assert answer.status_code == 413, answer.text
    return True


def _stored(h: Harness) -> int:
    with h.container.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(callback_inbox)).scalar_one()
        )


@FUZZ
@given(body=bodies, content_type=content_types, signature=nasty_text)
def test_any_bytes_on_the_bare_webhook_are_stored_and_never_5xx(
    h: Harness, client: TestClient[Any], body: bytes, content_type: str, signature: str
) -> None:
    before = _stored(h)
    headers = {"content-type": content_type, "x-mpesa-signature": _escaped(signature)}

    answer = client.post("/api/payments/webhook", content=body, headers=headers)

    if too_large(answer, body):
        assert _stored(h) == before
        return
    assert answer.status_code in (200, 400, 403), answer.text
    assert _stored(h) == before + 1


@FUZZ
@given(body=bodies, token=tokens)
def test_any_bytes_on_a_token_webhook_are_stored_and_never_5xx(
    h: Harness, client: TestClient[Any], body: bytes, token: str
) -> None:
    before = _stored(h)

    answer = client.post(f"/api/payments/webhook/{_escaped(token)}", content=body)

    if too_large(answer, body):
        assert _stored(h) == before
        return
    assert answer.status_code in (200, 400, 403, 404), answer.text
    if answer.status_code != 404:  # a token that decodes to another path reaches no webhook
        assert _stored(h) == before + 1


@st.composite
def initiate_shaped(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = {
        "amount": 1500, "phoneNumber": "0712345678", "productId": "board-01",
        "productName": "Board", "customerName": "Wanjiru", "customerEmail": "w@example.com",
    }  # fmt: skip
    for name in draw(st.sets(st.sampled_from(sorted(body)))):
        body[name] = draw(json_ish)
    return _encode(body)


@FUZZ
@given(
    body=bodies | initiate_shaped(),
    key=st.none() | nasty_text.map(lambda t: _escaped(t)[:400]),
    content_type=content_types,
)
def test_any_bytes_on_initiate_are_never_5xx(
    shop_client: TestClient[Any], body: bytes, key: str | None, content_type: str
) -> None:
    headers = {"content-type": content_type, **({"idempotency-key": key} if key else {})}

    answer = shop_client.post("/api/payments/initiate", content=body, headers=headers)

    assert answer.status_code < 500, answer.text


@pytest.mark.parametrize("ref", ["%00", "ws_CO_%00x", "x" * 500, "%ff%fe", "%ED%A0%80"])
def test_status_of_an_odd_ref_is_404_not_5xx(shop_client: TestClient[Any], ref: str) -> None:
    assert shop_client.get(f"/api/payments/status/{ref}").status_code == 404

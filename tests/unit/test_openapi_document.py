"""What `/schema/openapi.json` must say about every operation, read from the document itself.

(That each real answer is what the document says: tests/integration/test_answers.py and the
Schemathesis run in tests/security/test_openapi_conformance.py.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api import answers, openapi_docs
from api.order_schemas import (
    MOVABLE,
    ORDER_REQUEST_EXAMPLE,
    ORDER_TEXT,
    STATUS_CHANGE_EXAMPLE,
    OrderRequest,
    StatusChangeRequest,
    parse_move,
    parse_order,
)
from api.schemas import (
    INITIATE_EXAMPLE,
    ORDER_PAYMENT_EXAMPLE,
    TEXT_FIELDS,
    InitiateRequest,
    OrderPaymentRequest,
    parse_initiate,
)
from daraja.c2b import parse_notification
from khalex_pay.boot.api_docs import openapi

API = Path(__file__).resolve().parents[2] / "api"
ENVELOPE = "#/components/schemas/ErrorEnvelope"


@cache
def document() -> dict[str, Any]:
    return openapi()


def operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def json_answers() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, operation in operations():
        for status, response in operation["responses"].items():
            media = (response.get("content") or {}).get("application/json")
            if media is not None:
                yield name, status, media


def test_every_operation_states_who_may_call_it() -> None:
    unstated = [name for name, operation in operations() if "security" not in operation]

    assert unstated == []


def test_operators_endpoints_take_only_an_operator_token_and_callbacks_none() -> None:
    security = {name: operation["security"] for name, operation in operations()}

    ops = [s for name, s in security.items() if " /api/ops/" in name]

    assert len(ops) == 6
    assert all(s == [{openapi_docs.OPERATOR: []}] for s in ops)
    assert security["POST /api/payments/webhook/{token}"] == []
    assert security["POST /api/payments/webhook"] == []
    for kind in ("validation", "confirmation"):
        assert security[f"POST /api/payments/c2b/{kind}"] == []
        assert security[f"POST /api/payments/c2b/{kind}/{{secret}}"] == []


def test_every_json_answer_names_its_schema_and_every_error_is_the_envelope() -> None:
    unnamed = [(n, s) for n, s, media in json_answers() if "$ref" not in media["schema"]]
    # Readiness answers load balancers its own shape, 503 included.
    not_envelope = [
        (n, s)
        for n, s, media in json_answers()
        if s >= "400" and media["schema"]["$ref"] != ENVELOPE and n != "GET /health/ready"
    ]

    assert unnamed == []
    assert not_envelope == []


def test_every_successful_json_answer_has_an_example() -> None:
    bare = [(n, s) for n, s, media in json_answers() if s < "400" and not media.get("examples")]

    assert bare == []


def test_idempotent_creates_take_the_key_and_answer_where_the_new_thing_is() -> None:
    for name in ("POST /api/payments/initiate", "POST /api/orders"):
        operation = dict(operations())[name]
        created = next(r for s, r in operation["responses"].items() if s in {"201", "202"})

        assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]], name
        assert created["headers"]["Location"]["required"] is True, name
        assert "Idempotent-Replayed" in created["headers"], name


def test_every_429_promises_retry_after_and_every_503_documents_it() -> None:
    answers = [(s, r) for _, op in operations() for s, r in op["responses"].items()]

    assert all(r["headers"]["Retry-After"]["required"] for s, r in answers if s == "429")
    assert all("Retry-After" in r["headers"] for s, r in answers if s == "503" and "headers" in r)
    assert any(s == "429" for s, _ in answers)


def test_no_operation_answers_litestars_own_validation_shape() -> None:
    litestar_shaped = [
        (n, s) for n, s, media in json_answers() if "status_code" in str(media["schema"])
    ]

    assert litestar_shaped == []


def test_every_error_code_the_api_raises_is_in_the_reference_with_its_status() -> None:
    raised: set[tuple[str, str]] = set()
    for source in API.glob("*.py"):
        text = source.read_text()
        raised |= set(re.findall(r'ApiError\(\s*([1-5]\d\d),\s*"([a-z_]+)"', text))
        raised |= set(re.findall(r'^\s*([1-5]\d\d): "([a-z_]+)",$', text, re.MULTILINE))
        raised |= {
            ("", c) for c in re.findall(r'(?:envelope\(|return |= )"([a-z]+_[a-z_]+)"', text)
        }
    known = openapi_docs.ERROR_CODES

    assert {code for _, code in raised} - set(known) == set()
    assert [(s, c) for s, c in raised if s and int(s) != known[c][0]] == []
    assert {"invalid_callback", "callback_refused", "invalid_parameter"} <= set(known)


@pytest.mark.parametrize(
    ("struct", "example"),
    [
        (InitiateRequest, INITIATE_EXAMPLE),
        (OrderPaymentRequest, ORDER_PAYMENT_EXAMPLE),
        (OrderRequest, ORDER_REQUEST_EXAMPLE),
        (StatusChangeRequest, STATUS_CHANGE_EXAMPLE),
        (openapi_docs.C2bRequest, openapi_docs.C2B_EXAMPLE),
    ],
)
def test_every_request_example_is_its_struct(
    struct: type[msgspec.Struct], example: dict[str, object]
) -> None:
    msgspec.convert(example, struct, strict=True)


def test_the_request_examples_pass_the_hand_parsers() -> None:
    assert parse_initiate(msgspec.json.encode(INITIATE_EXAMPLE)).amount == 1500
    assert parse_order(msgspec.json.encode(ORDER_REQUEST_EXAMPLE)).total_amount == 4500
    assert parse_move(msgspec.json.encode(STATUS_CHANGE_EXAMPLE)).value == "shipped"
    c2b = parse_notification(msgspec.json.encode(openapi_docs.C2B_EXAMPLE))
    assert (c2b.amount, c2b.bill_ref_number) == (4500, "KP0B6E2F4C8D")


def _max_lengths(struct: type[msgspec.Struct]) -> dict[str, int | None]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    lengths = {}
    for field in info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        if isinstance(kind, msgspec.inspect.Metadata):  # a described field
            kind = kind.type
        lengths[field.encode_name] = getattr(kind, "max_length", None)
    return lengths


def test_the_documented_text_limits_are_the_parsers_limits() -> None:
    initiate, order = _max_lengths(InitiateRequest), _max_lengths(OrderRequest)

    assert {name: limit for name, limit, _ in TEXT_FIELDS} == {
        name: initiate[name] for name, _, _ in TEXT_FIELDS
    }
    assert {name: limit for name, limit, _ in ORDER_TEXT} == {
        name: order[name] for name, _, _ in ORDER_TEXT
    }
    assert MOVABLE == ("processing", "shipped", "delivered", "cancelled")


def _interface_fields(name: str) -> list[str]:
    text = (API / "static" / "khalex-pay.d.ts").read_text(encoding="utf-8")
    body = re.search(rf"export interface {name} \{{\n(.*?)\n\}}", text, re.DOTALL)
    assert body is not None, name
    return re.findall(r"^  (\w+)\??:", body.group(1), re.MULTILINE)


@pytest.mark.parametrize("struct", [answers.Payment, answers.PaymentsConfig])
def test_the_js_clients_types_name_the_documented_fields(struct: type[msgspec.Struct]) -> None:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)

    assert _interface_fields(struct.__name__) == [f.encode_name for f in info.fields]

"""STK push validation: Daraja's checks, in Daraja's order, with Daraja's exact answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulator.conftest import (
    NAIROBI,
    PAYING_PHONE,
    Sim,
    assert_daraja_error,
    nairobi_timestamp,
    password_for,
)

pytestmark = pytest.mark.simulator

PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
MISSING = object()

INVALID_FIELD_CASES: list[tuple[str, Any]] = [
    ("BusinessShortCode", MISSING),
    ("BusinessShortCode", "abc"),
    ("BusinessShortCode", 1234),
    ("BusinessShortCode", "12345678"),
    ("BusinessShortCode", 174379.0),
    ("BusinessShortCode", True),
    ("BusinessShortCode", None),
    ("Password", MISSING),
    ("Password", ""),
    ("Password", 123),
    ("Timestamp", MISSING),
    ("Timestamp", "2024010112000"),
    ("Timestamp", "20241301120000"),
    ("Timestamp", 20240101120000),
    ("Timestamp", "2024-01-01T12:00"),
    ("TransactionType", MISSING),
    ("TransactionType", "CustomerPayBill"),
    ("Amount", MISSING),
    ("Amount", 10.5),
    ("Amount", "10.5"),
    ("Amount", 10.0),
    ("Amount", 0),
    ("Amount", "0"),
    ("Amount", 250_001),
    ("Amount", -5),
    ("Amount", True),
    ("Amount", "1,000"),
    ("Amount", " 10"),
    ("Amount", None),
    ("PartyA", MISSING),
    ("PartyA", "0712345678"),
    ("PartyA", "+254712345678"),
    ("PartyA", "25471234567"),
    ("PartyA", "255712345678"),
    ("PartyA", "254212345678"),
    ("PartyA", 712345678),
    ("PartyB", MISSING),
    ("PartyB", "till"),
    ("PhoneNumber", MISSING),
    ("PhoneNumber", "0712345678"),
    ("CallBackURL", MISSING),
    ("CallBackURL", "https://pay.example.com/cb path"),
    ("CallBackURL", " https://pay.example.com/cb"),
    ("CallBackURL", "https://pay.example.com/cb\n"),
    ("CallBackURL", "ftp://pay.example.com/cb"),
    ("CallBackURL", "pay.example.com/cb"),
    ("CallBackURL", "https://"),
    ("CallBackURL", "https://Pay.Example.com/cb"),
    ("CallBackURL", "https://pay.example.com/mpesa/cb"),
    ("CallBackURL", "https://safaricom.example.com/cb"),
    ("CallBackURL", 42),
    ("CallBackURL", "http://127.0.0.1:99999/cb"),
    ("CallBackURL", "http://[::1/cb"),
    ("AccountReference", MISSING),
    ("AccountReference", "A" * 13),
    ("AccountReference", ""),
    ("AccountReference", "INV#12"),
    ("TransactionDesc", "D" * 14),
    ("TransactionDesc", ""),
    ("TransactionDesc", "Pay@shop"),
    ("TransactionDesc", None),
]


def with_field(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    changed = dict(body)
    if value is MISSING:
        del changed[name]
    else:
        changed[name] = value
    return changed


@pytest.mark.parametrize(("name", "value"), INVALID_FIELD_CASES)
def test_push_with_a_bad_field_is_refused_naming_that_field(
    sim: Sim, name: str, value: Any
) -> None:
    answer = sim.push(with_field(sim.push_body(), name, value))

    assert_daraja_error(answer, 400, "400.002.02", f"Bad Request - Invalid {name}")
    assert sim.ledger() == []


def test_push_with_decimal_amount_is_refused_as_invalid_amount(sim: Sim) -> None:
    answer = sim.push(sim.push_body(amount="10.5") | {"Amount": 10.5})

    assert_daraja_error(answer, 400, "400.002.02", "Bad Request - Invalid Amount")


def test_push_checks_fields_in_daraja_order_so_the_shortcode_is_named_first(sim: Sim) -> None:
    body = sim.push_body() | {"BusinessShortCode": "x", "Amount": 10.5, "PartyA": "07"}

    answer = sim.push(body)

    assert answer.json()["errorMessage"] == "Bad Request - Invalid BusinessShortCode"


def test_push_names_the_amount_before_the_phone_number(sim: Sim) -> None:
    answer = sim.push(sim.push_body() | {"Amount": 0, "PartyA": "07", "PhoneNumber": "07"})

    assert answer.json()["errorMessage"] == "Bad Request - Invalid Amount"


def test_push_checks_every_format_before_the_merchant(sim: Sim) -> None:
    answer = sim.push(sim.push_body() | {"BusinessShortCode": "600000", "Amount": 0})

    assert_daraja_error(answer, 400, "400.002.02", "Bad Request - Invalid Amount")


def test_push_with_a_misspelt_shortcode_key_is_refused_as_invalid_shortcode(sim: Sim) -> None:
    body = sim.push_body()
    body["businessShortCode"] = body.pop("BusinessShortCode")

    answer = sim.push(body)

    assert_daraja_error(answer, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_push_without_json_content_type_is_refused_as_invalid_shortcode(
    sim: Sim, content_type: str | None
) -> None:
    headers = sim.bearer() | ({"Content-Type": content_type} if content_type else {})
    raw = sim.http.build_request("POST", PUSH_PATH, json=sim.push_body()).content

    answer = sim.http.post(PUSH_PATH, content=raw, headers=headers)

    assert "content-type" not in answer.request.headers or content_type
    assert_daraja_error(answer, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"BusinessShortCode": 174379,}', b"\xff\xfe{}", b"NaN", b"{'a': 1}"],
    ids=["empty", "truncated", "trailing-comma", "not-utf8", "nan", "single-quotes"],
)
def test_push_with_malformed_json_is_refused_as_invalid_payload(sim: Sim, raw: bytes) -> None:
    headers = sim.bearer() | {"Content-Type": "application/json"}

    answer = sim.http.post(PUSH_PATH, content=raw, headers=headers)

    assert_daraja_error(answer, 400, "400.002.05", "Invalid Request Payload")


@pytest.mark.parametrize("raw", [b"[]", b'"push"', b"42", b"null"])
def test_push_whose_json_is_not_an_object_is_refused_as_invalid_shortcode(
    sim: Sim, raw: bytes
) -> None:
    headers = sim.bearer() | {"Content-Type": "application/json"}

    answer = sim.http.post(PUSH_PATH, content=raw, headers=headers)

    assert_daraja_error(answer, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")


def test_push_accepts_json_content_type_with_a_charset(sim: Sim) -> None:
    raw = sim.http.build_request("POST", PUSH_PATH, json=sim.push_body()).content
    headers = sim.bearer() | {"Content-Type": "application/json; charset=utf-8"}

    answer = sim.http.post(PUSH_PATH, content=raw, headers=headers)

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "fields",
    [
        {"BusinessShortCode": 174379, "Amount": "1500", "PartyA": PAYING_PHONE},
        {"BusinessShortCode": "174379", "Amount": 1500, "PartyA": int(PAYING_PHONE)},
        {"Amount": 1},
        {"Amount": 250_000},
        {"PartyB": 174379, "PhoneNumber": int(PAYING_PHONE)},
    ],
    ids=["strings", "numbers", "min-amount", "max-amount", "numeric-party-b"],
)
def test_push_accepts_numbers_as_json_numbers_or_digit_strings(
    sim: Sim, fields: dict[str, Any]
) -> None:
    answer = sim.push(sim.push_body() | fields)

    assert answer.status_code == 200, answer.text


def test_push_accepts_the_new_2541_prefix(sim: Sim) -> None:
    accepted = sim.push_ok("254110000001")

    assert sim.entry(accepted["CheckoutRequestID"])["phoneNumber"] == "254110000001"


def test_push_to_an_unresolvable_callback_host_is_accepted_as_daraja_does(sim: Sim) -> None:
    checkout_id = sim.push_ok(CallBackURL="https://example.invalid/cb/x")["CheckoutRequestID"]

    assert sim.wait_statuses(checkout_id, 1) == [None]


def test_push_without_transaction_desc_is_accepted(sim: Sim) -> None:
    body = sim.push_body()
    del body["TransactionDesc"]

    assert sim.push(body).status_code == 200


def test_push_to_another_shortcode_is_refused_as_merchant_does_not_exist(sim: Sim) -> None:
    timestamp = nairobi_timestamp()
    body = sim.push_body() | {
        "BusinessShortCode": "600000",
        "Password": password_for(timestamp, shortcode="600000"),
        "Timestamp": timestamp,
    }

    answer = sim.push(body)

    assert_daraja_error(answer, 500, "500.001.1001", "Merchant does not exist")


@pytest.mark.parametrize(
    "password",
    [
        password_for("20240101120000"),
        password_for(nairobi_timestamp(), passkey="0" * 64),
        "bm90IGEgcGFzc3dvcmQ=",
        "\u00e9\u20ac",
    ],
    ids=["other-timestamp", "other-passkey", "garbage", "non-ascii"],
)
def test_push_with_a_password_not_built_from_shortcode_passkey_timestamp_is_wrong_credentials(
    sim: Sim, password: str
) -> None:
    answer = sim.push(sim.push_body() | {"Password": password})

    assert_daraja_error(answer, 500, "500.001.1001", "Wrong credentials")
    assert sim.ledger() == []


def test_accepted_push_answers_daraja_success_shape(sim: Sim) -> None:
    before = datetime.now(NAIROBI).replace(microsecond=0)
    answer = sim.push()

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    ]
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == "Success. Request accepted for processing"
    assert body["CustomerMessage"] == "Success. Request accepted for processing"
    assert re.fullmatch(
        r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[0-9]{6}", body["MerchantRequestID"]
    )
    found = re.fullmatch(r"ws_CO_([0-9]{14})[0-9]{3}712345678", body["CheckoutRequestID"])
    assert found is not None
    sent_at = datetime.strptime(found.group(1), "%d%m%Y%H%M%S").replace(tzinfo=NAIROBI)
    assert 0 <= (sent_at - before).total_seconds() < 5


def test_identical_pushes_are_two_payments_with_different_ids(sim: Sim) -> None:
    body = sim.push_body()
    first = sim.push(body).json()
    sim.wait_resolved(first["CheckoutRequestID"])

    second = sim.push(body).json()

    assert first["CheckoutRequestID"] != second["CheckoutRequestID"]
    assert first["MerchantRequestID"] != second["MerchantRequestID"]
    assert len(sim.ledger()) == 2


def test_push_with_a_till_party_b_on_a_paybill_is_accepted_then_fails_2028(sim: Sim) -> None:
    accepted = sim.push_ok(TransactionType="CustomerBuyGoodsOnline", PartyB="5123456")

    entry = sim.wait_resolved(accepted["CheckoutRequestID"])

    assert entry["resultCode"] == 2028
    callback = sim.receiver.wait_for(accepted["CheckoutRequestID"])[0].stk
    assert callback["ResultCode"] == 2028
    assert "CallbackMetadata" not in callback


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)
#: The `sim` fixture is reused across examples on purpose: the simulator is one process.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]
FIELDS = [
    "BusinessShortCode",
    "Password",
    "Timestamp",
    "TransactionType",
    "Amount",
    "PartyA",
    "PartyB",
    "PhoneNumber",
    "CallBackURL",
    "AccountReference",
    "TransactionDesc",
]


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(name=st.sampled_from(FIELDS), value=json_values)
def test_push_with_any_json_value_in_a_field_gets_a_daraja_answer(
    sim: Sim, name: str, value: Any
) -> None:
    answer = sim.push(sim.push_body("254700000002") | {name: value})

    body = answer.json()
    if answer.status_code == 200:
        assert body["ResponseCode"] == "0"
    else:
        assert answer.status_code in (400, 500)
        assert body["errorCode"] in ("400.002.02", "500.001.1001"), body


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(raw=st.binary(max_size=64))
def test_push_with_any_bytes_never_crashes_the_simulator(sim: Sim, raw: bytes) -> None:
    headers = sim.bearer() | {"Content-Type": "application/json"}

    answer = sim.http.post(PUSH_PATH, content=raw, headers=headers)

    assert answer.status_code in (400, 500)
    assert answer.json()["errorCode"] in ("400.002.02", "400.002.05", "500.001.1001")

"""Daraja's wire format: Nairobi timestamps, the password, masking, and answer shapes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daraja.wire import (
    REDACTED,
    ErrorBody,
    FaultBody,
    NotJson,
    WireError,
    mask_checkout_id,
    mask_msisdn,
    nairobi_timestamp,
    parse_push_accepted,
    parse_query_result,
    parse_token,
    push_body,
    read_answer,
    redacted,
    stk_password,
)

pytestmark = pytest.mark.unit

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def test_timestamp_is_nairobi_time_from_a_utc_clock() -> None:
    assert nairobi_timestamp(datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)) == "20210628092408"


def test_timestamp_crosses_midnight_into_the_nairobi_date() -> None:
    assert nairobi_timestamp(datetime(2024, 12, 31, 22, 30, 0, tzinfo=UTC)) == "20250101013000"


def test_timestamp_ignores_the_zone_the_clock_was_read_in() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert nairobi_timestamp(datetime(2021, 6, 28, 1, 24, 8, tzinfo=new_york)) == "20210628092408"


def test_timestamp_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        nairobi_timestamp(datetime(2021, 6, 28, 9, 24, 8))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    )
)
def test_timestamp_is_always_utc_plus_three_and_fourteen_digits(now: datetime) -> None:
    stamp = nairobi_timestamp(now)
    assert len(stamp) == 14
    assert stamp.isdigit()
    assert stamp == (now + timedelta(hours=3)).strftime("%Y%m%d%H%M%S")


def test_password_matches_darajas_documented_sample() -> None:
    password = stk_password("174379", SANDBOX_PASSKEY, "20210628092408")
    assert base64.b64decode(password).decode() == f"174379{SANDBOX_PASSKEY}20210628092408"
    assert password.startswith("MTc0Mzc5YmZi")


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("254712345678", "2547****5678"), ("254110000001", "2541****0001"), ("1234", "****")],
)
def test_msisdn_is_masked_to_prefix_and_last_four(phone: str, masked: str) -> None:
    assert mask_msisdn(phone) == masked


@given(st.from_regex(r"254[17]\d{8}", fullmatch=True))
def test_masked_msisdn_never_shows_the_middle_digits(phone: str) -> None:
    masked = mask_msisdn(phone)
    assert masked[4:8] == "****"
    assert masked != phone


@pytest.mark.parametrize(
    ("checkout_id", "masked"),
    [
        ("ws_CO_12082024103757041726945514", "ws_CO_12082024103757041*****5514"),
        ("ws_CO_1007202409152617172396192", "ws_CO_1007202409152617*****6192"),
        ("ws_CO_08052018140656765", "ws_CO_08052018*****6765"),
        ("opaque-id", "opaque-id"),
    ],
)
def test_checkout_id_is_masked_where_it_embeds_the_phone(checkout_id: str, masked: str) -> None:
    assert mask_checkout_id(checkout_id) == masked


def test_push_body_uses_darajas_field_names_and_one_timestamp() -> None:
    body = push_body(
        shortcode="174379",
        passkey=SANDBOX_PASSKEY,
        timestamp="20210628092408",
        transaction_type="CustomerPayBillOnline",
        party_b="174379",
        phone="254708374149",
        amount=1,
        callback_url="https://pay.example.com/cb/stk/7f3c2a",
        account_reference="INV12345",
        description="Order 12345",
    )
    assert set(body) == {
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
    }
    assert body["Password"] == stk_password("174379", SANDBOX_PASSKEY, str(body["Timestamp"]))
    assert redacted(body)["Password"] == REDACTED
    assert body["Password"] != REDACTED


def test_error_body_is_recognised() -> None:
    answer = read_answer(
        "application/json",
        b'{"requestId":"1c5b-4ba8","errorCode":"400.002.02",'
        b'"errorMessage":"Bad Request - Invalid BusinessShortCode"}',
    )
    assert answer == ErrorBody("400.002.02", "Bad Request - Invalid BusinessShortCode", "1c5b-4ba8")


def test_apigee_fault_is_recognised() -> None:
    answer = read_answer(
        "application/json",
        b'{"fault":{"faultstring":"Unable to identify proxy for host: x and url: /y",'
        b'"detail":{"errorcode":"messaging.adaptors.http.flow.ApplicationNotFound"}}}',
    )
    assert answer == FaultBody(
        "messaging.adaptors.http.flow.ApplicationNotFound",
        "Unable to identify proxy for host: x and url: /y",
    )


def test_html_is_not_parsed_even_if_it_would_decode() -> None:
    answer = read_answer("text/html; charset=utf-8", b"<html><body>Bad gateway</body></html>")
    assert isinstance(answer, NotJson)
    assert "Bad gateway" in answer.description


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"'])
def test_bodies_that_are_not_json_objects_are_not_json(content: bytes) -> None:
    assert isinstance(read_answer("application/json", content), NotJson)


@pytest.mark.parametrize("expires_in", ["3599", 3599])
def test_token_expiry_is_read_as_string_or_number(expires_in: object) -> None:
    token = parse_token({"access_token": "abc", "expires_in": expires_in})
    assert token.expires_in_s == 3599
    assert "abc" not in repr(token)


def test_push_acknowledgement_needs_response_code_zero() -> None:
    fields = {"MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_1", "CustomerMessage": "ok"}
    assert parse_push_accepted({**fields, "ResponseCode": "0"}).checkout_request_id == "ws_CO_1"
    with pytest.raises(WireError, match="ResponseCode 1"):
        parse_push_accepted({**fields, "ResponseCode": "1"})


@pytest.mark.parametrize("code", ["1032", 1032])
def test_query_result_code_is_read_as_string_or_number(code: object) -> None:
    result = parse_query_result({"ResultCode": code, "ResultDesc": "Request cancelled by user"})
    assert result.result_code == 1032


def test_query_result_code_that_is_not_a_number_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="ResultCode"):
        parse_query_result({"ResultCode": "SFC_IC0003"})

"""STK query: the same checks as the push, then "does not exist", "still processing" or the
final outcome, with the sporadic errors Daraja gives even after the end."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulator.conftest import PAYING_PHONE, Sim, assert_daraja_error, password_for

pytestmark = pytest.mark.simulator

QUERY_PATH = "/mpesa/stkpushquery/v1/query"


def open_prompt(sim: Sim, phone: str = PAYING_PHONE) -> str:
    """A prompt that stays open until resolved by hand."""
    sim.set_chaos(manualPhones=[phone])
    checkout_id: str = sim.push_ok(phone)["CheckoutRequestID"]
    return checkout_id


def test_query_for_an_unknown_id_is_500_does_not_exist_naming_the_id(sim: Sim) -> None:
    answer = sim.query("ws_CO_01012024000000000712345678")

    assert_daraja_error(answer, 500, "500.001.1001", "The transaction does not Exist")
    assert answer.json()["requestId"] == "ws_CO_01012024000000000712345678"


def test_query_for_an_open_prompt_rotates_through_daraja_not_yet_answers(sim: Sim) -> None:
    checkout_id = open_prompt(sim)

    answers = [sim.query(checkout_id) for _ in range(3)]

    assert_daraja_error(answers[0], 500, "500.001.1001", "The transaction is being processed")
    assert answers[0].json()["requestId"] == checkout_id
    assert answers[1].status_code == 200
    assert answers[1].json()["ResultCode"] == "4999"
    assert answers[1].json()["ResultDesc"] == "The transaction is still under processing"
    assert_daraja_error(answers[2], 200, "500.001.1001", "")


def test_query_after_payment_answers_result_code_0_as_a_string_without_receipt(sim: Sim) -> None:
    accepted = sim.push_ok()
    checkout_id = accepted["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)

    answer = sim.query(checkout_id)

    assert answer.status_code == 200
    assert answer.json() == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": accepted["MerchantRequestID"],
        "CheckoutRequestID": checkout_id,
        "ResultCode": "0",
        "ResultDesc": "The service request is processed successfully.",
    }


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254700000002", "1032", "Request cancelled by user"),
        ("254700000004", "1037", "DS timeout user cannot be reached"),
        ("254700000001", "1", "The balance is insufficient for the transaction."),
        ("254700000003", "2001", "The initiator information is invalid."),
    ],
)
def test_query_after_failure_answers_the_code_as_a_string_with_query_wording(
    sim: Sim, phone: str, code: str, desc: str
) -> None:
    checkout_id = sim.push_ok(phone)["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)

    body = sim.query(checkout_id).json()

    assert (body["ResultCode"], body["ResultDesc"]) == (code, desc)


def test_query_error_rate_gives_spurious_500_even_after_the_end(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)
    sim.set_chaos(queryErrorRate=1.0)

    answer = sim.query(checkout_id)

    assert_daraja_error(answer, 500, "500.001.1001", "The transaction is being processed")
    assert sim.set_chaos(queryErrorRate=0.0)["queryErrorRate"] == 0.0
    assert sim.query(checkout_id).json()["ResultCode"] == "0"


def test_query_error_rate_one_half_mixes_errors_with_answers(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)
    sim.set_chaos(queryErrorRate=0.5, seed=7)

    statuses = {sim.query(checkout_id).status_code for _ in range(20)}

    assert statuses == {200, 500}


@pytest.mark.parametrize(
    ("fields", "status", "code", "message"),
    [
        ({"Timestamp": "2024"}, 400, "400.002.02", "Bad Request - Invalid Timestamp"),
        ({"CheckoutRequestID": None}, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID"),
        ({"CheckoutRequestID": ""}, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID"),
        ({"BusinessShortCode": "x"}, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode"),
        ({"BusinessShortCode": "600000"}, 500, "500.001.1001", "Merchant does not exist"),
        ({"Password": password_for("20240101000000")}, 500, "500.001.1001", "Wrong credentials"),
    ],
    ids=["timestamp", "id-null", "id-empty", "shortcode", "merchant", "password"],
)
def test_query_checks_its_fields_and_credentials_like_the_push(
    sim: Sim, fields: dict[str, Any], status: int, code: str, message: str
) -> None:
    answer = sim.query("ws_CO_x", **fields)

    assert_daraja_error(answer, status, code, message)


def test_query_without_a_token_is_invalid_access_token(sim: Sim) -> None:
    answer = sim.http.post(QUERY_PATH, json=sim.query_body("ws_CO_x"))

    assert_daraja_error(answer, 404, "404.001.03", "Invalid Access Token")


def test_query_with_malformed_json_is_invalid_payload(sim: Sim) -> None:
    headers = sim.bearer() | {"Content-Type": "application/json"}

    answer = sim.http.post(QUERY_PATH, content=b'{"CheckoutRequestID": ', headers=headers)

    assert_daraja_error(answer, 400, "400.002.05", "Invalid Request Payload")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    )
)
def test_query_with_any_field_values_gets_a_daraja_answer(sim: Sim, fields: dict[str, Any]) -> None:
    answer = sim.query("ws_CO_x", **fields)

    assert answer.status_code in (400, 500)
    assert answer.json()["errorCode"] in ("400.002.02", "500.001.1001")

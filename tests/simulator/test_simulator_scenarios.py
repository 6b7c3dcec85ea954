"""The scenario table: what each paying number does (CONTRACT.md §5), and the callback text."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.simulator.conftest import (
    CALLBACK_DELAY_S,
    LATE_CALLBACK_DELAY_S,
    PAYING_PHONE,
    SHORTCODE,
    Sim,
    assert_daraja_error,
)

pytestmark = pytest.mark.simulator

LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"


def test_any_other_number_pays_after_the_callback_delay_with_a_receipt(sim: Sim) -> None:
    started = time.monotonic()
    accepted = sim.push_ok(PAYING_PHONE, amount=1500)
    checkout_id = accepted["CheckoutRequestID"]

    callback = sim.receiver.wait_for(checkout_id)[0]

    assert callback.at - started >= CALLBACK_DELAY_S
    entry = sim.entry(checkout_id)
    assert entry["resultCode"] == 0
    assert re.fullmatch(r"[A-Z][A-Z0-9]{9}", entry["receipt"])
    assert callback.stk["MerchantRequestID"] == accepted["MerchantRequestID"]


def test_success_callback_is_daraja_text_with_decimal_amount_and_numeric_fields(sim: Sim) -> None:
    checkout_id = sim.push_ok(PAYING_PHONE, amount=1500)["CheckoutRequestID"]

    callback = sim.receiver.wait_for(checkout_id)[0]

    entry = sim.entry(checkout_id)
    assert b'{"Name":"Amount","Value":1500.00}' in callback.body
    assert b'"ResultCode":0,' in callback.body
    stk = callback.stk
    assert list(stk) == [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResultCode",
        "ResultDesc",
        "CallbackMetadata",
    ]
    assert stk["ResultDesc"] == "The service request is processed successfully."
    items = {item["Name"]: item for item in stk["CallbackMetadata"]["Item"]}
    assert items["Amount"]["Value"] == 1500.0
    assert isinstance(items["Amount"]["Value"], float)
    assert items["MpesaReceiptNumber"]["Value"] == entry["receipt"]
    assert items["Balance"] == {"Name": "Balance"}
    assert items["PhoneNumber"]["Value"] == int(PAYING_PHONE)
    date = items["TransactionDate"]["Value"]
    assert isinstance(date, int)
    assert re.fullmatch(r"20[0-9]{12}", str(date))


def test_callback_headers_are_json_utf8_and_name_the_shortcode(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    callback = sim.receiver.wait_for(checkout_id)[0]

    assert callback.headers["content-type"] == "application/json;charset=UTF-8"
    assert callback.headers["businessshortcode"] == SHORTCODE
    assert callback.path == "/cb/stk"


def test_callback_goes_to_the_exact_callback_url_path_and_query(sim: Sim) -> None:
    url = sim.receiver.url("/cb/pay/7f3c2a?t=abc")
    checkout_id = sim.push_ok(CallBackURL=url)["CheckoutRequestID"]

    callback = sim.receiver.wait_for(checkout_id)[0]

    assert callback.path == "/cb/pay/7f3c2a?t=abc"
    assert sim.entry(checkout_id)["callbackUrl"] == url


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254708374149", 1037, "No response from user."),
        ("254700000001", 1, "The balance is insufficient for the transaction."),
        ("254700000002", 1032, "Request cancelled by user"),
        ("254700000003", 2001, "The initiator information is invalid."),
        ("254700000004", 1037, "No response from user."),
    ],
    ids=["sandbox-test-number", "insufficient", "cancelled", "wrong-pin", "unreachable"],
)
def test_failing_numbers_call_back_their_result_code_without_metadata(
    sim: Sim, phone: str, code: int, desc: str
) -> None:
    checkout_id = sim.push_ok(phone)["CheckoutRequestID"]

    stk = sim.receiver.wait_for(checkout_id)[0].stk

    assert stk == {
        "MerchantRequestID": stk["MerchantRequestID"],
        "CheckoutRequestID": checkout_id,
        "ResultCode": code,
        "ResultDesc": desc,
    }
    entry = sim.entry(checkout_id)
    assert (entry["resultCode"], entry["receipt"]) == (code, None)


def test_number_005_pays_but_its_callback_is_never_sent(sim: Sim) -> None:
    checkout_id = sim.push_ok("254700000005")["CheckoutRequestID"]

    entry = sim.wait_resolved(checkout_id)
    sim.wait_idle()

    assert entry["resultCode"] == 0
    assert entry["receipt"] is not None
    assert sim.receiver.calls(checkout_id) == []
    assert sim.entry(checkout_id)["callbacksSent"] == 0
    assert sim.query(checkout_id).json()["ResultCode"] == "0"


def test_number_006_pays_and_its_callback_is_sent_twice_identically(sim: Sim) -> None:
    checkout_id = sim.push_ok("254700000006")["CheckoutRequestID"]

    first, second = sim.receiver.wait_for(checkout_id, count=2)

    assert first.body == second.body
    assert sim.wait_statuses(checkout_id, 2) == [200, 200]
    assert sim.entry(checkout_id)["callbacksSent"] == 2


def test_number_007_is_refused_at_once_as_unable_to_lock_subscriber(sim: Sim) -> None:
    answer = sim.push(sim.push_body("254700000007"))

    assert_daraja_error(answer, 500, "500.001.1001", LOCKED)
    assert sim.ledger() == []


def test_number_008_hangs_past_the_client_timeout_yet_the_prompt_is_paid(sim: Sim) -> None:
    sim.set_chaos(hangS=1.5)

    with pytest.raises(httpx.ReadTimeout):
        sim.push(sim.push_body("254700000008", amount=700), timeout=0.5)

    [entry] = sim.ledger()
    assert (entry["phoneNumber"], entry["amount"]) == ("254700000008", 700)
    callback = sim.receiver.wait_for(entry["checkoutRequestId"])[0]
    assert callback.stk["ResultCode"] == 0
    assert sim.entry(entry["checkoutRequestId"])["receipt"] is not None


def test_number_008_answers_accepted_to_a_patient_client(sim: Sim) -> None:
    sim.set_chaos(hangS=0.3)
    started = time.monotonic()

    answer = sim.push(sim.push_body("254700000008"))

    assert time.monotonic() - started >= 0.3
    assert answer.json()["ResponseCode"] == "0"


def test_number_009_pays_on_time_but_calls_back_only_after_the_late_delay(sim: Sim) -> None:
    started = time.monotonic()
    checkout_id = sim.push_ok("254700000009")["CheckoutRequestID"]

    entry = sim.wait_resolved(checkout_id)

    assert entry["resultCode"] == 0
    assert sim.query(checkout_id).json()["ResultCode"] == "0"
    assert sim.receiver.calls(checkout_id) == []
    callback = sim.receiver.wait_for(checkout_id, timeout=LATE_CALLBACK_DELAY_S + 3)[0]
    assert callback.at - started >= LATE_CALLBACK_DELAY_S - 0.05


def test_second_push_to_a_customer_with_an_open_prompt_is_refused_as_locked(sim: Sim) -> None:
    first = sim.push_ok()

    second = sim.push(sim.push_body(amount=20))

    assert_daraja_error(second, 500, "500.001.1001", LOCKED)
    assert [p["checkoutRequestId"] for p in sim.ledger()] == [first["CheckoutRequestID"]]


def test_lock_is_on_the_handset_so_another_payer_for_it_is_refused_too(sim: Sim) -> None:
    sim.push_ok(PAYING_PHONE)

    answer = sim.push(sim.push_body("254722000000", PhoneNumber=PAYING_PHONE))

    assert answer.json()["errorMessage"] == LOCKED


def test_customer_can_be_pushed_again_once_the_prompt_resolves(sim: Sim) -> None:
    first = sim.push_ok()["CheckoutRequestID"]
    sim.wait_resolved(first)

    second = sim.push(sim.push_body(amount=20))

    assert second.status_code == 200


def test_other_customers_are_not_locked_by_an_open_prompt(sim: Sim) -> None:
    sim.push_ok(PAYING_PHONE)

    assert sim.push(sim.push_body("254711111111")).status_code == 200


def test_receipts_are_unique_10_character_uppercase_codes(sim: Sim) -> None:
    phones = [f"2547220000{n:02d}" for n in range(12)]
    checkout_ids = [sim.push_ok(phone)["CheckoutRequestID"] for phone in phones]

    receipts = [sim.wait_resolved(c)["receipt"] for c in checkout_ids]

    assert len(set(receipts)) == len(receipts)
    assert all(re.fullmatch(r"[A-Z0-9]{10}", r) for r in receipts)


def test_callback_is_never_retried_when_the_receiver_answers_500(sim: Sim) -> None:
    checkout_id = sim.push_ok(CallBackURL=sim.receiver.url("/fail/here"))["CheckoutRequestID"]

    sim.receiver.wait_for(checkout_id)
    statuses = sim.wait_statuses(checkout_id, 1)
    sim.wait_idle()

    assert statuses == [500]
    assert len(sim.receiver.calls(checkout_id)) == 1
    assert sim.entry(checkout_id)["callbacksSent"] == 1


def test_callback_to_an_unreachable_receiver_is_recorded_and_not_retried(sim: Sim) -> None:
    url = "http://127.0.0.1:9/cb"
    checkout_id = sim.push_ok(CallBackURL=url)["CheckoutRequestID"]

    statuses = sim.wait_statuses(checkout_id, 1)
    sim.wait_idle()

    assert statuses == [None]
    assert sim.entry(checkout_id)["callbacksSent"] == 1

"""The simulator's PayBill (C2B): Daraja's register-URL rules, and a customer paying by hand
who makes M-Pesa ask the validation URL, then POST the confirmation."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest

from daraja.client import DarajaClient, DarajaConfig
from daraja.errors import Reason, Refused
from daraja.tokens import MemoryTokenCache
from tests.simulator.conftest import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    PASSKEY,
    SHORTCODE,
    CallbackReceiver,
    ReceivedCallback,
    Sim,
    assert_daraja_error,
)

pytestmark = pytest.mark.simulator

PAYER = "254712345678"


def _register(
    sim: Sim, *, version: str = "v1", response_type: str = "Completed", **urls: str
) -> httpx.Response:
    body = {
        "ShortCode": SHORTCODE,
        "ResponseType": response_type,
        "ConfirmationURL": urls.get("confirmation", sim.receiver.url("/c2b/confirmation")),
        "ValidationURL": urls.get("validation", sim.receiver.url("/c2b/validation")),
    }
    return sim.http.post(f"/mpesa/c2b/{version}/registerurl", json=body, headers=sim.bearer())


def _pay(sim: Sim, reference: str = "KP0123456789", amount: int = 1500, **more: Any) -> Any:
    body = {"businessNumber": SHORTCODE, "accountReference": reference, "amount": amount,
            "phoneNumber": PAYER, **more}  # fmt: skip
    return sim.http.post("/simulator/paybill", json=body)


def _wait(receiver: CallbackReceiver, prefix: str, count: int = 1) -> list[ReceivedCallback]:
    deadline = time.monotonic() + 5
    while len(found := [c for c in receiver.calls() if c.path.startswith(prefix)]) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{len(found)} of {count} POSTs to {prefix}")
        time.sleep(0.05)
    return found


def test_registering_answers_as_daraja_does(sim: Sim) -> None:
    answer = _register(sim)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ResponseCode"], body["ResponseDescription"]) == ("0", "success")
    assert body["OriginatorCoversationID"]
    registration = sim.http.get("/simulator/paybill").json()["registration"]
    assert registration["responseType"] == "Completed"


def test_a_shortcode_registers_once(sim: Sim) -> None:
    assert _register(sim).status_code == 200

    assert_daraja_error(_register(sim), 500, "500.003.1001", "Urls are already registered")


@pytest.mark.parametrize("word", ["mpesa", "M-Pesa", "safaricom"])
def test_a_url_with_a_word_daraja_bans_is_refused(sim: Sim, word: str) -> None:
    answer = _register(sim, confirmation=f"https://shop.example/{word}/confirmation")

    assert_daraja_error(
        answer, 400, "400.003.02",
        f"Invalid ConfirmationURL - URL has the word {word.upper()}",
    )  # fmt: skip


def test_register_checks_the_token_and_the_response_type(sim: Sim) -> None:
    no_token = sim.http.post("/mpesa/c2b/v1/registerurl", json={}, headers=sim.bearer("nope"))
    lower = _register(sim, response_type="completed")

    assert_daraja_error(no_token, 404, "404.001.03", "Invalid Access Token")
    assert_daraja_error(lower, 400, "400.002.02", "Bad Request - Invalid ResponseType")


def test_a_paybill_payment_is_validated_then_confirmed_with_the_payer_masked(sim: Sim) -> None:
    assert _register(sim).status_code == 200

    answer = _pay(sim, "KP0123456789", 3200)

    assert answer.status_code == 200, answer.text
    tx = answer.json()["transaction"]
    assert (tx["status"], tx["validationResult"], tx["amount"]) == ("paid", "0", 3200)
    validation = _wait(sim.receiver, "/c2b/validation")[0].json()
    confirmation = _wait(sim.receiver, "/c2b/confirmation")[0].json()
    assert confirmation["TransID"] == tx["transId"] == validation["TransID"]
    assert (confirmation["BillRefNumber"], confirmation["TransAmount"]) == (
        "KP0123456789", "3200.00",
    )  # fmt: skip
    assert confirmation["BusinessShortCode"] == SHORTCODE
    assert confirmation["MSISDN"] == "2547****5678"
    assert len(confirmation["TransTime"]) == 14
    assert set(confirmation) >= {
        "InvoiceNumber", "OrgAccountBalance", "ThirdPartyTransID", "FirstName", "MiddleName",
        "LastName", "TransactionType",
    }  # fmt: skip


def test_v2_confirmations_carry_a_digest_of_the_number(sim: Sim) -> None:
    assert _register(sim, version="v2").status_code == 200

    _pay(sim)

    confirmation = _wait(sim.receiver, "/c2b/confirmation")[0].json()
    assert confirmation["MSISDN"] == hashlib.sha256(PAYER.encode()).hexdigest()


def test_a_declined_validation_stops_the_payment(sim: Sim) -> None:
    assert _register(sim, validation=sim.receiver.url("/decline/validation")).status_code == 200

    tx = _pay(sim).json()["transaction"]

    assert (tx["status"], tx["validationResult"], tx["transId"]) == ("declined", "C2B00012", None)
    sim.wait_idle()
    assert not [c for c in sim.receiver.calls() if c.path.startswith("/c2b/confirmation")]


@pytest.mark.parametrize(("response_type", "status"), [("Completed", "paid"),
                                                       ("Cancelled", "declined")])  # fmt: skip
def test_a_silent_validation_url_leaves_it_to_the_response_type(
    sim: Sim, response_type: str, status: str
) -> None:
    dead = "http://127.0.0.1:9/validation"  # nothing listens on the discard port
    assert _register(sim, response_type=response_type, validation=dead).status_code == 200

    tx = _pay(sim).json()["transaction"]

    assert (tx["status"], tx["validationResult"]) == (status, None)


def test_the_callback_chaos_knobs_apply_to_confirmations(sim: Sim) -> None:
    assert _register(sim).status_code == 200
    sim.set_chaos(callbackDuplicateRate=1.0)

    _pay(sim)

    assert len(_wait(sim.receiver, "/c2b/confirmation", count=2)) == 2
    sim.set_chaos(callbackDuplicateRate=0.0, callbackDropRate=1.0)
    tx = _pay(sim).json()["transaction"]
    sim.wait_idle()
    assert tx["status"] == "paid"
    assert len([c for c in sim.receiver.calls() if c.path.startswith("/c2b/confirmation")]) == 2


def test_paying_needs_registered_urls_our_business_number_and_a_sane_amount(sim: Sim) -> None:
    unregistered = _pay(sim)
    assert _register(sim).status_code == 200
    elsewhere = sim.http.post(
        "/simulator/paybill",
        json={"businessNumber": "999999", "accountReference": "X", "amount": 10},
    )
    too_much = _pay(sim, amount=250_001)

    assert (unregistered.status_code, unregistered.json()["error"]["code"]) == (
        409, "urls_not_registered",
    )  # fmt: skip
    assert (elsewhere.status_code, elsewhere.json()["error"]["field"]) == (404, "businessNumber")
    assert (too_much.status_code, too_much.json()["error"]["field"]) == (400, "amount")


def test_reset_forgets_the_registration(sim: Sim) -> None:
    assert _register(sim).status_code == 200

    assert sim.http.post("/simulator/reset").status_code == 200

    assert _register(sim).status_code == 200


# The real client ------------------------------------------------------------------------------


@pytest.fixture
def client(simulator_url: str) -> Any:
    from daraja.client import DarajaClient

    config = DarajaConfig(
        base_url=simulator_url, consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET,
        shortcode=SHORTCODE, passkey=PASSKEY, transaction_type="CustomerPayBillOnline",
        party_b=SHORTCODE, timeout_s=5.0,
    )  # fmt: skip
    with DarajaClient(config, MemoryTokenCache()) as daraja:
        yield daraja


def test_the_client_registers_and_hears_already_registered_the_second_time(
    sim: Sim, client: DarajaClient
) -> None:
    def register() -> Any:
        return client.register_c2b_urls(
            response_type="Completed",
            confirmation_url=sim.receiver.url("/c2b/confirmation"),
            validation_url=sim.receiver.url("/c2b/validation"),
        )

    assert register().response_description == "success"
    with pytest.raises(Refused, match="Urls are already registered") as again:
        register()
    assert again.value.code == "500.003.1001"


def test_the_client_refuses_a_url_with_mpesa_before_sending(sim: Sim, client: DarajaClient) -> None:

    with pytest.raises(Refused, match="URL has the word MPESA") as refused:
        client.register_c2b_urls(
            response_type="Completed",
            confirmation_url="https://pay.example/mpesa/confirmation",
            validation_url="https://pay.example/api/payments/c2b/validation",
        )

    assert refused.value.reason is Reason.INVALID_REQUEST
    assert sim.http.get("/simulator/paybill").json()["registration"] is None

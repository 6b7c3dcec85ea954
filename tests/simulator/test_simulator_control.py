"""The control API: ledger, open prompts, resolution by hand (the virtual phone), reset."""

from __future__ import annotations

import time

import pytest

from tests.simulator.conftest import PAYING_PHONE, Sim

pytestmark = pytest.mark.simulator


def test_ledger_records_what_the_customer_was_asked_and_paid(sim: Sim) -> None:
    url = sim.receiver.url("/cb/ledger")
    accepted = sim.push_ok(PAYING_PHONE, amount="250", AccountReference="INV42", CallBackURL=url)
    checkout_id = accepted["CheckoutRequestID"]

    [open_entry] = sim.ledger()
    sim.receiver.wait_for(checkout_id)
    sim.wait_statuses(checkout_id, 1)
    [paid] = sim.ledger()

    assert open_entry == {
        "checkoutRequestId": checkout_id,
        "merchantRequestId": accepted["MerchantRequestID"],
        "phoneNumber": PAYING_PHONE,
        "amount": 250,
        "accountReference": "INV42",
        "callbackUrl": url,
        "resultCode": None,
        "receipt": None,
        "callbacksSent": 0,
        "callbackStatuses": [],
    }
    assert paid | {"receipt": None} == open_entry | {
        "resultCode": 0,
        "callbacksSent": 1,
        "callbackStatuses": [200],
    }
    assert paid["receipt"] is not None


def test_ledger_lists_pushes_oldest_first(sim: Sim) -> None:
    ids = [sim.push_ok(f"25472200010{n}")["CheckoutRequestID"] for n in range(3)]

    assert [p["checkoutRequestId"] for p in sim.ledger()] == ids


def test_manual_phone_prompt_stays_open_and_is_listed(sim: Sim) -> None:
    sim.set_chaos(manualPhones=[PAYING_PHONE])
    accepted = sim.push_ok(PAYING_PHONE, amount=99)
    time.sleep(0.4)  # proves a negative: longer than the automatic delay, still open

    prompts = sim.http.get("/simulator/prompts").json()["prompts"]

    assert [p["checkoutRequestId"] for p in prompts] == [accepted["CheckoutRequestID"]]
    assert prompts[0]["amount"] == 99
    assert prompts[0]["manual"] is True
    assert sim.entry(accepted["CheckoutRequestID"])["resultCode"] is None


def test_manual_flag_leaves_every_prompt_open(sim: Sim) -> None:
    sim.set_chaos(manual=True)
    sim.push_ok("254700000002")
    sim.push_ok(PAYING_PHONE)
    time.sleep(0.4)  # proves a negative: longer than the automatic delay, still open

    assert len(sim.http.get("/simulator/prompts").json()["prompts"]) == 2


def test_automatic_prompts_disappear_from_the_list_when_resolved(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)

    assert sim.http.get("/simulator/prompts").json() == {"prompts": []}


@pytest.mark.parametrize(
    ("action", "code"),
    [("pay", 0), ("cancel", 1032), ("wrong-pin", 2001), ("ignore", 1037)],
)
def test_prompt_resolved_by_hand_calls_back_with_the_action_code(
    sim: Sim, action: str, code: int
) -> None:
    sim.set_chaos(manual=True)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    answer = sim.http.post(f"/simulator/prompts/{checkout_id}/{action}")

    assert answer.status_code == 200
    assert answer.json()["push"]["resultCode"] == code
    assert sim.receiver.wait_for(checkout_id)[0].stk["ResultCode"] == code
    assert sim.query(checkout_id).json()["ResultCode"] == str(code)
    assert (sim.entry(checkout_id)["receipt"] is not None) == (code == 0)


def test_hand_resolution_overrides_the_scenario_of_the_number(sim: Sim) -> None:
    sim.set_chaos(manualPhones=["254700000002"])
    checkout_id = sim.push_ok("254700000002")["CheckoutRequestID"]

    sim.http.post(f"/simulator/prompts/{checkout_id}/pay")

    assert sim.wait_resolved(checkout_id)["resultCode"] == 0


def test_an_automatic_prompt_can_be_resolved_by_hand_before_its_delay(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    answer = sim.http.post(f"/simulator/prompts/{checkout_id}/cancel")
    sim.wait_idle()  # the automatic resolution's timer has run out: it changed nothing

    assert answer.status_code == 200
    assert sim.entry(checkout_id)["resultCode"] == 1032
    assert len(sim.receiver.calls(checkout_id)) == 1


def test_manual_prompt_times_out_as_1037_after_prompt_timeout(sim: Sim) -> None:
    sim.set_chaos(manual=True, promptTimeoutS=0.3)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    entry = sim.wait_resolved(checkout_id, timeout=2)

    assert entry["resultCode"] == 1037


def test_resolving_a_closed_prompt_is_409(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]
    sim.wait_resolved(checkout_id)

    answer = sim.http.post(f"/simulator/prompts/{checkout_id}/pay")

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "prompt_closed"


def test_resolving_an_unknown_prompt_is_404(sim: Sim) -> None:
    answer = sim.http.post("/simulator/prompts/ws_CO_nope/pay")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "prompt_not_found"


def test_unknown_action_is_400_naming_the_actions(sim: Sim) -> None:
    sim.set_chaos(manual=True)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    answer = sim.http.post(f"/simulator/prompts/{checkout_id}/dance")

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_action", "action")
    assert "wrong-pin" in error["message"]
    assert sim.entry(checkout_id)["resultCode"] is None


def test_reset_forgets_pushes_cancels_timers_and_restores_chaos(sim: Sim) -> None:
    sim.set_chaos(latencyMs=5, callbackDropRate=0.5)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    assert sim.http.post("/simulator/reset").status_code == 200
    sim.wait_idle()

    assert sim.ledger() == []
    assert sim.receiver.calls(checkout_id) == []
    chaos = sim.http.get("/simulator/chaos").json()
    assert (chaos["latencyMs"], chaos["callbackDropRate"]) == (0, 0.0)
    assert sim.push(sim.push_body()).status_code == 200


def test_unknown_path_answers_daraja_resource_not_found(sim: Sim) -> None:
    answer = sim.http.post("/mpesa/stkpush/v2/processrequest", json={})

    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "404.001.01"


def test_wrong_method_answers_method_not_allowed(sim: Sim) -> None:
    answer = sim.http.get("/mpesa/stkpush/v1/processrequest")

    assert answer.status_code == 405
    assert answer.json()["errorCode"] == "405.001"


def test_ledger_counts_pending_timers_and_callbacks_until_the_last_is_sent(sim: Sim) -> None:
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    assert sim.http.get("/simulator/ledger").json()["pending"] >= 1  # the prompt's timer
    sim.wait_idle()

    assert sim.http.get("/simulator/ledger").json()["pending"] == 0
    assert len(sim.receiver.calls(checkout_id)) == 1  # sent by the time nothing is pending

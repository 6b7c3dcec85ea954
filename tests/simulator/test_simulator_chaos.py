"""Chaos knobs: GET/PUT validation and each knob's effect on the Daraja endpoints."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.simulator.conftest import PAYING_PHONE, Sim, assert_daraja_error

pytestmark = pytest.mark.simulator

DEFAULTS: dict[str, Any] = {
    "latencyMs": 0,
    "pushErrorRate": 0.0,
    "pushTimeoutRate": 0.0,
    "queryErrorRate": 0.0,
    "callbackDropRate": 0.0,
    "callbackDuplicateRate": 0.0,
    "callbackDelayS": None,
    "tokenLifetimeS": 3599,
    "faultRate": 0.0,
    "htmlRate": 0.0,
    "hangS": 30.0,
    "spikeArrestPerS": 0,
    "manual": False,
    "manualPhones": [],
    "promptTimeoutS": 60.0,
    "shuffleCallbackItems": False,
    "revokeOldTokens": False,
    "seed": None,
}


def test_chaos_starts_with_no_chaos(sim: Sim) -> None:
    assert sim.http.get("/simulator/chaos").json() == DEFAULTS


def test_chaos_put_merges_into_the_knobs_already_set(sim: Sim) -> None:
    sim.set_chaos(latencyMs=10)

    current = sim.set_chaos(callbackDelayS=[0.5, 1], pushErrorRate=0.25)

    assert current == DEFAULTS | {
        "latencyMs": 10,
        "callbackDelayS": [0.5, 1.0],
        "pushErrorRate": 0.25,
    }
    assert sim.http.get("/simulator/chaos").json() == current


def test_chaos_callback_delay_can_be_cleared_with_null(sim: Sim) -> None:
    sim.set_chaos(callbackDelayS=[1, 2])

    assert sim.set_chaos(callbackDelayS=None)["callbackDelayS"] is None


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"pushErrorRate": 2}, "pushErrorRate"),
        ({"queryErrorRate": -0.1}, "queryErrorRate"),
        ({"callbackDropRate": "often"}, "callbackDropRate"),
        ({"latencyMs": -1}, "latencyMs"),
        ({"latencyMs": 1.5}, "latencyMs"),
        ({"callbackDelayS": [3, 1]}, "callbackDelayS"),
        ({"callbackDelayS": [1]}, "callbackDelayS"),
        ({"callbackDelayS": 2}, "callbackDelayS"),
        ({"tokenLifetimeS": 0}, "tokenLifetimeS"),
        ({"hangS": 0}, "hangS"),
        ({"manualPhones": ["0712345678"]}, "manualPhones"),
        ({"manual": "yes"}, "manual"),
        ({"pushErorRate": 0.5}, "pushErorRate"),
    ],
)
def test_chaos_put_with_a_bad_value_is_400_naming_the_knob_and_changes_nothing(
    sim: Sim, knobs: dict[str, Any], field: str
) -> None:
    answer = sim.chaos(**knobs, latencyMs=7) if "latencyMs" not in knobs else sim.chaos(**knobs)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_chaos", field)
    assert field in error["message"]
    assert sim.http.get("/simulator/chaos").json() == DEFAULTS


@pytest.mark.parametrize("raw", [b"[]", b"{", b"", b'"fast"'])
def test_chaos_put_that_is_not_a_json_object_is_400(sim: Sim, raw: bytes) -> None:
    answer = sim.http.put("/simulator/chaos", content=raw)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_chaos"


def test_push_error_rate_refuses_the_push_as_system_busy_and_sends_nothing(sim: Sim) -> None:
    sim.set_chaos(pushErrorRate=1.0)

    answer = sim.push()
    sim.wait_idle()

    assert_daraja_error(
        answer, 500, "500.003.02", "System is busy. Please try again in few minutes."
    )
    assert sim.ledger() == []
    assert sim.receiver.calls() == []


def test_push_timeout_rate_hangs_the_push_yet_the_prompt_goes_out(sim: Sim) -> None:
    sim.set_chaos(pushTimeoutRate=1.0, hangS=1.0)

    with pytest.raises(httpx.ReadTimeout):
        sim.push(timeout=0.3)

    [entry] = sim.ledger()
    assert entry["phoneNumber"] == PAYING_PHONE
    assert sim.receiver.wait_for(entry["checkoutRequestId"])[0].stk["ResultCode"] == 0


def test_callback_drop_rate_drops_the_callback_though_the_payment_completes(sim: Sim) -> None:
    sim.set_chaos(callbackDropRate=1.0)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    entry = sim.wait_resolved(checkout_id)
    sim.wait_idle()

    assert (entry["resultCode"], entry["callbacksSent"]) == (0, 0)
    assert sim.receiver.calls() == []


def test_callback_duplicate_rate_sends_the_callback_twice(sim: Sim) -> None:
    sim.set_chaos(callbackDuplicateRate=1.0)
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    first, second = sim.receiver.wait_for(checkout_id, count=2)

    assert first.body == second.body


def test_callback_delay_overrides_the_default_delay(sim: Sim) -> None:
    sim.set_chaos(callbackDelayS=[0.8, 0.9])
    started = time.monotonic()
    checkout_id = sim.push_ok()["CheckoutRequestID"]

    time.sleep(0.4)  # proves a negative: still open before the 0.8 s delay is up
    assert sim.entry(checkout_id)["resultCode"] is None
    callback = sim.receiver.wait_for(checkout_id)[0]

    assert 0.8 <= callback.at - started < 2.0


def test_latency_delays_every_daraja_answer(sim: Sim) -> None:
    sim.token()
    sim.set_chaos(latencyMs=300)
    started = time.monotonic()

    sim.query("ws_CO_x")

    assert time.monotonic() - started >= 0.3


def test_fault_rate_answers_an_apigee_fault_body(sim: Sim) -> None:
    sim.token()
    sim.set_chaos(faultRate=1.0)

    answer = sim.push()

    assert answer.status_code == 503
    fault = answer.json()["fault"]
    assert fault["faultstring"]
    assert fault["detail"]["errorcode"]
    assert sim.ledger() == []


def test_html_rate_answers_a_non_json_page_with_status_200(sim: Sim) -> None:
    sim.token()
    sim.set_chaos(htmlRate=1.0)

    answer = sim.query("ws_CO_x")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<html>")


def test_fault_rate_also_hits_the_token_endpoint(sim: Sim) -> None:
    sim.set_chaos(faultRate=1.0)

    answer = sim.http.get("/oauth/v1/generate", params={"grant_type": "client_credentials"})

    assert answer.status_code == 503


def test_spike_arrest_limits_calls_per_second_with_500_003_02(sim: Sim) -> None:
    sim.token()
    sim.set_chaos(spikeArrestPerS=2)

    answers = [sim.query("ws_CO_x") for _ in range(3)]
    time.sleep(1.05)  # the limit is per wall-clock second: the next second must come
    after_a_second = sim.query("ws_CO_x")

    assert [a.json()["errorCode"] for a in answers[:2]] == ["500.001.1001", "500.001.1001"]
    assert_daraja_error(answers[2], 500, "500.003.02", "Error Occurred: Spike Arrest Violation")
    assert after_a_second.json()["errorCode"] == "500.001.1001"


def test_shuffled_callback_items_keep_every_item(sim: Sim) -> None:
    sim.set_chaos(shuffleCallbackItems=True, seed=3)
    ids = [sim.push_ok(f"25472200020{n}")["CheckoutRequestID"] for n in range(4)]

    orders = set()
    for checkout_id in ids:
        items = sim.receiver.wait_for(checkout_id)[0].stk["CallbackMetadata"]["Item"]
        orders.add(tuple(item["Name"] for item in items))

    assert len(orders) > 1
    assert all(
        sorted(o) == ["Amount", "Balance", "MpesaReceiptNumber", "PhoneNumber", "TransactionDate"]
        for o in orders
    )


def run_seeded(sim: Sim) -> list[tuple[str, str | None]]:
    sim.set_chaos(seed=42, callbackDropRate=0.5)
    ids = [sim.push_ok(f"25472200030{n}")["CheckoutRequestID"] for n in range(4)]
    entries = [sim.wait_resolved(c) for c in ids]
    return [(e["merchantRequestId"], e["receipt"]) for e in entries]


def test_seed_makes_ids_receipts_and_draws_repeat(sim: Sim) -> None:
    first = run_seeded(sim)
    sim.http.post("/simulator/reset")

    second = run_seeded(sim)

    assert first == second

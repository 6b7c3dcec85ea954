"""The customer's side: a prompt opens on the handset, resolves, and the callback goes out.

The outcome is decided only when the prompt resolves (after the callback delay, or by hand
from the virtual phone), so until then a query can only say "still processing".
"""

from __future__ import annotations

import asyncio
import random
import time

from daraja.simulator import callbacks, errors, ids
from daraja.simulator.checks import PushRequest
from daraja.simulator.errors import Refusal
from daraja.simulator.ledger import Push
from daraja.simulator.scenarios import NOT_PERMITTED, UNREACHABLE, Delivery, scenario_for
from daraja.simulator.state import SimulatorState, log


def open_prompt(sim: SimulatorState, request: PushRequest) -> Push | Refusal:
    """Send the prompt for an accepted push, or refuse it as Daraja would."""
    if scenario_for(request.party_a).refused or sim.ledger.locked(request.phone_number):
        return errors.SUBSCRIBER_LOCKED
    push = _new_push(sim, request)
    sim.ledger.add(push)
    log.info("prompt %s opened for %s", push.merchant_request_id, mask(push.phone_number))
    if push.manual:
        if sim.chaos.prompt_timeout_s is not None:
            sim.spawn(_resolve_later(sim, push, sim.chaos.prompt_timeout_s, UNREACHABLE))
    else:
        sim.spawn(_resolve_later(sim, push, _resolve_delay(sim, push), _outcome(push)))
    return push


def resolve(sim: SimulatorState, push: Push, result_code: int) -> bool:
    """Close an open prompt with `result_code` and send its callback; False if already closed."""
    if not push.is_open:
        return False
    sim.ledger.close(push, result_code, ids.nairobi_now())
    log.info("prompt %s resolved with %s", push.merchant_request_id, result_code)
    _send_callback(sim, push)
    return True


def mask(phone: str) -> str:
    """`2547****5678`: enough to tell numbers apart in a log, never the whole number."""
    return f"{phone[:4]}****{phone[-4:]}"


def _new_push(sim: SimulatorState, request: PushRequest) -> Push:
    now = ids.nairobi_now()
    checkout_id = ids.checkout_request_id(now, request.phone_number)
    while sim.ledger.knows(checkout_id):
        # Two pushes to one handset in the same millisecond: step the clock, as Daraja's is.
        now = now.replace(microsecond=(now.microsecond + 1000) % 1_000_000)
        checkout_id = ids.checkout_request_id(now, request.phone_number)
    return Push(
        checkout_request_id=checkout_id,
        merchant_request_id=ids.merchant_request_id(sim.rng),
        phone_number=request.party_a,
        prompt_phone=request.phone_number,
        amount=request.amount,
        account_reference=request.account_reference,
        callback_url=request.callback_url,
        opened_at=now,
        product_ok=_product_ok(sim, request),
        manual=sim.chaos.manual or request.party_a in sim.chaos.manual_phones,
        rng=random.Random(sim.rng.getrandbits(64)),  # noqa: S311 - a simulator, not crypto
    )


def _product_ok(sim: SimulatorState, request: PushRequest) -> bool:
    # Daraja accepts a till/PayBill mix-up and fails it later with 2028 (DARAJA.md §5).
    config = sim.config
    return request.transaction_type == config.transaction_type and request.party_b == config.party_b


def _outcome(push: Push) -> int:
    return scenario_for(push.phone_number).result_code if push.product_ok else NOT_PERMITTED


def _resolve_delay(sim: SimulatorState, push: Push) -> float:
    window = sim.chaos.callback_delay_s
    if window is None:
        return sim.config.callback_delay_s
    return push.rng.uniform(*window)


async def _resolve_later(sim: SimulatorState, push: Push, delay_s: float, result_code: int) -> None:
    await asyncio.sleep(delay_s)
    resolve(sim, push, result_code)


def _send_callback(sim: SimulatorState, push: Push) -> None:
    delivery = scenario_for(push.phone_number).delivery
    if delivery is Delivery.NEVER or sim.chance(sim.chaos.callback_drop_rate, push.rng):
        log.info("callback for %s dropped", push.merchant_request_id)
        return
    twice = delivery is Delivery.TWICE or sim.chance(sim.chaos.callback_duplicate_rate, push.rng)
    sim.spawn(callbacks.deliver(sim, push, 2 if twice else 1, _callback_delay(sim, push)))


def _callback_delay(sim: SimulatorState, push: Push) -> float:
    if scenario_for(push.phone_number).delivery is not Delivery.LATE:
        return 0.0
    # The late number's payment completes on time; only its callback is held back.
    waited = time.time() - push.opened_at.timestamp()
    return max(0.0, sim.config.late_callback_delay_s - waited)

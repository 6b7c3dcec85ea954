"""The control API under `/simulator/` (not a Daraja path): ledger, chaos, prompts, reset.

Tests read the ledger as ground truth and turn the chaos knobs; the virtual-phone page
lists open prompts and resolves them by hand. Errors use Khalex Pay's own error shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import FromPath

from daraja.simulator.answers import control_error, json_answer
from daraja.simulator.chaos import ChaosError, chaos_to_json, merge_chaos
from daraja.simulator.prompts import resolve
from daraja.simulator.scenarios import ACTIONS
from daraja.simulator.state import Sim, log

AnyRequest = Request[Any, Any, Any]


@get("/simulator/ledger")
async def read_ledger(sim: Sim) -> Response[bytes]:
    """Every accepted push, oldest first, with its outcome and callbacks sent; `pending`
    counts the prompt timers and callback deliveries still to run (0: nothing more is sent)."""
    pushes = [push.to_json() for push in sim.ledger.pushes()]
    return json_answer({"pushes": pushes, "pending": sim.pending})


@get("/simulator/prompts")
async def list_prompts(sim: Sim) -> Response[bytes]:
    """Prompts still open on a handset."""
    return json_answer({"prompts": [push.prompt_json() for push in sim.ledger.open_prompts()]})


@post("/simulator/prompts/{checkout_request_id:str}/{action:str}")
async def act_on_prompt(
    sim: Sim, checkout_request_id: FromPath[str], action: FromPath[str]
) -> Response[bytes]:
    """Resolve an open prompt by hand: pay (0), cancel (1032), wrong-pin (2001), ignore (1037)."""
    if action not in ACTIONS:
        known = ", ".join(ACTIONS)
        return control_error(400, "unknown_action", f"action must be one of {known}", "action")
    push = sim.ledger.get(checkout_request_id)
    if push is None:
        return control_error(404, "prompt_not_found", "no push has this CheckoutRequestID")
    if not resolve(sim, push, ACTIONS[action]):
        return control_error(409, "prompt_closed", "this prompt has already resolved")
    return json_answer({"push": push.to_json()})


@get("/simulator/chaos")
async def read_chaos(sim: Sim) -> Response[bytes]:
    """The knobs in force."""
    return json_answer(chaos_to_json(sim.chaos))


@put("/simulator/chaos")
async def change_chaos(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """Merge the knobs in the body into those in force; a bad knob changes nothing.

    Naming a seed (even the one in force) restarts the random draws, so a run can be replayed.
    """
    raw = await request.body()
    try:
        chaos = merge_chaos(sim.chaos, raw)
    except ChaosError as exc:
        return control_error(400, "invalid_chaos", exc.message, exc.field)
    knobs = msgspec.json.decode(raw)
    sim.set_chaos(chaos, reseed=knobs.get("seed") is not None)
    # Knob names only: manualPhones holds whole phone numbers, which never go in a log.
    log.info("chaos knobs changed: %s", ", ".join(sorted(knobs)))
    return json_answer(chaos_to_json(chaos))


@post("/simulator/reset")
async def reset(sim: Sim) -> Response[bytes]:
    """Forget every push and prompt and restore the starting chaos (tokens stay valid)."""
    await sim.reset()
    return json_answer({"reset": True})

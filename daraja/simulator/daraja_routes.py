"""Daraja's own paths: OAuth token, STK push and STK query, with Daraja's answers.

Each handler runs the same gauntlet as the real platform: the gateway (latency, Apigee
faults, HTML pages), the access token, the spike arrest, the payload checks, the merchant
checks, and only then the business of the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from litestar import Request, Response, get, post

from daraja.simulator import errors, ids
from daraja.simulator.answers import error_answer, fault_answer, html_answer, json_answer
from daraja.simulator.checks import (
    PushRequest,
    QueryRequest,
    check_merchant,
    check_push,
    check_query,
    read_json_object,
)
from daraja.simulator.errors import Refusal
from daraja.simulator.ledger import Push
from daraja.simulator.prompts import open_prompt
from daraja.simulator.scenarios import query_desc, scenario_for
from daraja.simulator.state import Sim, SimulatorState

AnyRequest = Request[Any, Any, Any]
Checked = TypeVar("Checked", PushRequest, QueryRequest)

ACCEPTED = "Success. Request accepted for processing"
QUERY_ACCEPTED = "The service request has been accepted successfully"
STILL_PROCESSING = "The transaction is still under processing"


@get("/oauth/v1/generate")
async def generate_token(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """Exchange Basic consumer credentials for a 28-character bearer token."""
    if (gateway := await _gateway(sim)) is not None:
        return gateway
    if request.query_params.get("grant_type") != "client_credentials":
        return _refuse(sim, errors.INVALID_GRANT_TYPE)
    if (refusal := _check_basic(sim, request.headers.get("authorization"))) is not None:
        return _refuse(sim, refusal)
    lifetime = sim.chaos.token_lifetime_s
    token = sim.tokens.issue(lifetime, revoke_old=sim.chaos.revoke_old_tokens)
    # Daraja has sent expires_in as a string; clients must coerce it.
    return json_answer({"access_token": token, "expires_in": str(lifetime)})


@post("/mpesa/stkpush/v1/processrequest")
async def process_request(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """STK push: validate, open the prompt, answer "accepted" (or hang, or refuse)."""
    if (refusal := await _before_payload(sim, request, is_push=True)) is not None:
        return refusal
    push_request = await _validated(sim, request, check_push)
    if isinstance(push_request, Refusal):
        return _refuse(sim, push_request)
    push = open_prompt(sim, push_request)
    if isinstance(push, Refusal):
        return _refuse(sim, push)
    if scenario_for(push.phone_number).hangs or sim.chance(sim.chaos.push_timeout_rate):
        # The prompt is already out; only the answer is late, as on the real platform.
        await asyncio.sleep(sim.chaos.hang_s)
    return json_answer(_accepted(push))


@post("/mpesa/stkpushquery/v1/query")
async def query_request(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """STK query: "does not exist", "still processing" in one of its forms, or the outcome."""
    if (refusal := await _before_payload(sim, request, is_push=False)) is not None:
        return refusal
    query = await _validated(sim, request, check_query)
    if isinstance(query, Refusal):
        return _refuse(sim, query)
    return _query_answer(sim, query.checkout_request_id)


async def gate(sim: SimulatorState, request: AnyRequest) -> Response[bytes] | None:
    """Gateway, bearer token and spike arrest, as for a query (other Daraja APIs use it)."""
    return await _before_payload(sim, request, is_push=False)


def refuse(sim: SimulatorState, error: Refusal) -> Response[bytes]:
    """Daraja's refusal `error`, with a fresh requestId."""
    return _refuse(sim, error)


async def _gateway(sim: SimulatorState) -> Response[bytes] | None:
    """What the Apigee gateway does before Daraja sees the call: lag, faults, HTML pages."""
    if sim.chaos.latency_ms:
        await asyncio.sleep(sim.chaos.latency_ms / 1000)
    if sim.chance(sim.chaos.fault_rate):
        return fault_answer()
    if sim.chance(sim.chaos.html_rate):
        return html_answer()
    return None


async def _before_payload(
    sim: SimulatorState, request: AnyRequest, *, is_push: bool
) -> Response[bytes] | None:
    """Gateway, bearer token and rate limits, all checked before the body is read."""
    if (gateway := await _gateway(sim)) is not None:
        return gateway
    if not _bearer_ok(sim, request.headers.get("authorization")):
        return _refuse(sim, errors.INVALID_ACCESS_TOKEN)
    if sim.spike_arrested():
        return _refuse(sim, errors.SPIKE_ARREST)
    if is_push and sim.chance(sim.chaos.push_error_rate):
        return _refuse(sim, errors.SYSTEM_BUSY)
    return None


async def _validated(
    sim: SimulatorState, request: AnyRequest, check: Callable[[dict[str, Any]], Checked | Refusal]
) -> Checked | Refusal:
    """The body through the gateway's format checks, then the backend's merchant checks."""
    fields = read_json_object(request.headers.get("content-type"), await request.body())
    if isinstance(fields, Refusal):
        return fields
    checked = check(fields)
    if isinstance(checked, Refusal):
        return checked
    config = sim.config
    return check_merchant(config, checked.shortcode, checked.password, checked.timestamp) or checked


def _bearer_ok(sim: SimulatorState, authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme == "Bearer" and sim.tokens.valid(token)


def _check_basic(sim: SimulatorState, authorization: str | None) -> Refusal | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme != "Basic" or not encoded:
        return errors.INVALID_AUTH_TYPE
    try:
        pair = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return errors.INVALID_AUTHENTICATION
    expected = f"{sim.config.consumer_key}:{sim.config.consumer_secret}".encode()
    return None if hmac.compare_digest(pair, expected) else errors.INVALID_AUTHENTICATION


def _refuse(sim: SimulatorState, error: Refusal) -> Response[bytes]:
    return error_answer(error, ids.request_id(sim.rng))


def _accepted(push: Push) -> dict[str, Any]:
    return {
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED,
        "CustomerMessage": ACCEPTED,
    }


def _query_answer(sim: SimulatorState, checkout_id: str) -> Response[bytes]:
    """Daraja names the CheckoutRequestID as the requestId of a query's refusals."""
    push = sim.ledger.get(checkout_id)
    if sim.chance(sim.chaos.query_error_rate):
        return error_answer(errors.BEING_PROCESSED, checkout_id)
    if push is None:
        return error_answer(errors.TRANSACTION_UNKNOWN, checkout_id)
    if push.is_open:
        return _still_processing(push)
    return json_answer(_outcome(push))


def _still_processing(push: Push) -> Response[bytes]:
    """Rotate through the three "not yet" answers Daraja has given for an open prompt."""
    push.open_queries += 1
    turn = push.open_queries % 3
    if turn == 1:
        return error_answer(errors.BEING_PROCESSED, push.checkout_request_id)
    if turn == 2:
        return json_answer(_query_envelope(push, "4999", STILL_PROCESSING))
    return error_answer(errors.BEING_PROCESSED_QUIETLY, push.checkout_request_id)


def _outcome(push: Push) -> dict[str, Any]:
    code = push.result_code if push.result_code is not None else 0
    # The query answers ResultCode as a string, unlike the callback; no receipt, no amount.
    return _query_envelope(push, str(code), query_desc(code))


def _query_envelope(push: Push, result_code: str, result_desc: str) -> dict[str, Any]:
    return {
        "ResponseCode": "0",
        "ResponseDescription": QUERY_ACCEPTED,
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc,
    }

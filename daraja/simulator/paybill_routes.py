"""PayBill (C2B) paths: Daraja's register-URL, and the control API's "customer pays by PayBill".

- `POST /mpesa/c2b/v1/registerurl` (and `/v2/`): Daraja's rules and refusals. The URLs may not
  hold "mpesa", "safaricom", "exe", "exec", "cmd", "sql" or "query"; a shortcode registers
  once (again: 500.003.1001 "Urls are already registered"; `POST /simulator/reset` forgets).
- `POST /simulator/paybill` `{"businessNumber", "accountReference", "amount", "phoneNumber"?,
  "firstName"?}`: a customer pays the PayBill by hand. Validation is asked at once (the answer
  waits for it); the confirmation follows in the background. 200 `{"transaction": {...}}`.
- `GET /simulator/paybill`: `{"registration", "transactions"}`, the ground truth.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post

from daraja.simulator import errors, ids
from daraja.simulator.answers import control_error, json_answer
from daraja.simulator.checks import read_json_object
from daraja.simulator.daraja_routes import gate, refuse
from daraja.simulator.errors import Refusal
from daraja.simulator.paybill import new_transaction, pay
from daraja.simulator.paybill_ledger import PaybillPayment, Registration
from daraja.simulator.state import Sim, SimulatorState

AnyRequest = Request[Any, Any, Any]

#: Words Daraja refuses anywhere in a C2B URL (reported as "URL has the word MPESA").
BANNED_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
ALREADY_REGISTERED = Refusal(500, "500.003.1001", "Urls are already registered")


@post("/mpesa/c2b/v1/registerurl")
async def register_v1(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """Register the shortcode's confirmation and validation URLs (v1: masked MSISDN)."""
    return await _register(request, sim, "v1")


@post("/mpesa/c2b/v2/registerurl")
async def register_v2(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """The same, v2: confirmations carry a SHA-256 digest of the MSISDN."""
    return await _register(request, sim, "v2")


async def _register(request: AnyRequest, sim: SimulatorState, version: str) -> Response[bytes]:
    if (refusal := await gate(sim, request)) is not None:
        return refusal
    fields = read_json_object(request.headers.get("content-type"), await request.body())
    if isinstance(fields, Refusal):
        return refuse(sim, fields)
    checked = _check_registration(sim, fields, version)
    if isinstance(checked, Refusal):
        return refuse(sim, checked)
    sim.paybill.registration = checked
    return json_answer(
        {
            "OriginatorCoversationID": ids.request_id(sim.rng),  # sic: Daraja's spelling
            "ResponseCode": "0",
            "ResponseDescription": "success",
        }
    )


def _check_registration(
    sim: SimulatorState, fields: dict[str, Any], version: str
) -> Registration | Refusal:
    short_code = fields.get("ShortCode")
    if not isinstance(short_code, (str, int)) or not str(short_code).isdigit():
        return errors.invalid_field("ShortCode")
    if str(short_code) != sim.config.shortcode:
        return errors.MERCHANT_UNKNOWN
    response_type = fields.get("ResponseType")
    if response_type not in ("Completed", "Cancelled"):
        return errors.invalid_field("ResponseType")
    confirmation, validation = fields.get("ConfirmationURL"), fields.get("ValidationURL")
    refusal = _url_refusal("ConfirmationURL", confirmation) or _url_refusal(
        "ValidationURL", validation
    )
    if refusal is not None:
        return refusal
    if sim.paybill.registration is not None:
        return ALREADY_REGISTERED
    return Registration(str(short_code), response_type, str(confirmation), str(validation), version)


def _url_refusal(name: str, url: object) -> Refusal | None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return errors.invalid_field(name)
    if word := next((w for w in BANNED_WORDS if w in url.lower()), None):
        return Refusal(400, "400.003.02", f"Invalid {name} - URL has the word {word.upper()}")
    return None


@post("/simulator/paybill")
async def pay_by_paybill(request: AnyRequest, sim: Sim) -> Response[bytes]:
    """A customer pays the PayBill by hand: validation now, the confirmation after."""
    try:
        payment = msgspec.json.decode(await request.body(), type=PaybillPayment)
    except msgspec.ValidationError as exc:
        return control_error(400, "invalid_paybill_payment", str(exc), _field(str(exc)))
    except msgspec.DecodeError:
        return control_error(400, "invalid_paybill_payment", "the body must be a JSON object")
    if payment.business_number != sim.config.shortcode:
        return control_error(404, "unknown_business", "no PayBill has this business number",
                             "businessNumber")  # fmt: skip
    if sim.paybill.registration is None:
        return control_error(409, "urls_not_registered",
                             "no C2B URLs are registered: run khalex-pay c2b register")  # fmt: skip
    tx = new_transaction(sim, payment)
    await pay(sim, tx)
    return json_answer({"transaction": tx.to_json()})


@get("/simulator/paybill")
async def read_paybill(sim: Sim) -> Response[bytes]:
    """The registered URLs and every PayBill payment, oldest first."""
    reg = sim.paybill.registration
    return json_answer(
        {
            "registration": reg.to_json() if reg else None,
            "transactions": [tx.to_json() for tx in sim.paybill.transactions],
        }
    )


def _field(message: str) -> str | None:
    """The camelCase field a msgspec message names (`... at `$.amount``)."""
    marker = "`$."
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]

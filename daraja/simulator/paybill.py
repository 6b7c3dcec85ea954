"""PayBill (C2B) in the simulator: registered URLs, customers paying by hand, notifications.

A customer pays the shortcode's PayBill from the virtual phone (`POST /simulator/paybill`).
As on M-Pesa, the validation URL is asked first (when registered): a refusal (any ResultCode
but 0) stops the payment; no answer leaves it to the registered ResponseType. Then the money
moves, a receipt (TransID) is issued, and the confirmation is POSTed to the confirmation URL,
once, with the chaos knobs for callbacks (drop, duplicate, delay) applied. Nothing is retried.

The v1 confirmation carries the payer's number masked (`2547****5678`); the v2 one carries a
SHA-256 hex digest of it (DARAJA.md "C2B"), which is why nobody may match by phone.
"""

from __future__ import annotations

import asyncio
import hashlib
import random

import msgspec

from daraja.simulator import ids
from daraja.simulator.paybill_ledger import DECLINED, PaybillPayment, Registration, Transaction
from daraja.simulator.state import SimulatorState, log

#: How long M-Pesa waits for the validation URL before applying the ResponseType.
VALIDATION_TIMEOUT_S = 8.0


def notification_body(sim: SimulatorState, tx: Transaction, version: str) -> bytes:
    """The validation or confirmation body M-Pesa POSTs (Daraja's C2B shape)."""
    msisdn = (
        hashlib.sha256(tx.phone_number.encode()).hexdigest()
        if version == "v2"
        else f"{tx.phone_number[:4]}****{tx.phone_number[-4:]}"
    )
    return msgspec.json.encode(
        {
            "TransactionType": "Pay Bill", "TransID": tx.trans_id,
            "TransTime": tx.paid_at.strftime("%Y%m%d%H%M%S"), "TransAmount": f"{tx.amount}.00",
            "BusinessShortCode": tx.short_code, "BillRefNumber": tx.bill_ref_number,
            "InvoiceNumber": "", "OrgAccountBalance": f"{sim.paybill.balance}.00",
            "ThirdPartyTransID": "", "MSISDN": msisdn, "FirstName": tx.first_name,
            "MiddleName": "", "LastName": "",
        }
    )  # fmt: skip


async def pay(sim: SimulatorState, tx: Transaction) -> None:
    """Ask the validation URL, then (unless refused) take the money and confirm it."""
    reg = sim.paybill.registration
    assert reg is not None
    sim.paybill.transactions.append(tx)
    status, result = await _validate(sim, tx, reg)
    tx.validation_status, tx.validation_result = status, result
    refused = result is not None and result != "0"
    timed_out = result is None and reg.response_type == "Cancelled"
    if refused or timed_out:
        tx.status = DECLINED
        log.info("paybill payment %s declined (%s)", tx.trans_id, result or "no answer")
        return
    sim.paybill.balance += tx.amount
    if sim.chance(sim.chaos.callback_drop_rate, tx.rng):
        log.info("paybill confirmation %s dropped", tx.trans_id)
        return
    copies = 2 if sim.chance(sim.chaos.callback_duplicate_rate, tx.rng) else 1
    window = sim.chaos.callback_delay_s
    delay = tx.rng.uniform(*window) if window else 0.0
    sim.spawn(_confirm(sim, tx, reg, copies, delay))


async def _validate(
    sim: SimulatorState, tx: Transaction, reg: Registration
) -> tuple[int | None, str | None]:
    """(HTTP status, ResultCode as text) from the validation URL; None for no usable answer."""
    body = notification_body(sim, tx, reg.version)
    try:
        answer = await sim.post(reg.validation_url, body, _headers(), VALIDATION_TIMEOUT_S)
    except Exception:  # refused, timed out, bad host: as if it never answered
        return None, None
    try:
        code = msgspec.json.decode(answer.content).get("ResultCode")
    except (msgspec.DecodeError, AttributeError):
        return answer.status_code, None
    if answer.status_code != 200 or code is None:
        return answer.status_code, None
    return answer.status_code, str(code)


async def _confirm(
    sim: SimulatorState, tx: Transaction, reg: Registration, copies: int, delay_s: float
) -> None:
    await asyncio.sleep(delay_s)
    body = notification_body(sim, tx, reg.version)
    for _ in range(copies):
        tx.confirmations_sent += 1
        try:
            answer = await sim.post(reg.confirmation_url, body, _headers())
            status: int | None = answer.status_code
        except Exception:  # lost, as a callback is: M-Pesa does not retry
            status = None
        tx.confirmation_statuses.append(status)
        log.info("paybill confirmation %s answered %s", tx.trans_id, status or "no connection")


def _headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def new_transaction(sim: SimulatorState, p: PaybillPayment) -> Transaction:
    """A PayBill payment with a fresh receipt, paid now (Nairobi time)."""
    rng = random.Random(sim.rng.getrandbits(64))  # noqa: S311 - a simulator, not crypto
    return Transaction(
        trans_id=ids.receipt_number(rng), short_code=p.business_number,
        bill_ref_number=p.account_reference, amount=p.amount, phone_number=p.phone_number,
        first_name=p.first_name, paid_at=ids.nairobi_now(), rng=rng,
    )  # fmt: skip

"""The STK callback: its exact JSON text (DARAJA.md §4) and its one-shot delivery.

The body is written by hand because Daraja writes Amount with decimals (`1500.00`), which
no JSON encoder produces from an integer, and clients must cope with the float it parses to.
Delivery is never retried, whatever the receiver answers: Daraja does not retry either.
"""

from __future__ import annotations

import asyncio

import msgspec

from daraja.simulator.ledger import Push
from daraja.simulator.scenarios import callback_desc
from daraja.simulator.state import SimulatorState, log

CONTENT_TYPE = "application/json;charset=UTF-8"


def callback_body(push: Push, *, shuffle: bool = False) -> bytes:
    """The callback for a resolved `push`; metadata only when it was paid."""
    assert push.result_code is not None, "only a resolved prompt has a callback"
    head = msgspec.json.encode(
        {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": push.result_code,
            "ResultDesc": callback_desc(push.result_code),
        }
    )
    if push.result_code == 0:
        items = _metadata_items(push)
        if shuffle:
            push.rng.shuffle(items)
        metadata = b',"CallbackMetadata":{"Item":[' + b",".join(items) + b"]}"
        head = head[:-1] + metadata + b"}"
    return b'{"Body":{"stkCallback":' + head + b"}}"


async def deliver(sim: SimulatorState, push: Push, copies: int, delay_s: float) -> None:
    """POST the callback `copies` times after `delay_s`, recording each status; no retries."""
    await asyncio.sleep(delay_s)
    body = callback_body(push, shuffle=sim.chaos.shuffle_callback_items)
    for _ in range(copies):
        push.callbacks_sent += 1
        status = await _post(sim, push.callback_url, body)
        push.callback_statuses.append(status)
        log.info("callback for %s answered %s", push.merchant_request_id, status or "no connection")


def _metadata_items(push: Push) -> list[bytes]:
    receipt = msgspec.json.encode(push.receipt)
    return [
        b'{"Name":"Amount","Value":%d.00}' % push.amount,
        b'{"Name":"MpesaReceiptNumber","Value":%s}' % receipt,
        b'{"Name":"Balance"}',
        b'{"Name":"TransactionDate","Value":%d}' % (push.transaction_date or 0),
        b'{"Name":"PhoneNumber","Value":%d}' % int(push.phone_number),
    ]


async def _post(sim: SimulatorState, url: str, body: bytes) -> int | None:
    headers = {"Content-Type": CONTENT_TYPE, "BusinessShortCode": sim.config.shortcode}
    try:
        answer = await sim.post(url, body, headers)
    except Exception:  # whatever goes wrong (refused, timed out, bad host) the callback is lost
        return None
    return answer.status_code

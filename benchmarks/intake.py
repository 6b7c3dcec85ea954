"""(c) Callback intake: Safaricom's STK callbacks POSTed to each payment's own webhook URL.

The API stores each body in the inbox and queues it; the figures cover exactly that (no
worker runs meanwhile). The callbacks are what Daraja would send for the pushed payments:
paid, with the amount asked and a receipt of their own.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from benchmarks import procfs
from benchmarks.http_load import Call, post_all
from benchmarks.initiate import figures
from benchmarks.report import Figure
from store.tables import payments

BENCH = "callback intake (HTTP)"
#: TransactionDate as Daraja writes it (YYYYMMDDHHmmss, Nairobi time).
TRANSACTION_DATE = 20261126120000


def calls(engine: sa.Engine) -> list[Call]:
    """One paid callback per pushed payment, to `/api/payments/webhook/{token}`."""
    query = sa.select(
        payments.c.callback_token, payments.c.checkout_request_id,
        payments.c.merchant_request_id, payments.c.amount, payments.c.phone_number,
    ).where(payments.c.status == "pushed").order_by(payments.c.created_at)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query).tuples().all()
    return [_call(i, row) for i, row in enumerate(rows)]


def _call(i: int, row: tuple[str, str | None, str | None, int, str]) -> Call:
    token, checkout, merchant, amount, phone = row
    items = [
        {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": f"BNC{i:07d}"},
        {"Name": "Balance"}, {"Name": "TransactionDate", "Value": TRANSACTION_DATE},
        {"Name": "PhoneNumber", "Value": int(phone)},
    ]  # fmt: skip
    callback = {
        "MerchantRequestID": merchant, "CheckoutRequestID": checkout, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items},
    }  # fmt: skip
    body = json.dumps({"Body": {"stkCallback": callback}}).encode()
    return Call(f"/api/payments/webhook/{token}", body, {"content-type": "application/json"})


def measure(base: str, api_pid: int, engine: sa.Engine) -> list[Figure]:
    """POST a callback for every pushed payment and report rate, latency and API CPU."""
    to_send = calls(engine)
    if not to_send:
        raise RuntimeError(f"{BENCH}: no pushed payment to call back")
    cpu_before = procfs.cpu_seconds(api_pid)
    load = post_all(base, to_send)
    cpu_ms = (procfs.cpu_seconds(api_pid) - cpu_before) * 1000 / len(to_send)
    return figures(BENCH, load, cpu_ms, expected_status=200)

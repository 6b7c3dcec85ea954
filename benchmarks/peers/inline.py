"""The inline peer: an app that calls Daraja inside the request, as most integrations do.

`POST /pay` with `{"amount", "phoneNumber"}` fetches nothing else: it sends the STK push to
`MPESA_BASE_URL` with a synchronous HTTP client on the server's thread pool, writes one row
with the answer and returns it. No queue, no outbox, no idempotency, no retries: the
shortest path from a shop's request to a prompt, and so the one that feels every second
of Daraja's latency. Run: `python -m benchmarks.peers.inline --port N` (DATABASE_URL,
MPESA_BASE_URL from the environment).
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime

import httpx
import msgspec
import sqlalchemy as sa
import uvicorn
from litestar import Litestar, post

from daraja.wire import nairobi_timestamp, push_body
from plumbing.settings import load_settings

TABLE = "inline_peer_payments"
_settings = load_settings()
_engine = sa.create_engine(_settings.database_url, pool_size=20, max_overflow=40)
_daraja = httpx.Client(
    base_url=_settings.mpesa_base_url, timeout=30.0,
    limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
)  # fmt: skip
_token: list[str] = []


class Pay(msgspec.Struct, rename="camel"):
    amount: int
    phone_number: str


def _access_token() -> str:
    if not _token:
        answer = _daraja.get(
            "/oauth/v1/generate", params={"grant_type": "client_credentials"},
            auth=(_settings.mpesa_consumer_key, _settings.mpesa_consumer_secret),
        )  # fmt: skip
        _token.append(answer.json()["access_token"])
    return _token[0]


@post("/pay", sync_to_thread=True, status_code=201)
def pay(data: Pay) -> dict[str, object]:
    body = data
    answer = _daraja.post(
        "/mpesa/stkpush/v1/processrequest",
        headers={"Authorization": f"Bearer {_access_token()}"},
        json=push_body(
            shortcode=_settings.mpesa_business_shortcode, passkey=_settings.mpesa_passkey,
            timestamp=nairobi_timestamp(datetime.now(UTC)),
            transaction_type=_settings.mpesa_transaction_type, party_b=_settings.mpesa_party_b,
            phone=body.phone_number, amount=body.amount,
            callback_url=_settings.mpesa_callback_url, account_reference="Peer",
            description="Peer",
        ),
    )  # fmt: skip
    checkout = answer.json().get("CheckoutRequestID")
    payment_id = str(uuid.uuid4())
    with _engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {TABLE} (id, amount, phone, checkout_request_id) "
                    "VALUES (:id, :amount, :phone, :checkout)"),
            {"id": payment_id, "amount": body.amount, "phone": body.phone_number,
             "checkout": checkout},
        )  # fmt: skip
    return {"paymentId": payment_id, "checkoutRequestId": checkout}


def create_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, amount integer NOT NULL, "
            "phone varchar(12) NOT NULL, checkout_request_id varchar(64))"
        ))  # fmt: skip


app = Litestar([pay])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.inline")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")

"""A throwaway-shaped payment API, the yardstick for `POST /api/payments/initiate`.

msgspec decodes the body, one Core INSERT (async SQLAlchemy on psycopg) stores it, one
Dramatiq message is enqueued, and 202 answers with the id: no authentication, rate limits,
idempotency key, outbox or validation messages. It runs as one uvicorn process on the same
PostgreSQL and Redis as Khalex Pay, so the ratio of the two is what our extra work costs.
Run: `python -m benchmarks.reference.app --port N` (DATABASE_URL and REDIS_URL from the
environment); `create_table` makes its one table.
"""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import dramatiq
import msgspec
import sqlalchemy as sa
import uvicorn
from dramatiq.brokers.redis import RedisBroker
from litestar import Litestar, Request, post
from litestar.response import Response
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

TABLE = "reference_payments"
metadata = sa.MetaData()
payments = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("phone_number", sa.String(12), nullable=False),
    sa.Column("product_id", sa.String(100), nullable=False),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("customer_name", sa.String(200), nullable=False),
    sa.Column("customer_email", sa.String(254), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class Initiate(msgspec.Struct, rename="camel"):
    amount: int
    phone_number: str
    product_id: str
    product_name: str
    customer_name: str
    customer_email: str


class _Services:
    """The engine and the broker, made when the server starts (not on import)."""

    engine: AsyncEngine
    broker: RedisBroker


def _start() -> None:
    _Services.engine = create_async_engine(
        os.environ["DATABASE_URL"], pool_size=10, max_overflow=20
    )
    _Services.broker = RedisBroker(url=os.environ["REDIS_URL"])  # type: ignore[no-untyped-call]
    _Services.broker.declare_queue("reference")


@post("/api/payments/initiate")
async def initiate(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = msgspec.json.decode(await request.body(), type=Initiate)
    payment_id = str(uuid.uuid4())
    async with _Services.engine.begin() as conn:
        await conn.execute(payments.insert().values(
            id=payment_id, amount=body.amount, phone_number=body.phone_number,
            product_id=body.product_id, product_name=body.product_name,
            customer_name=body.customer_name, customer_email=body.customer_email,
            status="created", created_at=datetime.now(UTC),
        ))  # fmt: skip
    _Services.broker.enqueue(dramatiq.Message(
        queue_name="reference", actor_name="send_push", args=(payment_id,), kwargs={},
        options={},
    ))  # fmt: skip
    answer = msgspec.json.encode({"paymentId": payment_id, "status": "created"})
    return Response(answer, status_code=202, media_type="application/json")


def create_table(engine: sa.Engine) -> None:
    metadata.create_all(engine)


app = Litestar([initiate], on_startup=[_start])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.app")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")

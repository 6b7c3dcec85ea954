"""The tables. Migrations in `migrations/` create exactly these; both must change together.

One schema runs on PostgreSQL (production, tests) and SQLite (the embedded default).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from domain.payment import PENDING, Status
from store.sealed import Sealed

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Statuses during which the customer's phone may have an open prompt: the domain's PENDING,
#: in the order the domain declares them (the partial indexes' predicate is written from it).
IN_FLIGHT = tuple(status.value for status in Status if status in PENDING)
#: The partial indexes' predicate; the migrations spell the same text out (a unit test checks).
IN_FLIGHT_PREDICATE = "status IN ({})".format(", ".join(f"'{status}'" for status in IN_FLIGHT))
_IN_FLIGHT_SQL = sa.text(IN_FLIGHT_PREDICATE)
_WANTS_QUERY_SQL = sa.text("next_query_at IS NOT NULL")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: always pass aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TZ = UtcDateTime()
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER

#: What the shop says is owed (CONTRACT.md §7). Seed columns, plus the state machine's own.
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
    # [{"productId", "productName", "quantity", "unitPrice"}], as the shop sent them
    sa.Column("order_items", JSON, nullable=False),
    sa.Column("total_amount", sa.Integer, nullable=False),
    sa.Column("delivery_fee", sa.Integer, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False, server_default="KES"),
    # Personal fields are sealed (store/sealed.py); `customer_phone_index` finds by phone.
    sa.Column("customer_name", Sealed, nullable=False),
    sa.Column("customer_email", Sealed),
    sa.Column("customer_phone", Sealed, nullable=False),  # normalised 2547…/2541…
    sa.Column("customer_phone_index", sa.String(32)),
    sa.Column("delivery_address", Sealed),
    sa.Column("notes", Sealed),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("refund_due", sa.Boolean, nullable=False, server_default=sa.false()),
    # Completed payments whose money the shop owes back (domain Order.refunds).
    sa.Column("refund_payment_ids", JSON, nullable=False),
    # No foreign key: payments already reference orders, and a cycle would order nothing.
    sa.Column("paid_by_payment_id", sa.Uuid(as_uuid=False)),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.CheckConstraint("total_amount BETWEEN 1 AND 250000", name="total_range"),
    sa.CheckConstraint("delivery_fee >= 0", name="delivery_fee_range"),
    # Newest first, for cursor pagination (with and without a status filter).
    sa.Index("ix_orders_created", "created_at", "id"),
    sa.Index("ix_orders_customer_phone_index", "customer_phone_index"),
    sa.Index("ix_orders_status_created", "status", "created_at", "id"),
    sa.Index(
        "ix_orders_refund_due",
        "created_at",
        postgresql_where=sa.text("refund_due"),
        sqlite_where=sa.text("refund_due"),
    ),
)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Uuid(as_uuid=False), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("data", JSON, nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Index("ix_order_events_order", "order_id", "id"),
    sa.Index("ix_order_events_kind_created", "kind", "created_at"),
)

#: Idempotency-Keys of `POST /api/orders` (payments keep theirs in `idempotency_keys`).
order_idempotency_keys = sa.Table(
    "order_idempotency_keys",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("order_id", sa.Uuid(as_uuid=False), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="KES"),
    # Personal fields are sealed (store/sealed.py): look-ups use the blind indexes.
    sa.Column("phone_number", Sealed, nullable=False),
    sa.Column("phone_index", sa.String(32)),
    sa.Column("product_id", sa.String(100), nullable=False),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("customer_name", Sealed, nullable=False),
    sa.Column("customer_email", Sealed, nullable=False),
    sa.Column("order_id", sa.Uuid(as_uuid=False), sa.ForeignKey("orders.id")),
    sa.Column("status", sa.String(16), nullable=False),
    # Daraja's CheckoutRequestID ends with the payer's number: sealed, found by its index.
    sa.Column("checkout_request_id", Sealed),
    sa.Column("checkout_index", sa.String(32), unique=True),
    sa.Column("merchant_request_id", sa.String(64)),
    sa.Column("mpesa_receipt_number", sa.String(32), unique=True),
    sa.Column("receipt_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("transaction_date", TZ),
    sa.Column("result_code", sa.Integer),
    sa.Column("result_desc", sa.String(255)),
    sa.Column("failure_reason", sa.String(64)),
    sa.Column("late_success", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("push_attempts", sa.Integer, nullable=False, server_default="0"),
    # The secret in this payment's CallBackURL path: ties a callback to its payment even
    # when the push's answer (and so the CheckoutRequestID) was lost.
    sa.Column("callback_token", sa.String(64), nullable=False, unique=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Column("finished_at", TZ),
    sa.Column("next_query_at", TZ),
    sa.Column("query_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("amount BETWEEN 1 AND 250000", name="amount_range"),
    sa.Index(
        "uq_payments_phone_in_flight",
        "phone_index",
        unique=True,
        postgresql_where=_IN_FLIGHT_SQL,
        sqlite_where=_IN_FLIGHT_SQL,
    ),
    # One payment in flight per order: a second initiate for it is refused, never pushed.
    sa.Index(
        "uq_payments_order_in_flight",
        "order_id",
        unique=True,
        postgresql_where=_IN_FLIGHT_SQL,
        sqlite_where=_IN_FLIGHT_SQL,
    ),
    sa.Index("ix_payments_order", "order_id"),
    sa.Index(
        "ix_payments_pending_created",
        "created_at",
        postgresql_where=_IN_FLIGHT_SQL,
        sqlite_where=_IN_FLIGHT_SQL,
    ),
    # Recent outcomes, for the success-rate alert.
    sa.Index("ix_payments_finished_at", "finished_at"),
    # The ops summary's windows (payments created in the last hour, day).
    sa.Index("ix_payments_created", "created_at"),
    sa.Index(
        # Payments that want an STK query: pending ones, and expired ones whose success may
        # still come (a late success is honoured, never dropped).
        "ix_payments_next_query",
        "next_query_at",
        postgresql_where=_WANTS_QUERY_SQL,
        sqlite_where=_WANTS_QUERY_SQL,
    ),
)

payment_events = sa.Table(
    "payment_events",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.Uuid(as_uuid=False), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("data", JSON, nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Index("ix_payment_events_payment", "payment_id", "id"),
    sa.Index("ix_payment_events_kind_created", "kind", "created_at"),
)

callback_inbox = sa.Table(
    "callback_inbox",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("received_at", TZ, nullable=False),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("path_token", sa.String(64)),
    sa.Column("headers", JSON, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # personal values sealed (store/raw.py)
    sa.Column("checkout_request_id", Sealed),
    sa.Column("checkout_index", sa.String(32)),
    # received -> processed | unmatched | ignored ; or rejected at the door
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(255)),
    sa.Column("payment_id", sa.Uuid(as_uuid=False)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("processed_at", TZ),
    sa.Index("ix_callback_inbox_checkout", "checkout_index"),
    sa.Index("ix_callback_inbox_state", "state", "received_at"),
    # Recent untrusted callbacks naming a payment (one STK query for a flood of them).
    sa.Index("ix_callback_inbox_payment", "payment_id", "received_at"),
)

daraja_exchanges = sa.Table(
    "daraja_exchanges",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.Uuid(as_uuid=False)),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("url", sa.String(255), nullable=False),
    # The body sent (Password redacted) and the answer, personal values sealed (store/raw.py).
    sa.Column("request", JSON, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("answer", sa.Text),
    sa.Column("error", sa.String(500)),
    sa.Column("elapsed_ms", sa.Integer),
    sa.Column("sent_at", TZ, nullable=False),
    sa.Column("answered_at", TZ),
    sa.Index("ix_daraja_exchanges_payment", "payment_id", "id"),
    sa.Index("ix_daraja_exchanges_sent", "sent_at"),  # for the retention purge
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("args", JSON, nullable=False),  # ids only, never personal data
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("sent_at", TZ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # The request (or job, or scheduler tick) that queued it; the message carries it on.
    sa.Column("correlation_id", sa.String(64)),
    sa.Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    ),
    sa.Index(  # sent rows, oldest first, for the retention purge
        "ix_outbox_sent",
        "sent_at",
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    ),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("payment_id", sa.Uuid(as_uuid=False), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
)

#: Each Dramatiq message a worker started, counted in PostgreSQL: a message whose runs keep
#: starting but never finishing is killing its worker (Dramatiq does not count those).
job_deliveries = sa.Table(
    "job_deliveries",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("args", JSON, nullable=False),
    sa.Column("started", sa.Integer, nullable=False, server_default="0"),
    sa.Column("finished", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_started_at", TZ, nullable=False),
    sa.Column("last_started_at", TZ, nullable=False),
    sa.Column("dead_lettered_at", TZ),
    sa.Column("last_error", sa.String(500)),
    sa.Index("ix_job_deliveries_last_started", "last_started_at"),  # for the retention purge
    # The few dead ones among every message ever run, for the dead-letter alert.
    sa.Index(
        "ix_job_deliveries_dead",
        "dead_lettered_at",
        postgresql_where=sa.text("dead_lettered_at IS NOT NULL"),
        sqlite_where=sa.text("dead_lettered_at IS NOT NULL"),
    ),
)

#: Every alert raised, keyed by what it is about (`late_success:<payment id>`,
#: `dead_letter:<message id>`, `queue_age:<queue>`): the key is claimed before the alert
#: goes out, so several ticks or schedulers never send one twice.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("first_alerted_at", TZ, nullable=False),
    # Moved on when a condition still true is alerted again (after ALERT_REPEAT_S).
    sa.Column("last_alerted_at", TZ, nullable=False),
    sa.Column("times", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_alerts_last_alerted", "last_alerted_at"),
)

#: Shop requests we refused (4xx), kept with the reason: nothing that reached us is lost.
refused_requests = sa.Table(
    "refused_requests",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("received_at", TZ, nullable=False),
    sa.Column("path", sa.String(255), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("field", sa.String(64)),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_refused_requests_received", "received_at"),
)

#: The shop servers' API keys (CONTRACT.md §8): only a SHA-256 of each key is kept; the key
#: itself is shown once, by `khalex-pay keys create`. `prefix` is its first characters, so
#: a person can tell keys apart in `keys list`.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("revoked_at", TZ),
    sa.Column("last_used_at", TZ),
)

#: Events for the shop's webhook (SHOP_WEBHOOK_URL). The id is the `webhook-id` header on
#: every attempt; the payload holds ids, amounts, statuses, the receipt and the masked phone
#: only. pending -> delivered | failed (retries exhausted; `khalex-pay webhooks redeliver`).
_WEBHOOK_PENDING_SQL = sa.text("state = 'pending'")
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TZ, nullable=False),
    # When the next attempt is due; while a delivery job is queued, when the scheduler
    # queues another in case that one was lost.
    sa.Column("next_attempt_at", TZ),
    # An attempt is under way until then; a worker that died mid-attempt lets it lapse.
    sa.Column("sending_until", TZ),
    sa.Column("delivered_at", TZ),
    sa.Index(
        "ix_webhook_events_due",
        "next_attempt_at",
        postgresql_where=_WEBHOOK_PENDING_SQL,
        sqlite_where=_WEBHOOK_PENDING_SQL,
    ),
    sa.Index("ix_webhook_events_created", "created_at"),
    sa.Index("ix_webhook_events_state_created", "state", "created_at"),
)

#: Every attempt at delivering a webhook event, kept: what the shop answered and how fast.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("webhook_events.id"), nullable=False),
    sa.Column("attempted_at", TZ, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("answer", sa.String(500)),  # the first 500 characters of the answer, masked
    sa.Column("error", sa.String(500)),  # timeout, refused connection, ...
    sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_webhook_attempts_event", "event_id", "id"),
)

#: What each write to `payments` and `daraja_exchanges` changed in the figures /metrics
#: counts, appended by database triggers in the writer's own transaction (migration 0011
#: writes them; store/figures.py reads and folds them). `family` names the figure,
#: `label1`/`label2` its labels (or a histogram bucket's bound), `n` a count and `total`
#: a histogram's sum.
_NUMBER = sa.Numeric(asdecimal=False)
metric_deltas = sa.Table(
    "metric_deltas",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("family", sa.String(32), nullable=False),
    sa.Column("label1", sa.String(64), nullable=False),
    sa.Column("label2", sa.String(64), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("total", _NUMBER, nullable=False),
)

#: The deltas the scheduler folded, one row per figure and labels; also the roll-ups of
#: figures whose rows stop changing (see `metric_watermarks`).
metric_totals = sa.Table(
    "metric_totals",
    metadata,
    sa.Column("family", sa.String(32), primary_key=True),
    sa.Column("label1", sa.String(64), primary_key=True),
    sa.Column("label2", sa.String(64), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("total", _NUMBER, nullable=False),
)

#: How far a roll-up has counted (e.g. payments finished before `through`): a scrape
#: counts only the rows after it.
metric_watermarks = sa.Table(
    "metric_watermarks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("through", TZ, nullable=False),
)

#: PayBill (C2B) payments: every validation and confirmation request Safaricom sent, its raw
#: body stored before we answered (the payer's MSISDN and names stay under their own JSON keys
#: in `body`, never in a column), and where matching it to an order ended.
#: Confirmations: received -> matched | refund_due | unmatched | duplicate; untrusted or
#: rejected at the door. Validations: accepted | declined, or rejected.
C2B_COUNTED = ("matched", "refund_due", "unmatched")
_C2B_COUNTED_SQL = sa.text("state IN ('matched', 'refund_due', 'unmatched')")
c2b_payments = sa.Table(
    "c2b_payments",
    metadata,
    sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # validation | confirmation
    sa.Column("received_at", TZ, nullable=False),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("headers", JSON, nullable=False),
    # MSISDN and names sealed in place (store/raw.py); `phone_index` finds a payer by phone.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("phone_index", sa.String(32)),
    sa.Column("trans_id", sa.String(32)),  # the M-Pesa receipt
    # The account reference the payer typed: often their own number, so sealed.
    sa.Column("bill_ref_number", Sealed),
    sa.Column("amount", sa.Integer),  # whole shillings; null when TransAmount had cents
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(255)),
    sa.Column("order_id", sa.Uuid(as_uuid=False), sa.ForeignKey("orders.id")),
    # The STK payment that already recorded this receipt (a cross-channel duplicate).
    sa.Column("payment_id", sa.Uuid(as_uuid=False)),
    sa.Column("result_code", sa.String(16)),  # what a validation was answered
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("processed_at", TZ),
    sa.Index("ix_c2b_payments_state_received", "state", "received_at"),
    sa.Index("ix_c2b_payments_trans_id", "trans_id"),
    sa.Index("ix_c2b_payments_order", "order_id"),
    sa.Index("ix_c2b_payments_phone_index", "phone_index"),
    sa.Index("ix_c2b_payments_received", "received_at"),  # for the retention purge
    # One counted confirmation per receipt: a second is a duplicate, never counted twice.
    sa.Index(
        "uq_c2b_payments_trans_id_counted",
        "trans_id",
        unique=True,
        postgresql_where=_C2B_COUNTED_SQL,
        sqlite_where=_C2B_COUNTED_SQL,
    ),
)

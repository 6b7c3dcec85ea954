"""A year of finished payments and what each leaves behind, written by PostgreSQL itself.

`INSERT ... SELECT ... FROM generate_series` makes every row server-side, one statement per
table, so a million payments take minutes, not hours. Payment `i` (1..N) was created
`(N - i) / N` of a year ago, so the last day holds N/365 of them, as a steady shop's would.
Its companions are those of a real payment: an order (every other one), three events, an
idempotency key, the push (and a query for one in ten) in `daraja_exchanges`, the callback
in `callback_inbox`, the sent outbox jobs. 80 % completed, 12 % cancelled, 5 % failed for
lack of funds, 3 % expired; one in a thousand is a late success.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import sqlalchemy as sa

#: Seconds of a year: the span the payments are spread over.
YEAR_S = 365 * 24 * 3600

_P = "(md5('p' || i))::uuid"  # payment i's id
_O = "(md5('o' || i))::uuid"  # order i's id (even i only)
_CREATED = (
    "(now() - ((:n - i) * (CAST(:year_s AS double precision) / :n)) * interval '1 second'"
    " - interval '1 minute')"
)
_FINISHED = f"({_CREATED} + (5 + i % 40) * interval '1 second')"
_STATUS = (
    "(CASE WHEN i % 1000 = 999 OR i % 100 < 80 THEN 'completed' "
    "WHEN i % 100 < 92 THEN 'cancelled' ELSE 'failed' END)"
)
_REASON = (
    "(CASE WHEN i % 1000 = 999 OR i % 100 < 80 THEN NULL "
    "WHEN i % 100 < 92 THEN 'cancelled_by_user' "
    "WHEN i % 100 < 97 THEN 'insufficient_funds' ELSE 'timeout' END)"
)
_RESULT = "(CASE WHEN i % 100 < 80 OR i % 1000 = 999 THEN 0 WHEN i % 100 < 92 THEN 1032 ELSE 1 END)"
_SERIES = "FROM generate_series(1, :n) AS i"

STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "orders",
        f"""
        INSERT INTO orders (id, order_items, total_amount, delivery_fee, currency,
            customer_name, customer_email, customer_phone, status, refund_due,
            refund_payment_ids, paid_by_payment_id, version, created_at, updated_at)
        SELECT {_O}, jsonb_build_array(jsonb_build_object('productId', 'board-01',
                'productName', 'Tournament chess board', 'quantity', 1,
                'unitPrice', 100 + i % 5000)),
            100 + i % 5000, 0, 'KES', 'Wanjiru', 'wanjiru@example.com',
            '2547' || lpad((i % 100000000)::text, 8, '0'),
            CASE WHEN {_STATUS} = 'completed' THEN 'confirmed' ELSE 'pending' END, false,
            '[]'::jsonb, CASE WHEN {_STATUS} = 'completed' THEN {_P} END, 1,
            {_CREATED}, {_FINISHED}
        {_SERIES} WHERE i % 2 = 0""",
    ),
    (
        "payments",
        f"""
        INSERT INTO payments (id, amount, currency, phone_number, product_id, product_name,
            customer_name, customer_email, order_id, status, checkout_request_id,
            merchant_request_id, mpesa_receipt_number, transaction_date, result_code,
            result_desc, failure_reason, late_success, push_attempts, callback_token,
            version, created_at, updated_at, finished_at, query_attempts)
        SELECT {_P}, 100 + i % 5000, 'KES', '2547' || lpad((i % 100000000)::text, 8, '0'),
            'board-01', 'Tournament chess board', 'Wanjiru', 'wanjiru@example.com',
            CASE WHEN i % 2 = 0 THEN {_O} END, {_STATUS}, 'ws_CO_' || i, 'mr-' || i,
            CASE WHEN {_STATUS} = 'completed' THEN 'R' || lpad(i::text, 9, '0') END,
            CASE WHEN {_STATUS} = 'completed' THEN {_FINISHED} END, {_RESULT},
            'The service request is processed.', {_REASON}, i % 1000 = 999, 1,
            md5('t' || i), 3, {_CREATED}, {_FINISHED}, {_FINISHED},
            CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END
        {_SERIES}""",
    ),
    (
        "payment_events",
        f"""
        INSERT INTO payment_events (payment_id, kind, from_status, to_status, data, created_at)
        SELECT {_P}, e.kind, e.from_status,
            CASE WHEN e.step = 3 THEN {_STATUS} ELSE e.to_status END,
            '{{}}'::jsonb, {_CREATED} + e.step * interval '1 second'
        {_SERIES} CROSS JOIN (VALUES (1, 'initiated', NULL, 'created'),
            (2, 'push_accepted', 'created', 'pushed'), (3, 'callback', 'pushed', NULL))
            AS e(step, kind, from_status, to_status)""",
    ),
    (
        "idempotency_keys",
        f"""
        INSERT INTO idempotency_keys (key, fingerprint, payment_id, created_at)
        SELECT md5('k' || i), md5('f' || i), {_P}, {_CREATED} {_SERIES}""",
    ),
    (
        "daraja_exchanges",
        f"""
        INSERT INTO daraja_exchanges (payment_id, operation, url, request, http_status,
            answer, error, elapsed_ms, sent_at, answered_at)
        SELECT {_P}, e.operation, 'https://api.safaricom.co.ke/mpesa/' || e.operation,
            jsonb_build_object('BusinessShortCode', '174379', 'Password', '***',
                'TransactionType', 'CustomerPayBillOnline', 'Amount', 100 + i % 5000,
                'PartyA', '2547***', 'CheckoutRequestID', 'ws_CO_' || i),
            200, '{{"MerchantRequestID":"mr-' || i || '","CheckoutRequestID":"ws_CO_' || i
                || '","ResponseCode":"0","ResponseDescription":"Success. Request accepted '
                || 'for processing","CustomerMessage":"Success. Request accepted"}}',
            NULL, 200 + i % 900, {_CREATED} + interval '100 milliseconds',
            {_CREATED} + interval '1 second'
        {_SERIES} CROSS JOIN (VALUES ('stk_push'), ('stk_query')) AS e(operation)
        WHERE e.operation = 'stk_push' OR i % 10 = 0""",
    ),
    (
        "callback_inbox",
        f"""
        INSERT INTO callback_inbox (received_at, source_ip, path_token, headers, body,
            checkout_request_id, state, payment_id, attempts, processed_at)
        SELECT {_FINISHED} - interval '400 milliseconds', '196.201.214.200', md5('t' || i),
            '{{"content-type": "application/json"}}'::jsonb,
            '{{"Body":{{"stkCallback":{{"MerchantRequestID":"mr-' || i
                || '","CheckoutRequestID":"ws_CO_' || i || '","ResultCode":' || {_RESULT}
                || ',"ResultDesc":"The service request is processed successfully.",'
                || '"CallbackMetadata":{{"Item":[{{"Name":"Amount","Value":' || (100 + i % 5000)
                || '}},{{"Name":"MpesaReceiptNumber","Value":"R' || lpad(i::text, 9, '0')
                || '"}},{{"Name":"TransactionDate","Value"\\:20261130101010}},'
                || '{{"Name":"PhoneNumber","Value"\\:254700000000}}]}}}}}}}}',
            'ws_CO_' || i, 'processed', {_P}, 1, {_FINISHED}
        {_SERIES} WHERE {_REASON} IS DISTINCT FROM 'timeout'""",
    ),
    (
        "outbox",
        f"""
        INSERT INTO outbox (queue, actor, args, created_at, sent_at, attempts, correlation_id)
        SELECT j.queue, j.actor, jsonb_build_array({_P}), {_CREATED}, {_CREATED}, 1,
            'req-' || md5('c' || i)
        {_SERIES} CROSS JOIN (VALUES ('payments', 'send_push'), ('callbacks', 'process_callback'))
            AS j(queue, actor)""",
    ),
)

#: Payments still waiting for their outcome, each due for an STK query now.
IN_FLIGHT = """
    INSERT INTO payments (id, amount, currency, phone_number, product_id, product_name,
        customer_name, customer_email, status, checkout_request_id, merchant_request_id,
        push_attempts, callback_token, version, created_at, updated_at, next_query_at)
    SELECT (md5('f' || i))::uuid, 1500, 'KES', '2549' || lpad(i::text, 8, '0'), 'board-01',
        'Tournament chess board', 'Wanjiru', 'wanjiru@example.com', 'pushed',
        'ws_CO_flight_' || i, 'mr-flight-' || i, 1, md5('ft' || i), 2,
        now() - interval '2 minutes', now() - interval '2 minutes', now() - interval '1 second'
    FROM generate_series(1, :n) AS i"""


def fill(engine: sa.Engine, payments: int) -> dict[str, float]:
    """Write `payments` finished payments and their companions; seconds per table."""
    took: dict[str, float] = {}
    params = {"n": payments, "year_s": YEAR_S}
    for table, sql in STATEMENTS:
        started = time.monotonic()
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.execute(sa.text(sql), params)
        took[table] = time.monotonic() - started
    started = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    took["vacuum analyze"] = time.monotonic() - started
    return took


def in_flight(engine: sa.Engine, count: int) -> None:
    """`count` pushed payments, each due for a reconciliation query."""
    with engine.begin() as conn:
        conn.execute(sa.text(IN_FLIGHT), {"n": count})


def payment_id(i: int) -> str:
    """The id the fill gave payment `i` (1..N): md5('p' || i) as a uuid."""
    return str(uuid.UUID(hashlib.md5(f"p{i}".encode()).hexdigest()))

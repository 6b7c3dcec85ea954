"""`keys rotate-data`: all ends under the first key; nothing written meanwhile is lost."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from khalex_pay import cli
from payments import callbacks
from plumbing import sealing
from store import exchanges, inbox, payments, refusals, rotation
from store.db import utcnow
from store.tables import callback_inbox, daraja_exchanges, refused_requests
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness

OLD = sealing.current()
NEW = sealing.Keyring((b"n" * 32, *OLD.data_keys), OLD.index_key)


@pytest.fixture
def new_key() -> Iterator[sealing.Keyring]:
    """DATA_ENCRYPTION_KEYS with a new first key, the old one still listed."""
    sealing.install(NEW)
    yield NEW
    sealing.install(OLD)


def _legacy_payment(h: Harness, phone: str) -> str:
    """A payment as written before sealing: clear values, no blind index."""
    payment_id = str(uuid.uuid4())
    with h.container.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO payments (id, amount, currency, phone_number, product_id,"
                " product_name, customer_name, customer_email, status, callback_token, version,"
                " created_at, updated_at, receipt_pending, late_success, push_attempts,"
                " query_attempts, checkout_request_id) VALUES (:id, 1500, 'KES', :phone, 'p',"
                " 'P', 'Old Customer', 'old@example.com', 'pushed', :token, 0, :now, :now,"
                " false, false, 1, 0, :checkout)"
            ),
            {"id": payment_id, "phone": phone, "token": uuid.uuid4().hex, "now": utcnow(),
             "checkout": f"ws_CO_30112026080000123{phone[3:]}"},
        )  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO refused_requests (received_at, path, status_code, code, reason,"
                " body) VALUES (:now, '/api/payments/initiate', 422, 'invalid_amount', 'r',"
                " :body)"
            ),
            {"now": utcnow(), "body": f'{{"phoneNumber": "{phone}", "amount": 0}}'},
        )
    return payment_id


def _raw_values(h: Harness) -> list[str]:
    """Every stored sealed value and raw body, as the database holds them."""
    t = payments_table
    sealed = [t.c.phone_number, t.c.customer_name, t.c.customer_email, t.c.checkout_request_id]
    with h.container.engine.connect() as conn:
        rows = conn.execute(sa.select(*(sa.type_coerce(c, sa.Text) for c in sealed))).all()
        bodies = conn.execute(sa.select(refused_requests.c.body)).scalars().all()
        inbox_bodies = conn.execute(sa.select(callback_inbox.c.body)).scalars().all()
    return [v for row in rows for v in row if v is not None] + [*bodies, *inbox_bodies]


def test_rotation_seals_legacy_and_old_key_values_under_the_first_key(
    h: Harness, new_key: sealing.Keyring
) -> None:
    sealing.install(OLD)
    under_old = h.pushed("254712000001")
    sealing.install(new_key)
    legacy = _legacy_payment(h, "254712000002")

    changed = rotation.rotate(h.container.engine)

    assert changed >= 3
    stored = _raw_values(h)
    assert stored
    assert all(new_key.current_id in v for v in stored), stored
    assert not any("254712000002" in v or "712000002" in v for v in stored)
    with h.container.engine.connect() as conn:
        assert payments.in_flight_for(conn, "254712000002") == legacy
        assert payments.in_flight_for(conn, "254712000001") == under_old.id
        found = payments.by_checkout(conn, "ws_CO_30112026080000123712000002")
        assert found is not None
        assert found.customer_name == "Old Customer"
        assert '"phoneNumber": "254712000002"' in refusals.latest(conn)[0]["body"]
    assert rotation.rotate(h.container.engine) == 0  # a second run finds nothing left


def test_rotation_while_payments_keep_being_written_loses_nothing(
    h: Harness, new_key: sealing.Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealing.install(OLD)
    before = [h.pushed(f"2547130{n:05d}") for n in range(30)]
    sealing.install(new_key)
    monkeypatch.setattr(rotation, "BATCH", 4)  # many batches, interleaved with the writers
    written: list[str] = []
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set() or n < 5:
            written.append(h.pushed(f"2547140{n:05d}").id)
            n += 1

    def keep_paying() -> None:
        for p in before:
            body = stk_callback(p.checkout_request_id or "", 0, receipt=f"RT{p.id[:8].upper()}")
            received = callbacks.receive(
                h.container, body, source_ip="127.0.0.1", token=p.callback_token, headers={}
            )
            callbacks.process(h.container, received.inbox_id)

    threads = [threading.Thread(target=keep_writing), threading.Thread(target=keep_paying)]
    for thread in threads:
        thread.start()
    rotation.rotate(h.container.engine)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    rotation.rotate(h.container.engine)  # what was written under the old key meanwhile
    assert rotation.rotate(h.container.engine) == 0
    for n, p in enumerate(before):
        now = h.get(p.id)
        assert (now.status, now.phone_number) == ("completed", f"2547130{n:05d}")
        assert now.checkout_request_id == p.checkout_request_id
        assert now.mpesa_receipt_number == f"RT{p.id[:8].upper()}"
    for n, payment_id in enumerate(written):
        assert h.get(payment_id).phone_number == f"2547140{n:05d}"
    stored = _raw_values(h)
    assert all(new_key.current_id in v for v in stored)
    with h.container.engine.connect() as conn:
        rows = exchanges.for_payment(conn, before[0].id)
        assert rows[0]["request"] == {"PartyA": "254713000000"}
        kept = conn.execute(sa.select(sa.func.count()).select_from(daraja_exchanges)).scalar()
        assert kept == len(before) + len(written)
        first = inbox.get(conn, 1)
        assert first is not None
        assert "RT" in first.body


def test_the_command_reports_progress_on_stderr_and_leaves_nothing_to_do(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = _legacy_payment(h, "254712000003")
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)
    monkeypatch.setenv("REDIS_URL", "")

    assert cli.main(["keys", "rotate-data"]) == 0

    out = capsys.readouterr()
    assert out.out == ""
    assert "payments" in out.err
    assert f"under key {OLD.current_id}" in out.err
    assert rotation.rotate(h.container.engine) == 0
    with h.container.engine.connect() as conn:
        assert payments.in_flight_for(conn, "254712000003") == legacy

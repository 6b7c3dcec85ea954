"""Who may move a payment with a callback (CONTRACT.md §4, Trust), on PostgreSQL.

Only the payment's own token URL, from an allowed source, signed when required, moves it.
Anything else naming a known payment is stored and queues an STK query: Daraja decides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json

import pytest
import sqlalchemy as sa

from daraja.wire import QueryResult
from payments import callbacks, reconciliation
from payments.jobs import QUERY_PAYMENT
from store import inbox, raw, refusals
from store.raw import REFUSED_BODY_BYTES
from store.tables import refused_requests
from tests.factories import stk_callback
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

SAFARICOM = "196.201.214.200"


def _receive(
    h: Harness, body: bytes, token: str | None, *, ip: str = SAFARICOM, **headers: str
) -> callbacks.Received:
    received = callbacks.receive(h.container, body, source_ip=ip, token=token, headers=headers)
    if received.state == inbox.RECEIVED:
        callbacks.process(h.container, received.inbox_id)
    return received


def _row(h: Harness, inbox_id: int) -> inbox.InboxRow:
    with h.container.engine.connect() as conn:
        row = inbox.get(conn, inbox_id)
    assert row is not None
    return row


def _queried(h: Harness) -> list[list[object]]:
    return [job.args for job in h.published if job.actor == QUERY_PAYMENT.actor]


def _allow_only_safaricom(h: Harness) -> None:
    nets = (ipaddress.ip_network("196.201.214.0/24"),)
    h.container.settings = dataclasses.replace(
        h.container.settings, mpesa_callback_allowed_ips=nets
    )


def _sign(h: Harness, body: bytes) -> str:
    secret = h.container.settings.webhook_secret.encode()
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_forged_success_on_the_bare_url_is_kept_and_only_asks_daraja(h: Harness) -> None:
    p = h.pushed()

    received = _receive(h, stk_callback(p.checkout_request_id or "", receipt="FORGED0001"), None)

    assert (received.status_code, received.state) == (200, inbox.UNTRUSTED)
    assert h.get(p.id).status == "pushed"
    assert _queried(h) == [[p.id]]
    # Daraja says the customer is still at the prompt: nothing changes.
    h.daraja.query_answers.append(QueryResult(1037, "DS timeout user cannot be reached"))
    reconciliation.query_payment(h.container, p.id)
    assert h.get(p.id).mpesa_receipt_number is None


def test_forged_failure_on_the_bare_url_leaves_the_payment_to_daraja(h: Harness) -> None:
    p = h.pushed()
    _receive(h, stk_callback(p.checkout_request_id or "", 1032), None)
    assert h.get(p.id).status == "pushed"

    h.daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))
    reconciliation.query_payment(h.container, p.id)

    assert h.get(p.id).status == "completed"


def test_another_payments_token_is_refused_403_and_the_named_payment_is_queried(
    h: Harness,
) -> None:
    victim, other = h.pushed("254712345678"), h.pushed("254712345679")

    received = _receive(h, stk_callback(victim.checkout_request_id or ""), other.callback_token)

    assert (received.status_code, received.state) == (403, inbox.REJECTED)
    assert (h.get(victim.id).status, h.get(other.id).status) == ("pushed", "pushed")
    assert _queried(h) == [[victim.id]]


def test_unknown_token_is_refused_403(h: Harness) -> None:
    p = h.pushed()

    received = _receive(h, stk_callback(p.checkout_request_id or ""), "made-up-token")

    assert received.status_code == 403
    assert "unknown callback token" in (received.reason or "")
    assert h.get(p.id).status == "pushed"


def test_own_token_from_an_unlisted_address_is_refused_403_and_queried(h: Harness) -> None:
    _allow_only_safaricom(h)
    p = h.pushed()

    received = _receive(
        h, stk_callback(p.checkout_request_id or ""), p.callback_token, ip="8.8.8.8"
    )

    assert (received.status_code, received.state) == (403, inbox.REJECTED)
    assert h.get(p.id).status == "pushed"
    assert _queried(h) == [[p.id]]


def test_own_token_from_an_allowed_address_completes_the_payment(h: Harness) -> None:
    _allow_only_safaricom(h)
    p = h.pushed()

    _receive(h, stk_callback(p.checkout_request_id or ""), p.callback_token)

    assert h.get(p.id).status == "completed"


@pytest.mark.parametrize("signature", [None, "", "00" * 32, "not hex at all ✓"])
def test_required_signature_missing_or_wrong_is_refused_403(
    h: Harness, signature: str | None
) -> None:
    h.container.settings = dataclasses.replace(
        h.container.settings, mpesa_callback_signature="required"
    )
    p = h.pushed()
    headers = {} if signature is None else {"X-Mpesa-Signature": signature}

    received = _receive(h, stk_callback(p.checkout_request_id or ""), p.callback_token, **headers)

    assert (received.status_code, received.reason) == (403, "missing or bad X-Mpesa-Signature")
    assert h.get(p.id).status == "pushed"


def test_required_signature_valid_completes_the_payment(h: Harness) -> None:
    h.container.settings = dataclasses.replace(
        h.container.settings, mpesa_callback_signature="required"
    )
    p = h.pushed()
    body = stk_callback(p.checkout_request_id or "")

    _receive(h, body, p.callback_token, **{"X-Mpesa-Signature": _sign(h, body).upper()})

    assert h.get(p.id).status == "completed"


def test_forged_short_amount_cannot_keep_a_really_paid_payment_failed(h: Harness) -> None:
    # Even on the trusted URL (a leaked token): the real callback with the amount completes it.
    p = h.pushed(amount=1500)
    _receive(h, stk_callback(p.checkout_request_id or "", amount=1, receipt="FORGED0001"),
             p.callback_token)  # fmt: skip
    assert h.get(p.id).failure_reason == "amount_mismatch"

    _receive(h, stk_callback(p.checkout_request_id or "", amount=1500), p.callback_token)

    done = h.get(p.id)
    assert (done.status, done.late_success, done.mpesa_receipt_number) == (
        "completed", True, "UJ22T8IYOU",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"ResultCode": 0', b'"ResultCode": 100000000000000000000'),
        (b"1500.00", b"0.00"),
        (b"1500.00", b"250001.00"),
        (b"1500.00", b"1499.50"),
        (b'"UJ22T8IYOU"', b'"' + b"R" * 40 + b'"'),
    ],
)
def test_numbers_out_of_range_are_refused_400_at_the_door_and_queried(
    h: Harness, old: bytes, new: bytes
) -> None:
    p = h.pushed()
    body = stk_callback(p.checkout_request_id or "").replace(old, new)
    assert body != stk_callback(p.checkout_request_id or "")

    received = _receive(h, body, p.callback_token)

    assert (received.status_code, received.state) == (400, inbox.REJECTED)
    assert h.get(p.id).status == "pushed"
    assert _queried(h) == [[p.id]]  # it names a known payment: Daraja is asked


def test_refused_callback_bodies_keep_their_first_4_kib_with_nul_escaped(h: Harness) -> None:
    body = b"\x00\xff" + b"x" * 10_000

    received = _receive(h, body, None)

    stored = _row(h, received.inbox_id).body
    assert stored.startswith("\\x00\\xff")
    assert len(stored) == REFUSED_BODY_BYTES - 2 + len("\\x00\\xff")


def test_refused_initiate_bodies_keep_their_first_4_kib_with_nul_escaped(h: Harness) -> None:
    with h.container.engine.begin() as conn:
        refusals.add(
            conn, path="/api/payments/initiate\x00", status_code=400, code="malformed_json",
            field=None, reason="r" * 900, idempotency_key="k\x00" * 300, body=b"\x00" * 9000,
        )  # fmt: skip
    with h.container.engine.connect() as conn:
        row = conn.execute(sa.select(refused_requests)).one()

    assert raw.open_personal(row.body) == "\\x00" * REFUSED_BODY_BYTES
    assert "\x00" not in row.path + row.idempotency_key
    assert (len(row.reason), len(row.idempotency_key)) == (500, 255)


def test_a_flood_of_forgeries_naming_one_payment_asks_daraja_once(h: Harness) -> None:
    p = h.pushed()

    for n in range(20):
        _receive(h, stk_callback(p.checkout_request_id or "", receipt=f"FORGED{n:04d}"), None)

    assert _queried(h) == [[p.id]]
    assert h.get(p.id).status == "pushed"


def test_a_parser_that_crashes_still_leaves_the_callback_stored_as_rejected(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = h.pushed("254712000777")

    def crash(body: bytes) -> None:
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(callbacks, "parse_stk_callback", crash)
    body = stk_callback(payment.checkout_request_id or "", 0, receipt="RCRASH0001")
    received = _receive(h, body, payment.callback_token)

    row = _row(h, received.inbox_id)
    assert (received.status_code, row.state) == (400, inbox.REJECTED)
    assert json.loads(row.body) == json.loads(body)  # kept whole, its values sealed at rest
    assert h.get(payment.id).status == "pushed"

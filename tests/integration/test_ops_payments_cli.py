"""`khalex-pay payments show|requery`: one payment in full, phone numbers and e-mail masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from daraja.client import ExchangeRecorder
from daraja.wire import QueryResult
from khalex_pay import cli
from payments import callbacks, reconciliation
from payments.container import Container
from store.db import utcnow
from store.exchanges import StoreRecorder
from tests.factories import stk_callback
from tests.integration.conftest import Harness, ScriptedDaraja

pytestmark = pytest.mark.integration

PHONE = "254712345678"


@pytest.fixture(autouse=True)
def env(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)
    monkeypatch.setenv("REDIS_URL", "")


def _phone_forms_in(text: str) -> list[str]:
    return [form for form in (PHONE, "0712345678", "712345678", "0712 345 678") if form in text]


def test_payments_show_prints_history_with_no_raw_phone_number(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    p = h.pushed(PHONE)
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", phone=int(PHONE)),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)
    recorder = StoreRecorder(h.container.engine, p.id)  # an answer that echoes the number
    handle = recorder.request_sent("stk_query", "http://daraja/query", {"PartyA": PHONE})
    recorder.answer_received(handle, 400, f'{{"errorMessage": "Invalid PartyA {PHONE}"}}', None, 9)

    code = cli.main(["payments", "show", p.id])

    out = capsys.readouterr().out
    assert code == 0
    assert _phone_forms_in(out) == []
    assert "wanjiru@example.com" not in out
    for expected in (
        "2547****5678", "w***@example.com", f"payment {p.id}  completed  KES 1500",
        "events (4)", "push_accepted", "callbacks (1)", "processed", "daraja exchanges (2)",
        "HTTP 400 in 9 ms",
    ):  # fmt: skip
        assert expected in out


def test_payments_show_finds_a_payment_by_its_checkout_request_id(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    p = h.pushed(PHONE)

    assert cli.main(["payments", "show", p.checkout_request_id or ""]) == 0
    assert f"payment {p.id}  pushed" in capsys.readouterr().out


def test_payments_show_of_an_unknown_payment_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["payments", "show", "ws_CO_NOPE"]) == 1
    assert "no payment 'ws_CO_NOPE'" in capsys.readouterr().err


@dataclass
class RecordingDaraja(ScriptedDaraja):
    """The scripted Daraja, recording its queries as the real client does."""

    def stk_query(
        self, checkout_request_id: str, *, recorder: ExchangeRecorder | None = None
    ) -> QueryResult:
        answer = super().stk_query(checkout_request_id)
        if recorder:
            handle = recorder.request_sent("stk_query", "http://daraja/query", {})
            recorder.answer_received(handle, 200, '{"ResultCode": "1"}', None, 42)
        return answer


@pytest.fixture
def daraja(h: Harness, monkeypatch: pytest.MonkeyPatch) -> RecordingDaraja:
    daraja = RecordingDaraja()
    container = Container(h.container.settings, h.container.engine, h.published.append,
                          daraja=daraja)  # fmt: skip
    monkeypatch.setattr(Container, "build", classmethod(lambda cls, settings, publish: container))
    return daraja


def test_payments_requery_applies_the_query_answer_and_prints_it(
    h: Harness, daraja: RecordingDaraja, capsys: pytest.CaptureFixture[str]
) -> None:
    p = h.pushed(PHONE)
    daraja.query_answers.append(QueryResult(1, "The balance is insufficient"))

    code = cli.main(["payments", "requery", p.id])

    out = capsys.readouterr().out
    assert code == 0
    assert f"payment {p.id}: pushed -> failed (insufficient_funds)" in out
    assert "query: HTTP 200 in 42 ms" in out
    assert daraja.queries == [p.checkout_request_id]


def test_payments_requery_of_a_final_payment_asks_nothing(
    h: Harness, daraja: RecordingDaraja, capsys: pytest.CaptureFixture[str]
) -> None:
    p = h.pushed(PHONE)
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or ""), source_ip="127.0.0.1",
        token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)

    code = cli.main(["payments", "requery", p.id])

    assert code == 0
    assert "is completed: not queried" in capsys.readouterr().out
    assert daraja.queries == []


def test_payments_requery_of_an_expired_payment_can_find_the_money(
    h: Harness, daraja: RecordingDaraja, capsys: pytest.CaptureFixture[str]
) -> None:
    p = h.pushed(PHONE)
    expiry = h.container.settings.payment_expiry_s
    reconciliation.tick(h.container, utcnow() + timedelta(seconds=expiry + 1))
    daraja.query_answers.append(QueryResult(0, "The service request is processed successfully."))

    code = cli.main(["payments", "requery", p.id])

    assert code == 0
    assert f"payment {p.id}: failed -> completed" in capsys.readouterr().out

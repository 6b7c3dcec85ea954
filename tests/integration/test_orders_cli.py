"""`khalex-pay orders show|list`: orders for operators, customer fields masked."""

from __future__ import annotations

import pytest

from domain.order import Status
from khalex_pay import cli
from payments import orders
from tests.integration.conftest import Harness
from tests.integration.test_orders import _paid_callback, _pay_pushed, new_order

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def env(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", h.container.settings.database_url)
    monkeypatch.setenv("REDIS_URL", "")


def _refund_due_order(h: Harness) -> tuple[str, str]:
    order_id = orders.create(h.container, new_order()).order.id
    payment_id = _pay_pushed(h, order_id)
    orders.move(h.container, order_id, Status.CANCELLED)
    _paid_callback(h, payment_id)
    return order_id, payment_id


def test_orders_show_prints_the_order_its_payments_and_events_with_no_raw_phone_or_email(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id, payment_id = _refund_due_order(h)

    code = cli.main(["orders", "show", order_id])

    out = capsys.readouterr().out
    assert code == 0
    assert f"order {order_id}  cancelled  KES 3200  REFUND DUE" in out
    assert payment_id in out
    assert "refund_due" in out
    assert "2547****5678" in out
    assert "254712345678" not in out
    assert "wanjiru@example.com" not in out


def test_orders_show_of_an_unknown_order_fails(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["orders", "show", "0712345678"]) == 1
    assert "0712345678" not in capsys.readouterr().err


def test_orders_list_refund_due_shows_only_orders_that_owe_money_back(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    owing, _ = _refund_due_order(h)
    paid = orders.create(h.container, new_order(notes="paid")).order.id
    _paid_callback(h, _pay_pushed(h, paid, "254712345670"), receipt="RC2")

    assert cli.main(["orders", "list", "--refund-due"]) == 0
    refund_lines = capsys.readouterr().out.splitlines()
    assert cli.main(["orders", "list", "--status", "confirmed"]) == 0
    confirmed_lines = capsys.readouterr().out.splitlines()

    assert [line.split()[0] for line in refund_lines] == [owing]
    assert [line.split()[0] for line in confirmed_lines] == [paid]

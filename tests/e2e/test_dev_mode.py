"""`khalex-pay dev`: one process, no services, a payment completes through the simulator."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests import services

pytestmark = pytest.mark.e2e


def test_dev_mode_serves_a_payment_that_completes_and_one_that_is_cancelled(tmp_path: Path) -> None:
    port = services.free_port()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # must be ignored: dev needs no Redis
        "SIM_CALLBACK_DELAY": "0.3",
    }
    proc = services.khalex_pay("dev", "--port", str(port), env=env, log=tmp_path / "dev.log")
    base = f"http://127.0.0.1:{port}"
    try:
        services.wait_for_http(f"{base}/health/live", proc=proc)
        paid = _initiate(base, "0712345678")
        cancelled = _initiate(base, "0700000002")

        assert _wait_final(base, paid)["status"] == "completed"
        assert _wait_final(base, cancelled)["failureReason"] == "cancelled_by_user"
        ledger = httpx.get(f"{base}/simulator/ledger").json()["pushes"]
        assert len(ledger) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # uvicorn shuts down cleanly on SIGTERM, then re-raises the signal it caught.
    log = (tmp_path / "dev.log").read_text()
    assert proc.returncode in (0, -15), log[-3000:]
    assert "Application shutdown complete" in log


def _initiate(base: str, phone: str) -> str:
    answer = httpx.post(
        f"{base}/api/payments/initiate",
        json={
            "amount": 100, "phoneNumber": phone, "productId": "clock-02",
            "productName": "Chess clock", "customerName": "Otieno",
            "customerEmail": "otieno@example.com",
        },
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    payment_id: str = answer.json()["paymentId"]
    return payment_id


def _wait_final(base: str, payment_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        payment: dict[str, object] = httpx.get(f"{base}/api/payments/status/{payment_id}").json()
        if payment["status"] != "pending":
            return payment
        time.sleep(0.2)
    raise AssertionError(f"payment {payment_id} still pending")

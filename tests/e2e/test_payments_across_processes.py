"""End to end: the real API, worker, scheduler and simulator processes, over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import services

pytestmark = pytest.mark.e2e


@dataclass
class System:
    api: str
    simulator: str
    logs: Path

    def initiate(self, phone: str, amount: int = 1500, **extra: Any) -> httpx.Response:
        body = {
            "amount": amount, "phoneNumber": phone, "productId": "board-01",
            "productName": "Tournament chess board", "customerName": "Wanjiru",
            "customerEmail": "wanjiru@example.com", **extra,
        }  # fmt: skip
        return httpx.post(f"{self.api}/api/payments/initiate", json=body, timeout=10)

    def wait_final(self, payment_id: str, timeout_s: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            payment: dict[str, Any] = httpx.get(
                f"{self.api}/api/payments/status/{payment_id}", timeout=5
            ).json()
            if payment["status"] != "pending":
                return payment
            time.sleep(0.3)
        raise AssertionError(f"payment {payment_id} still pending; logs in {self.logs}")

    def ledger(self) -> list[dict[str, Any]]:
        pushes: list[dict[str, Any]] = httpx.get(f"{self.simulator}/simulator/ledger").json()[
            "pushes"
        ]
        return pushes


@pytest.fixture(scope="module")
def system(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    api_port, sim_port = services.free_port(), services.free_port()
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MPESA_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MPESA_CALLBACK_URL": f"http://127.0.0.1:{api_port}/api/payments/webhook",
        "MPESA_TIMEOUT_S": "3",
        "SIM_CALLBACK_DELAY": "0.5",
        "RECONCILE_AFTER_S": "2",
        "PAYMENT_EXPIRY_S": "60",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sim = services.khalex_pay(
            "simulator", "--port", str(sim_port), env=env, log=logs / "sim.log"
        )
        procs.append(sim)
        api = services.khalex_pay("api", "--port", str(api_port), env=env, log=logs / "api.log")
        procs.append(api)
        procs.append(
            services.khalex_pay("worker", "--processes", "1", env=env, log=logs / "worker.log")
        )
        procs.append(services.khalex_pay("scheduler", env=env, log=logs / "scheduler.log"))
        services.wait_for_http(f"http://127.0.0.1:{sim_port}/simulator/ledger", proc=sim)
        services.wait_for_http(f"http://127.0.0.1:{api_port}/health/live", proc=api)
        yield System(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}", logs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_api_is_ready_when_database_and_redis_answer(system: System) -> None:
    answer = httpx.get(f"{system.api}/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == []


def test_paid_push_completes_with_the_receipt_the_customer_got(system: System) -> None:
    answer = system.initiate("0712 345 678", amount=1500)
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["status"] == "pending"
    assert started["phoneNumber"] == "2547****5678"
    assert answer.headers["location"] == f"/api/payments/status/{started['paymentId']}"

    done = system.wait_final(started["paymentId"])

    assert done["status"] == "completed"
    assert done["resultCode"] == 0
    push = next(p for p in system.ledger() if p["checkoutRequestId"] == done["checkoutRequestId"])
    assert push["amount"] == 1500
    assert done["mpesaReceiptNumber"] == push["receipt"]
    by_checkout = httpx.get(f"{system.api}/api/payments/status/{done['checkoutRequestId']}")
    assert by_checkout.json()["paymentId"] == started["paymentId"]


def test_customer_cancelling_the_prompt_cancels_the_payment(system: System) -> None:
    started = system.initiate("254700000002").json()

    done = system.wait_final(started["paymentId"])

    assert done["status"] == "cancelled"
    assert done["failureReason"] == "cancelled_by_user"
    assert done["resultCode"] == 1032
    assert done["mpesaReceiptNumber"] is None


def test_insufficient_funds_fails_the_payment_with_its_reason(system: System) -> None:
    started = system.initiate("254700000001", amount=250).json()

    done = system.wait_final(started["paymentId"])

    assert done["status"] == "failed"
    assert done["failureReason"] == "insufficient_funds"
    assert done["resultCode"] == 1


def test_payment_whose_callback_never_comes_is_completed_by_the_query(system: System) -> None:
    started = system.initiate("254700000005", amount=700).json()

    done = system.wait_final(started["paymentId"])

    assert done["status"] == "completed"
    assert done["mpesaReceiptNumber"] is None  # a query carries no receipt
    push = next(p for p in system.ledger() if p["checkoutRequestId"] == done["checkoutRequestId"])
    assert push["callbacksSent"] == 0

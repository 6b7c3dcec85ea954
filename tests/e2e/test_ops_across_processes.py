"""The operators' view across real processes: what the API reports is what the workers did.

Payments are made through the API, pushed by a worker, settled by the simulator's callbacks
(and one by `khalex-pay payments requery`); then `/metrics` and `/api/ops/summary`, served by
the API process, must count exactly those payments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from payments.jobs import QUEUES
from tests import services
from tests.processes import Shop, new_shop_key

pytestmark = pytest.mark.e2e

#: A JWT_SECRET as long as production requires, shared by every process and the CLI.
SECRET = "e2e-ops-secret-0123456789abcdef-0123456789"


class System(Shop):
    """The shop, plus the operators' command line run against the same settings."""

    def __init__(self, api: str, env: dict[str, str], key: str) -> None:
        super().__init__(api, token=key)
        self.env = env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "khalex_pay.cli", *args], env={**os.environ, **self.env},
            cwd=services.ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def system(
    redis_url: str, launch_system: Callable[..., AbstractContextManager[Any]]
) -> Iterator[System]:
    """API, worker, scheduler and simulator on a database of this module's own."""
    services.require_postgres()
    with services.fresh_database() as database_url, launch_system(
        "e2e-ops-logs", database_url, redis_url,
        JWT_SECRET=SECRET, MPESA_TIMEOUT_S="3", SIM_CALLBACK_DELAY="0.5",
        # Late enough that the scheduler leaves the silent payment to `payments requery`.
        RECONCILE_AFTER_S="60", PAYMENT_EXPIRY_S="180",
    ) as running:  # fmt: skip
        yield System(running.api, running.env, new_shop_key(database_url))


@pytest.fixture(scope="module")
def made(system: System) -> dict[str, str]:
    """Four payments, one per fate; the silent one is settled by `payments requery`."""
    ids = {
        "paid": system.pay("0712345678"),
        "cancelled": system.pay("254700000002"),
        "no_funds": system.pay("254700000001", amount=250),
        "silent": system.pay("254700000005", amount=700),
    }
    for name in ("paid", "cancelled", "no_funds"):
        assert system.wait_final(ids[name])["status"] != "pending"
    pushed = system.wait_until(ids["silent"], lambda p: p["checkoutRequestId"] is not None)
    assert pushed["checkoutRequestId"] is not None
    return ids


@pytest.fixture(scope="module")
def token(system: System) -> str:
    issued = system.cli("ops-token", "--hours", "1")
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def _metrics(system: System) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{system.api}/metrics", timeout=10)
    assert answer.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(answer.text)
        for s in f.samples
    }


def test_requery_settles_the_payment_whose_callback_never_came(
    system: System, made: dict[str, str]
) -> None:
    result = system.cli("payments", "requery", made["silent"])

    assert result.returncode == 0, result.stderr
    assert f"payment {made['silent']}: pushed -> completed" in result.stdout
    assert "query: HTTP 200" in result.stdout
    assert system.status(made["silent"])["status"] == "completed"


def test_metrics_from_the_api_count_what_the_workers_did(
    system: System, made: dict[str, str]
) -> None:
    assert system.wait_final(made["silent"])["status"] == "completed"

    samples = _metrics(system)

    by_status = {dict(k)["status"]: v for (n, k), v in samples.items() if n == "khalex_payments"}
    assert by_status == {
        "created": 0, "sending": 0, "pushed": 0, "unknown": 0,
        "completed": 2, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    reasons = {
        dict(k)["reason"]: v for (n, k), v in samples.items() if n == "khalex_payment_failures"
    }
    assert reasons == {"cancelled_by_user": 1, "insufficient_funds": 1}
    assert (
        samples[("khalex_daraja_calls_total", (("operation", "stk_push"), ("outcome", "ok")))] == 4
    )
    processed = sum(
        v for (n, _), v in samples.items() if n == "khalex_payment_processing_seconds_count"
    )
    assert processed == 4
    assert samples[("khalex_late_successes_total", ())] == 0
    assert samples[("khalex_broker_up", ())] == 1
    assert {dict(k)["queue"] for (n, k) in samples if n == "khalex_queue_depth"} == set(QUEUES)


def test_summary_counts_exactly_the_payments_made(
    system: System, made: dict[str, str], token: str
) -> None:
    assert system.wait_final(made["silent"])["status"] == "completed"

    answer = httpx.get(
        f"{system.api}/api/ops/summary", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )

    assert answer.status_code == 200, answer.text
    for window in ("lastHour", "lastDay"):
        summary = answer.json()[window]
        counts = {
            k: summary[k] for k in ("initiated", "completed", "failed", "cancelled", "pending")
        }
        assert counts == {"initiated": 4, "completed": 2, "failed": 1, "cancelled": 1, "pending": 0}
        assert (summary["successRate"], summary["abandonment"]) == (0.5, 0.25)
        assert summary["failureReasons"] == {"cancelled_by_user": 1, "insufficient_funds": 1}
        assert summary["processingSeconds"]["count"] == 4


def test_ops_endpoints_refuse_a_request_without_the_token(system: System) -> None:
    assert httpx.get(f"{system.api}/api/ops/queues", timeout=5).status_code == 401


def test_queues_endpoint_reads_the_redis_the_workers_use(system: System, token: str) -> None:
    answer = httpx.get(
        f"{system.api}/api/ops/queues", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )

    assert answer.status_code == 200
    assert [q["name"] for q in answer.json()["queues"]] == list(QUEUES)


def test_dev_mode_reports_its_in_process_queues(tmp_path: Path) -> None:
    port = services.free_port()
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "JWT_SECRET": SECRET}
    proc = services.khalex_pay("dev", "--port", str(port), env=env, log=tmp_path / "dev.log")
    base = f"http://127.0.0.1:{port}"
    try:
        services.wait_for_http(f"{base}/health/live", proc=proc)
        token = subprocess.run(
            [sys.executable, "-m", "khalex_pay.cli", "ops-token"], env={**os.environ, **env},
            cwd=services.ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

        queues = httpx.get(f"{base}/api/ops/queues", headers={"Authorization": f"Bearer {token}"})
        metrics = httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    assert [q["name"] for q in queues.json()["queues"]] == list(QUEUES)
    assert "khalex_broker_up 1.0" in metrics
    assert 'khalex_queue_depth{queue="payments"}' in metrics

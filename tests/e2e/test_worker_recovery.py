"""A killed worker is replaced, and the jobs it held come back within a minute.

Dramatiq's Redis broker gives a dead worker's unacknowledged messages back only after its
heartbeat times out *and* a random maintenance pass runs: 13 minutes when measured with the
defaults. Khalex Pay tunes both; this test holds it to the one-minute promise. The scheduler
is deliberately not running, so nothing but the broker can bring the jobs back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests import services

pytestmark = pytest.mark.e2e

#: Our promise: work held by a killed worker runs again within this many seconds.
RECOVERY_S = 60


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def processes(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    redis_url = services.REDIS_URL.rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(redis_url).flushdb()
    api_port, sim_port = services.free_port(), services.free_port()
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MPESA_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MPESA_CALLBACK_URL": f"http://127.0.0.1:{api_port}/api/payments/webhook",
        "MPESA_TIMEOUT_S": "50",
        "SIM_CALLBACK_DELAY": "0.3",
        "SIM_CHAOS": '{"hangS": 45}',
    }
    procs = [
        services.khalex_pay(
            "simulator", "--port", str(sim_port), env=env, log=tmp_path / "sim.log"
        ),
        services.khalex_pay("api", "--port", str(api_port), env=env, log=tmp_path / "api.log"),
    ]
    worker = services.khalex_pay(
        "worker", "--processes", "1", "--threads", "1", env=env, log=tmp_path / "worker.log"
    )
    procs.append(worker)
    try:
        services.wait_for_http(f"http://127.0.0.1:{sim_port}/simulator/ledger", proc=procs[0])
        services.wait_for_http(f"http://127.0.0.1:{api_port}/health/live", proc=procs[1])
        yield f"http://127.0.0.1:{api_port}", worker
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _initiate(api: str, phone: str) -> str:
    answer = httpx.post(
        f"{api}/api/payments/initiate",
        json={
            "amount": 300, "phoneNumber": phone, "productId": "book-07",
            "productName": "Endgame manual", "customerName": "Kamau",
            "customerEmail": "kamau@example.com",
        },
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    payment_id: str = answer.json()["paymentId"]
    return payment_id


def _wait(api: str, payment_id: str, until: str, timeout_s: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    payment: dict[str, object] = {}
    while time.monotonic() < deadline:
        payment = httpx.get(f"{api}/api/payments/status/{payment_id}").json()
        if payment["status"] == until:
            return payment
        time.sleep(0.3)
    return payment


def test_jobs_held_by_a_killed_worker_run_again_within_a_minute(
    processes: tuple[str, subprocess.Popen[bytes]],
) -> None:
    api, supervisor = processes
    deadline = time.monotonic() + 20
    while not _children(supervisor.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    [child] = _children(supervisor.pid)
    # The worker's only thread hangs on this push (the simulator holds it for 45 s)...
    _initiate(api, "254700000008")
    time.sleep(2)
    # ...so these two jobs sit in its prefetch buffer, fetched but never acknowledged.
    held = [_initiate(api, "254711110001"), _initiate(api, "254711110002")]
    time.sleep(2)

    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()

    replaced = False
    while time.monotonic() - killed_at < 10 and not replaced:
        replaced = any(pid != child for pid in _children(supervisor.pid))
        time.sleep(0.2)
    assert replaced, "the supervisor did not start a new worker process"
    for payment_id in held:
        remaining = RECOVERY_S - (time.monotonic() - killed_at)
        final = _wait(api, payment_id, "completed", max(remaining, 0))
        assert final["status"] == "completed", f"held job not run again within {RECOVERY_S} s"
    assert supervisor.poll() is None
    print(f"held jobs ran again {time.monotonic() - killed_at:.1f} s after the kill")

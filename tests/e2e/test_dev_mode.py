"""`khalex-pay dev`: one process, no services, a payment completes through the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import services
from tests.processes import Processes, Shop, dev_key

pytestmark = pytest.mark.e2e


def test_dev_mode_serves_a_payment_that_completes_and_one_that_is_cancelled(tmp_path: Path) -> None:
    port = services.free_port()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # must be ignored: dev needs no Redis
        "SIM_CALLBACK_DELAY": "0.3",
    }
    with Processes(env, tmp_path) as procs:
        proc = procs.start("dev", "dev", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        services.wait_for_http(f"{base}/health/live", proc=proc)
        # Auth is on in dev too: the start banner shows this run's shop key.
        shop = Shop(base, token=dev_key(tmp_path / "dev.log"))
        assert Shop(base).initiate("0712345678", 100).status_code == 401
        paid, cancelled = shop.pay("0712345678", 100), shop.pay("0700000002", 100)

        assert shop.wait_final(paid, 20)["status"] == "completed"
        assert shop.wait_final(cancelled, 20)["failureReason"] == "cancelled_by_user"
        assert len(shop.ledger()) == 2

    # uvicorn shuts down cleanly on SIGTERM, then re-raises the signal it caught.
    log = (tmp_path / "dev.log").read_text()
    assert proc.returncode in (0, -15), log[-3000:]
    assert "Application shutdown complete" in log


def test_dev_mode_makes_its_own_data_keys_and_a_restart_still_reads_its_data(
    tmp_path: Path,
) -> None:
    port, database = services.free_port(), tmp_path / "dev.db"
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "SIM_CALLBACK_DELAY": "0.3",
        "DATA_ENCRYPTION_KEYS": "",  # none set: dev makes its own
        "BLIND_INDEX_KEY": "",
    }
    base = f"http://127.0.0.1:{port}"
    with Processes(env, tmp_path) as procs:
        proc = procs.start("dev", "dev", "--port", str(port))
        services.wait_for_http(f"{base}/health/live", proc=proc)
        paid = Shop(base, token=dev_key(tmp_path / "dev.log")).pay("0712345678", 100)
        assert Shop(base, token=dev_key(tmp_path / "dev.log")).wait_final(paid, 20)["status"] == (
            "completed"
        )
    keys = Path(f"{database}.keys")
    assert "new dev keys, kept in" in (tmp_path / "dev.log").read_text()
    assert keys.stat().st_mode & 0o777 == 0o600

    with Processes(env, tmp_path) as procs:
        proc = procs.start("dev-again", "dev", "--port", str(port))
        services.wait_for_http(f"{base}/health/live", proc=proc)
        again = Shop(base, token=dev_key(tmp_path / "dev-again.log")).status(paid)

    assert (again["status"], again["phoneNumber"]) == ("completed", "2547****5678")
    assert f"dev's own keys, kept in {keys}" in (tmp_path / "dev-again.log").read_text()

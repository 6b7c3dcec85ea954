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

import pytest
import redis

from payments.jobs import SEND_PUSH
from tests import services
from tests.processes import Shop, children_of, new_shop_key, start_system

pytestmark = pytest.mark.e2e

#: Our promise: work held by a killed worker runs again within this many seconds.
RECOVERY_S = 60


@pytest.fixture
def processes(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Shop, subprocess.Popen[bytes]]]:
    redis_url = _redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    with start_system(
        tmp_path, postgres_url, redis_url, worker_threads=1, schedulers=0,
        MPESA_TIMEOUT_S="50", SIM_CALLBACK_DELAY="0.3", SIM_CHAOS='{"hangS": 45}',
    ) as system:  # fmt: skip
        yield system.shop(new_shop_key(postgres_url)), system.worker


def test_jobs_held_by_a_killed_worker_run_again_within_a_minute(
    processes: tuple[Shop, subprocess.Popen[bytes]],
) -> None:
    shop, supervisor = processes
    deadline = time.monotonic() + 20
    while not children_of(supervisor.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    [child] = children_of(supervisor.pid)
    # The worker's only thread hangs on this push (the simulator holds it for 45 s)...
    hung = shop.pay("254700000008")
    services.wait_until(
        lambda: shop.status(hung).get("status") == "pending" and len(shop.ledger()) == 1,
        20, what="the hanging push reached the simulator",
    )  # fmt: skip
    # ...so of these two jobs one sits in its prefetch buffer (two messages for one thread,
    # the hung one included), fetched but never acknowledged, the other in Redis.
    held = [shop.pay("254711110001"), shop.pay("254711110002")]
    services.wait_until(
        lambda: _published_and_fetched(3, 2), 20, what="both jobs published, one of them fetched"
    )

    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()

    replaced = False
    while time.monotonic() - killed_at < 10 and not replaced:
        replaced = any(pid != child for pid in children_of(supervisor.pid))
        time.sleep(0.2)
    assert replaced, "the supervisor did not start a new worker process"
    for payment_id in held:
        remaining = RECOVERY_S - (time.monotonic() - killed_at)
        final = shop.wait_final(payment_id, max(remaining, 0))
        assert final["status"] == "completed", f"held job not run again within {RECOVERY_S} s"
    assert supervisor.poll() is None
    print(f"held jobs ran again {time.monotonic() - killed_at:.1f} s after the kill")


def _redis_url() -> str:
    return services.REDIS_URL.rsplit("/", 1)[0] + "/11"


def _published_and_fetched(published: int, fetched: int) -> bool:
    """`published` push jobs in Redis, `fetched` of them held (unacked) by the worker."""
    client = redis.Redis.from_url(_redis_url())
    queue = f"dramatiq:{SEND_PUSH.queue}"
    held = sum(client.scard(k) for k in client.keys(f"dramatiq:__acks__.*.{SEND_PUSH.queue}"))
    return client.hlen(f"{queue}.msgs") == published and held == fetched

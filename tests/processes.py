"""The real processes end-to-end tests start, and the shop's side of the HTTP API."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests import services

#: What the shop's frontend sends besides the amount and the phone number.
ORDER = {
    "productId": "board-01",
    "productName": "Tournament chess board",
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
}


class Processes:
    """Starts `khalex-pay` commands as processes; stops every one of them on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        proc = services.khalex_pay(*args, env=self.env, log=self.logs / f"{name}.log")
        self.started.append(proc)
        return proc

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def children_of(pid: int) -> list[int]:
    """The ids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Shop:
    """The shop's frontend: initiates payments and polls their status over HTTP."""

    def __init__(self, api: str, simulator: str | None = None, *, token: str | None = None) -> None:
        self.api = api
        self.simulator = simulator or api
        #: The shop's API key (or a checkout token), sent as `Authorization: Bearer`.
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    def initiate(
        self, phone: str, amount: int = 1500, *, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        headers = {**self.auth, **({"Idempotency-Key": key} if key else {})}
        body = {"amount": amount, "phoneNumber": phone, **ORDER, **extra}
        return httpx.post(
            f"{self.api}/api/payments/initiate", json=body, headers=headers, timeout=15
        )

    def pay(self, phone: str, amount: int = 1500) -> str:
        """Initiate and return the payment id; anything but 202 fails the test."""
        answer = self.initiate(phone, amount)
        assert answer.status_code == 202, answer.text
        payment_id: str = answer.json()["paymentId"]
        return payment_id

    def status(self, ref: str) -> dict[str, Any]:
        payment: dict[str, Any] = httpx.get(
            f"{self.api}/api/payments/status/{ref}", headers=self.auth, timeout=15
        ).json()
        return payment

    def wait_final(self, payment_id: str, timeout_s: float = 40) -> dict[str, Any]:
        """The payment once it is no longer pending (or as it is when time runs out)."""
        return self.wait_until(payment_id, lambda p: p.get("status") not in (None, "pending"),
                               timeout_s)  # fmt: skip

    def wait_until(
        self, payment_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 40
    ) -> dict[str, Any]:
        """The payment once `done(payment)` holds (or as it is when time runs out)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                payment = self.status(payment_id)
            except (httpx.HTTPError, ValueError):
                payment = {}
            if (payment and done(payment)) or time.monotonic() > deadline:
                return payment
            time.sleep(0.3)

    def ledger(self) -> list[dict[str, Any]]:
        """The simulator's ground truth: what each customer was asked and paid."""
        answer = httpx.get(f"{self.simulator}/simulator/ledger", timeout=15)
        pushes: list[dict[str, Any]] = answer.json()["pushes"]
        return pushes

    def chaos(self, knobs: dict[str, Any]) -> None:
        httpx.put(f"{self.simulator}/simulator/chaos", json=knobs).raise_for_status()


@dataclass
class System:
    """One running test system: API, worker, scheduler(s) and simulator processes."""

    api: str  # the API's base URL
    simulator: str  # the simulator's base URL
    env: dict[str, str]  # the settings every process was started with
    procs: Processes  # start more `khalex-pay` commands with the same settings
    logs: Path  # one `<name>.log` per process
    worker: subprocess.Popen[bytes]  # the worker supervisor

    def shop(self, token: str | None = None) -> Shop:
        """The shop's frontend against this system, sending `token` if given."""
        return Shop(self.api, self.simulator, token=token)


@contextmanager
def start_system(
    logs: Path,
    database_url: str,
    redis_url: str,
    *,
    api_workers: int = 1,
    worker_processes: int = 1,
    worker_threads: int | None = None,
    schedulers: int = 1,
    **settings: str,
) -> Iterator[System]:
    """Start simulator, API, worker and scheduler(s) wired together; stop them all on exit.

    `settings` are environment overrides on top of `wiring()` (e.g. `SIM_CALLBACK_DELAY="0.5"`).
    Returns once the simulator and the API answer HTTP.
    """
    api_port, sim_port = services.free_port(), services.free_port()
    env = {**wiring(database_url, redis_url, api_port, sim_port), **settings}
    with Processes(env, logs) as procs:
        sim = procs.start("simulator", "simulator", "--port", str(sim_port))
        api_args = ("--workers", str(api_workers)) if api_workers != 1 else ()
        api = procs.start("api", "api", "--port", str(api_port), *api_args)
        threads = ("--threads", str(worker_threads)) if worker_threads is not None else ()
        worker = procs.start("worker", "worker", "--processes", str(worker_processes), *threads)
        for n in range(1, schedulers + 1):
            procs.start("scheduler" if schedulers == 1 else f"scheduler-{n}", "scheduler")
        # Several processes start at once; on a busy machine their imports alone take a while.
        services.wait_for_http(f"http://127.0.0.1:{sim_port}/simulator/ledger", proc=sim)
        services.wait_for_http(f"http://127.0.0.1:{api_port}/health/live", proc=api)
        yield System(
            f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}", env, procs, logs, worker
        )


def wiring(database_url: str, redis_url: str, api_port: int, sim_port: int) -> dict[str, str]:
    """The settings that join the API, workers and simulator of one test system.

    The rate limits are raised out of the way: these tests pay the same numbers many
    times from one address (tests/security pins the limits down).
    """
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MPESA_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MPESA_CALLBACK_URL": f"http://127.0.0.1:{api_port}/api/payments/webhook",
        **UNLIMITED,
    }


#: Rate limits no functional test reaches.
UNLIMITED = dict.fromkeys(("RATE_LIMIT_PHONE", "RATE_LIMIT_IP", "RATE_LIMIT_KEY"), "1000000/60")


def new_shop_key(database_url: str, name: str = "test shop") -> str:
    """A new shop API key in the (migrated) database at `database_url`."""
    from store import api_keys
    from store.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            return api_keys.create(conn, name)[1]
    finally:
        engine.dispose()


def dev_key(log: Path, timeout_s: float = 20) -> str:
    """The API key `khalex-pay dev` printed in its start banner (in its log)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"API key for this run \(the shop server's\): (kp_\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError("khalex-pay dev printed no API key")

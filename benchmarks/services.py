"""Throwaway PostgreSQL and Redis databases, and `khalex-pay` processes that never outlive us.

Every process starts in its own session (process group), so stopping it also stops what it
started (the worker supervisor's Dramatiq children); `Processes` stops all of them on exit,
whatever happened in between.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import httpx
import redis

from tests import services as tests_services

#: Where the throwaway databases are created (same default as the tests).
PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: A Redis database of its own (the tests use 9): flushed before and after the run.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
#: The repository root: processes run from here, as `make bench` does.
ROOT = Path(__file__).resolve().parent.parent
#: Seconds a process gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 15.0


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create and migrate an empty PostgreSQL database; drop it afterwards."""
    with tests_services.fresh_database(admin_url=PG_ADMIN_URL, prefix="khalex_bench") as url:
        yield url


@contextmanager
def fresh_redis() -> Iterator[str]:
    """The benchmark's Redis database, empty before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """`khalex-pay` commands started for one run; all stopped when the `with` block ends."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**os.environ, **env}
        self.logs = logs
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `khalex-pay ARGS`; its output goes to `<logs>/<name>.log`."""
        return self.start_module(name, "khalex_pay.cli", *args)

    def start_module(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `python -m MODULE ARGS` (a peer app, or `khalex-pay` itself)."""
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                start_new_session=True,
            )  # fmt: skip
        self._running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process and its group, then SIGKILL what is left after the timeout."""
        if proc in self._running:
            self._running.remove(proc)
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        # Children that outlived their parent (a Dramatiq worker) are still in the group.
        _signal_group(proc, signal.SIGKILL)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in list(reversed(self._running)):
            self.stop(proc)


def _signal_group(proc: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The group id is the pid of the process we started (start_new_session=True).
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Return once `url` answers; raise if `proc` exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
        except httpx.HTTPError:
            time.sleep(0.1)
        else:
            return
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")

"""The long-running processes the CLI starts: the API, the workers and the scheduler."""

from __future__ import annotations

import uvicorn

from khalex_pay.boot.bootstrap import bootstrap
from plumbing.logs import setup_logging
from plumbing.settings import Settings
from workers.scheduler import build_scheduler
from workers.supervisor import supervise


def serve_api(host: str, port: int, workers: int) -> None:
    """uvicorn serving `khalex_pay.boot.asgi:app_from_env` in each of its `workers`."""
    # proxy_headers=False: uvicorn would otherwise take the client's address from
    # X-Forwarded-For sent through 127.0.0.1. Proxies are trusted only by TRUSTED_PROXIES.
    uvicorn.run(
        "khalex_pay.boot.asgi:app_from_env", factory=True, host=host, port=port,
        workers=workers, log_config=None, access_log=False, proxy_headers=False,
    )  # fmt: skip


def supervise_workers(settings: Settings, processes: int, threads: int) -> int:
    """`processes` worker processes (`khalex_pay.boot.worker`), each restarted if it dies."""
    setup_logging("worker-supervisor", settings.log_level, plain=settings.log_format == "plain")
    return supervise(processes, threads)


def run_scheduler(settings: Settings) -> None:
    """The reconciliation loop, blocking; only the leader among schedulers acts."""
    build_scheduler(bootstrap("scheduler", settings).container, blocking=True).start()

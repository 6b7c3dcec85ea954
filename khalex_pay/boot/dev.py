"""`khalex-pay dev`: the whole system in one process, with nothing to install or start.

SQLite file, Dramatiq's in-process broker with worker threads, the scheduler in a thread,
and the Daraja simulator mounted on the same server, so a push, its callback and its
queries all go over real HTTP to ourselves.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time

import uvicorn
from dramatiq import Worker

from api import demo
from api.app import create_app
from daraja.errors import DarajaError, Reason, Refused
from daraja.simulator import SimulatorState, route_handlers
from khalex_pay.boot.bootstrap import bootstrap, consume_jobs
from khalex_pay.boot.simulator import simulator_config
from migrations.run import upgrade
from operations.operator_tokens import DEFAULT_TOKEN_HOURS, issue_token
from payments import c2b_register
from payments.container import Container
from plumbing.settings import Settings
from store import api_keys
from workers.scheduler import build_scheduler

log = logging.getLogger(__name__)

#: Worker threads consuming the in-process queues.
DEV_WORKER_THREADS = 4


def dev_settings(settings: Settings, host: str, port: int) -> Settings:
    """Point Daraja and its callbacks at this very server; never touch Redis."""
    base = f"http://{host}:{port}"
    return dataclasses.replace(
        settings,
        mpesa_environment="sandbox",
        mpesa_base_url=base,
        mpesa_callback_url=f"{base}/api/payments/webhook",
        redis_url="",
    )


def run_dev(settings: Settings, host: str, port: int) -> None:
    settings = dev_settings(settings, host, port)
    started = bootstrap("dev", settings, in_process=True)
    upgrade(settings.database_url)
    consume_jobs(started)
    container = started.container
    worker = Worker(started.broker, worker_threads=DEV_WORKER_THREADS, worker_timeout=100)
    scheduler = build_scheduler(container, blocking=False)
    simulator = SimulatorState(simulator_config(settings))

    def start() -> None:
        worker.start()
        scheduler.start()
        # The PayBill fallback needs C2B URLs registered with the (in-process) simulator,
        # which answers only once this server listens: register from a thread that waits.
        threading.Thread(target=register_paybill, args=(container,), daemon=True).start()

    def stop() -> None:
        scheduler.shutdown(wait=False)
        worker.stop()

    app = create_app(
        container,
        extra_handlers=[*route_handlers(simulator), *demo.route_handlers()],
        on_startup=[start],
        on_shutdown=[simulator.aclose, stop],
    )
    log.info("Khalex Pay dev on %s, data in %s", settings.mpesa_base_url, settings.database_url)
    # Auth stays on in dev, as in production: a fresh shop key for this run, shown once.
    with container.engine.begin() as conn:
        _, key = api_keys.create(conn, "khalex-pay dev")
    hours = min(DEFAULT_TOKEN_HOURS, settings.ops_token_max_hours)
    ops_token = issue_token(settings.jwt_secret, "khalex-pay dev", hours)
    sys.stdout.write(banner(settings, key, ops_token, hours))
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False)


def register_paybill(container: Container, attempts: int = 40, wait_s: float = 0.25) -> bool:
    """Register this server's C2B URLs with the simulator, as `khalex-pay c2b register` does."""
    for _ in range(attempts):
        try:
            _, urls = c2b_register.register(container)
        except Refused as exc:
            if exc.reason is not Reason.CONNECT_FAILED:
                log.warning("dev: C2B URLs not registered: %s", exc.message)
                return False
        except DarajaError:
            pass  # the server is not listening yet
        else:
            log.info("dev: C2B URLs registered: %s", urls["confirmation"])
            return True
        time.sleep(wait_s)
    log.warning("dev: C2B URLs not registered: the server never answered")
    return False


def banner(settings: Settings, key: str, ops_token: str, ops_hours: float) -> str:
    """What dev mode prints at start: its pages, this run's API key and operator token."""
    base = settings.mpesa_base_url
    pages = (
        ("/", "demo checkout (the shop's page)"),
        ("/phone", "virtual phone: answer the M-Pesa prompts by hand"),
        ("/ops", "operators' page (paste the operator token below)"),
        ("/schema", "the API's OpenAPI schema and Swagger UI"),
    )
    auth = "" if settings.api_auth else "  API_AUTH=off: any request calls as the shop server.\n"
    return "".join(
        (
            f"\nKhalex Pay dev on {base}   (data in {settings.database_url}; Ctrl-C stops it)\n",
            *(f"  {base}{path:<10} {what}\n" for path, what in pages),
            f"  API key for this run (the shop server's): {key}\n{auth}",
            f"  PayBill {settings.mpesa_business_shortcode}: checkout's \"Didn't get the prompt?\" "
            "steps, paid from /phone's PayBill form (C2B URLs registered at start)\n",
            f"  operator token ({ops_hours:g} h): {ops_token}\n",
            "    another, any time: uv run khalex-pay ops-token [--hours N]\n",
            f'  try: curl -H "Authorization: Bearer {key}" \\\n'
            f"         {base}/api/payments/status/<paymentId>\n\n",
        )
    )

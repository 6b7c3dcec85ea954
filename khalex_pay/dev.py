"""`khalex-pay dev`: the whole system in one process, with nothing to install or start.

SQLite file, Dramatiq's in-process broker with worker threads, the scheduler in a thread,
and the Daraja simulator mounted on the same server, so a push, its callback and its
queries all go over real HTTP to ourselves.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import dramatiq
import uvicorn
from dramatiq import Worker

from api import demo
from api.app import create_app
from daraja.simulator import SimulatorConfig, SimulatorState, route_handlers
from khalex_pay.container import Container
from plumbing.logs import setup_logging
from plumbing.observability import init_sentry
from plumbing.settings import Settings
from store import api_keys
from store.migrate import upgrade
from workers import actors
from workers.broker import build_broker, publisher
from workers.poison import PoisonGuard
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
    setup_logging("dev")
    settings = dev_settings(settings, host, port)
    upgrade(settings.database_url)
    init_sentry(settings, "dev")
    broker = build_broker(settings, in_process=True)
    dramatiq.set_broker(broker)
    container = Container.build(settings, publisher(broker))
    broker.add_middleware(PoisonGuard(container.engine))
    actors.bind(container)
    actors.register(broker, expiry_s=settings.payment_expiry_s)
    worker = Worker(broker, worker_threads=DEV_WORKER_THREADS, worker_timeout=100)
    scheduler = build_scheduler(container, blocking=False)
    simulator = SimulatorState(SimulatorConfig.from_settings(settings))

    def start() -> None:
        worker.start()
        scheduler.start()

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
    sys.stdout.write(banner(settings.mpesa_base_url, key, api_auth=settings.api_auth))
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False)


def banner(base: str, key: str, *, api_auth: bool = True) -> str:
    """What dev mode prints at start: where things are, and this run's API key."""
    auth = "" if api_auth else "  API_AUTH=off: any request calls as the shop server.\n"
    return (
        f"\nKhalex Pay dev on {base}\n"
        f"  demo checkout  {base}/      virtual phone  {base}/phone      ops  {base}/ops\n"
        f"  API key for this run (the shop server's): {key}\n{auth}"
        f'  try: curl -H "Authorization: Bearer {key}" {base}/api/payments/status/<paymentId>\n\n'
    )

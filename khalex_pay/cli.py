"""The `khalex-pay` command line (CONTRACT.md §2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from khalex_pay import keys_cli, ops_cli, orders_cli, webhooks_cli
from plumbing.settings import Settings, SettingsError, load_settings

#: Default port per server command, so they can run side by side on one host.
DEFAULT_PORTS = {"dev": 8000, "api": 8000, "simulator": 8001}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"khalex-pay: bad setting: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    handler = _COMMANDS[args.command]
    return handler(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="khalex-pay", description="M-Pesa payments for shops.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("dev", "whole system in one process: SQLite, in-process queue, simulator"),
        ("api", "the HTTP API"),
        ("simulator", "the Daraja simulator as its own HTTP server"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--host", default="127.0.0.1")
        cmd.add_argument("--port", type=int, default=DEFAULT_PORTS[name])
        if name == "api":
            cmd.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    worker = sub.add_parser("worker", help="Dramatiq worker processes for all queues")
    worker.add_argument("--processes", type=int, default=2)
    # Threads mostly wait on Daraja (seconds per push at peak): many are cheap, and 2 x 64
    # push a burst of 200 in two rounds. DARAJA_MAX_CONCURRENCY bounds the calls.
    worker.add_argument("--threads", type=int, default=64)
    sub.add_parser("scheduler", help="the reconciliation loop (one leader at a time)")
    sub.add_parser("migrate", help="alembic upgrade head on DATABASE_URL")
    ops_cli.add_parsers(sub)
    keys_cli.add_parsers(sub)
    orders_cli.add_parsers(sub)
    webhooks_cli.add_parsers(sub)
    return parser


# Each command imports its own stack when it runs, so `khalex-pay keys list` or `--help`
# never pays for Litestar, uvicorn or Dramatiq (not to dodge cycles: there are none).


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from khalex_pay.boot.dev import run_dev  # noqa: PLC0415 - its own stack, at run time

    run_dev(settings, args.host, args.port)
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from khalex_pay.boot import processes  # noqa: PLC0415 - its own stack, at run time

    processes.serve_api(args.host, args.port, args.workers)
    return 0


def _simulator(settings: Settings, args: argparse.Namespace) -> int:
    from daraja.simulator import run  # noqa: PLC0415 - its own stack, at run time
    from daraja.simulator.chaos import ChaosError  # noqa: PLC0415
    from khalex_pay.boot.simulator import simulator_config  # noqa: PLC0415

    try:
        run(simulator_config(settings), args.host, args.port)
    except ChaosError as exc:
        print(f"khalex-pay: bad setting: SIM_CHAOS: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from khalex_pay.boot import processes  # noqa: PLC0415 - its own stack, at run time

    return processes.supervise_workers(args.processes, args.threads)


def _scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from khalex_pay.boot import processes  # noqa: PLC0415 - its own stack, at run time

    processes.run_scheduler(settings)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from migrations.run import upgrade  # noqa: PLC0415 - its own stack, at run time

    upgrade(settings.database_url)
    print(f"migrated {_redact(settings.database_url)} to head")  # noqa: T201
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(url).render_as_string(hide_password=True)


# --- Operator commands ------------------------------------------------------------------------


_COMMANDS = {
    "dev": _dev,
    "api": _api,
    "simulator": _simulator,
    "worker": _worker,
    "scheduler": _scheduler,
    "migrate": _migrate,
    **ops_cli.COMMANDS,
    **keys_cli.COMMANDS,
    **orders_cli.COMMANDS,
    **webhooks_cli.COMMANDS,
}

if __name__ == "__main__":
    raise SystemExit(main())

"""The `khalex-pay` command line (CONTRACT.md §2).

Its failures that are not bugs end in one line on stderr with the fix (`_explained`): a bad
setting, a busy port, a database that is down or has no tables, Redis down. A reader that
stops early (`khalex-pay ... | head`) ends it quietly.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import socket
import sys
from collections.abc import Iterator, Sequence

from khalex_pay import (
    c2b_cli,
    customers_cli,
    keys_cli,
    ops_cli,
    orders_cli,
    settings_cli,
    webhooks_cli,
)
from plumbing import sealing
from plumbing.settings import Settings, SettingsError, hide_password, keyring, load_settings

#: Commands that store personal data, and so cannot start without the keys to seal it.
NEEDS_KEYS = frozenset({"api", "worker", "scheduler"})
NO_KEYS = (
    "DATA_ENCRYPTION_KEYS and BLIND_INDEX_KEY are needed to store personal data "
    "(`khalex-pay dev` makes its own; see docs/OPERATIONS.md)"
)
#: Default port per server command, so they can run side by side on one host.
DEFAULT_PORTS = {"dev": 8000, "api": 8000, "simulator": 8001}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
    except BrokenPipeError:
        return _reader_gone()
    return code


def _run(args: argparse.Namespace) -> int:
    if args.command == "settings":
        return settings_cli.run(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            _fail(f"bad setting: {problem}")
        return 2
    # Operator commands read sealed columns; servers install the keys again in bootstrap.
    keys = keyring(settings)
    if keys is None and args.command in NEEDS_KEYS:
        _fail(f"bad setting: {NO_KEYS}")
        return 2
    if keys is not None:
        sealing.install(keys)
    if args.command in DEFAULT_PORTS and (busy := _port_problem(args)):
        _fail(busy)
        return 1
    try:
        return _COMMANDS[args.command](settings, args)
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) or (line := _explained(exc, settings)) is None:
            raise
        _fail(line)
        return 1


def _fail(line: str) -> None:
    print(f"khalex-pay: {line}", file=sys.stderr)  # noqa: T201


# --- Failures explained in one line -----------------------------------------------------------

#: SQLSTATE for a table that does not exist (PostgreSQL).
UNDEFINED_TABLE = "42P01"
#: Exit status of a command whose reader went away, as if SIGPIPE had ended it.
BROKEN_PIPE_EXIT = 128 + 13


def _reader_gone() -> int:
    """`... | head` closed our output: stop quietly (and let nothing flush at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE_EXIT


def _explained(exc: BaseException, settings: Settings) -> str | None:
    """The one line with the fix for a failure of the surroundings, or None for a bug."""
    import redis.exceptions  # noqa: PLC0415 - only once something failed
    from sqlalchemy.exc import DBAPIError, OperationalError  # noqa: PLC0415

    for cause in _chain(exc):
        if isinstance(cause, DBAPIError):
            database, error = hide_password(settings.database_url), cause.orig or cause
            if _no_table(error):
                return f"the database {database} has no tables yet: run khalex-pay migrate"
            if isinstance(cause, OperationalError):
                fix = (
                    "fix DATABASE_URL's path"
                    if database.startswith("sqlite")
                    else "start PostgreSQL (make services) or fix DATABASE_URL"
                )
                return f"cannot reach the database {database} ({_first_line(error)}): {fix}"
        if isinstance(cause, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            redis_url = hide_password(settings.redis_url)
            return (
                f"cannot reach Redis at {redis_url} ({_first_line(cause)}): "
                "start Redis (make services) or fix REDIS_URL"
            )
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, and so on (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _no_table(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) == UNDEFINED_TABLE or "no such table" in str(error)


def _first_line(error: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(error).strip().splitlines()[0] if str(error) else "")
    return text[:160] or type(error).__name__


def _port_problem(args: argparse.Namespace) -> str | None:
    """Why `args.host`:`args.port` cannot be listened on (with a free port to try), or None."""
    try:
        socket.create_server((args.host, args.port)).close()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        free = _free_port(args.host, args.port + 1)
        if args.command == "dev":
            return f"port {args.port} is in use; try make dev PORT={free}"
        return f"port {args.port} is in use; try --port {free}"
    return None


def _free_port(host: str, start: int) -> int:
    for port in range(start, start + 50):
        try:
            socket.create_server((host, port)).close()
        except OSError:
            continue
        return port
    return start


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
    customers_cli.add_parsers(sub)
    c2b_cli.add_parsers(sub)
    settings_cli.add_parsers(sub)
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

    return processes.supervise_workers(settings, args.processes, args.threads)


def _scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from khalex_pay.boot import processes  # noqa: PLC0415 - its own stack, at run time

    processes.run_scheduler(settings)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from migrations.run import upgrade  # noqa: PLC0415 - its own stack, at run time

    upgrade(settings.database_url)
    print(f"migrated {hide_password(settings.database_url)} to head")  # noqa: T201
    return 0


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
    **customers_cli.COMMANDS,
    **c2b_cli.COMMANDS,
}

if __name__ == "__main__":
    raise SystemExit(main())

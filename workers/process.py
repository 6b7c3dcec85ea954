"""One worker process: `python -m workers.process --threads N` (started by `khalex-pay worker`).

We run Dramatiq's `Worker` ourselves instead of the `dramatiq` command, because that command
forks its own children: SIGKILL its main process and the child doing the work lives on as an
orphan that nobody supervises. Here the process that holds the jobs is the one we watch.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

import dramatiq

#: How long a stopping worker lets its running jobs finish (ms); the rest go back in line.
SHUTDOWN_TIMEOUT_MS = 30_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workers.process")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    from workers import entry  # noqa: PLC0415 - settings, logging, Sentry, then the broker

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = dramatiq.Worker(entry.broker, worker_threads=args.threads, worker_timeout=1000)
    worker.start()
    stop.wait()
    worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
    entry.container.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

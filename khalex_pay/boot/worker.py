"""One worker process: `python -m khalex_pay.boot.worker --threads N` (from `khalex-pay worker`).

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

from khalex_pay.boot.bootstrap import bootstrap, consume_jobs
from plumbing.settings import load_settings

#: How long a stopping worker lets its running jobs finish (ms); the rest go back in line.
SHUTDOWN_TIMEOUT_MS = 30_000
#: Longest an idle worker waits between looks at its queues (ms): the first job of a burst
#: starts within this (Dramatiq backs off up to it while the queues stay empty).
IDLE_POLL_MS = 250


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="khalex_pay.boot.worker")
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args(argv)

    started = bootstrap("worker", load_settings())
    consume_jobs(started)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = dramatiq.Worker(
        started.broker, worker_threads=args.threads, worker_timeout=IDLE_POLL_MS
    )
    worker.start()
    stop.wait()
    worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
    started.container.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

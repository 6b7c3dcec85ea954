"""`khalex-pay worker`: several single-process Dramatiq workers, each restarted if it dies.

Dramatiq's own parent process stops every child and exits when one child dies (a SIGKILL,
an OOM); running each worker as its own child here keeps the others serving.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)

#: Seconds to wait before restarting a worker that died, so a crash loop stays cheap.
RESTART_DELAY_S = 1.0


def command(threads: int) -> list[str]:
    return [
        sys.executable, "-m", "dramatiq", "workers.entry",
        "--processes", "1", "--threads", str(threads), "--worker-shutdown-timeout", "30000",
    ]  # fmt: skip


def supervise(processes: int, threads: int) -> int:
    """Run `processes` workers until SIGTERM/SIGINT; returns the exit status."""
    children = [subprocess.Popen(command(threads)) for _ in range(processes)]  # noqa: S603
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for i, child in enumerate(children):
            code = child.poll()
            if code is not None and not stopping:
                log.error("worker %s exited with %s; restarting it", child.pid, code)
                time.sleep(RESTART_DELAY_S)
                children[i] = subprocess.Popen(command(threads))  # noqa: S603
        time.sleep(0.2)
    for child in children:
        child.wait()
    return 0

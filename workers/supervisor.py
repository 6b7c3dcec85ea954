"""`khalex-pay worker`: several worker processes, each restarted if it dies.

Dramatiq's own parent process stops every child and exits when one child dies (a SIGKILL,
an OOM); running each worker as its own child here keeps the others serving. Each child
dies with this supervisor (Linux's parent-death signal), so none is left orphaned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)

#: Seconds to wait before restarting a worker that died, so a crash loop stays cheap.
RESTART_DELAY_S = 1.0


#: prctl(2) option: the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


def command(threads: int) -> list[str]:
    return [sys.executable, "-m", "khalex_pay.boot.worker", "--threads", str(threads)]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: a supervisor killed by SIGKILL may leave its children running


def _start(threads: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command(threads), preexec_fn=_die_with_parent)  # noqa: S603, PLW1509


def supervise(processes: int, threads: int) -> int:
    """Run `processes` workers until SIGTERM/SIGINT; returns the exit status."""
    children = [_start(threads) for _ in range(processes)]
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
                children[i] = _start(threads)
        time.sleep(0.2)
    for child in children:
        child.wait()
    return 0

"""`python -m benchmarks [--quick] [--domain-only]`: run the benchmarks, print one table."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from benchmarks import domain_decide, report, sealing_cost


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument(
        "--domain-only", action="store_true", help="only the pure-Python benchmark (no services)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = domain_decide.run(quick=args.quick) + sealing_cost.run(quick=args.quick)
    goals: list[report.Goal] = []
    if not args.domain_only:
        from benchmarks import system  # noqa: PLC0415 - needs PostgreSQL and Redis

        measured = system.run(quick=args.quick)
        figures += measured
        goals = system.goals(measured)
    print(report.table(figures))
    if goals:
        print()
        print(report.goals_table(goals))
    print(f"\n{'quick ' if args.quick else ''}run took {time.monotonic() - started:.0f} s")
    return 0


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    # A SIGTERM must unwind like Ctrl-C, so every process and database we made is removed.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    sys.exit(main())

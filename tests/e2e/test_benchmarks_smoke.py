"""The benchmarks' smoke mode (`make bench-smoke`): every benchmark runs at tiny sizes.

Figures are not judged here (this machine is shared and its timings vary); what is
checked is that each benchmark still runs to its table of goals, so none rots.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.services import REDIS_URL, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.bench]


@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "module", ["benchmarks", "benchmarks.scale", "benchmarks.burst"], ids=lambda m: m
)
def test_benchmark_runs_to_its_verdicts_in_quick_mode(module: str) -> None:
    # A Redis database apart from `make bench`'s (13): a benchmark flushes its own, and one
    # run beside another in the same database takes the other's jobs.
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL.rsplit("/", 1)[0] + "/12"}
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict" in done.stdout
    assert "quick run took" in done.stdout

"""The simulator as a process: SIM_CHAOS at start, and refusing to start on bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.simulator.conftest import (
    REPO_ROOT,
    free_port,
    simulator_env,
    start_simulator,
    stop,
    wait_until_up,
)

pytestmark = pytest.mark.simulator


def test_sim_chaos_sets_the_knobs_at_start(tmp_path: Path) -> None:
    port = free_port()
    env = simulator_env(SIM_CHAOS='{"tokenLifetimeS": 60, "callbackDelayS": [0, 0.1]}')
    process = start_simulator(port, env, tmp_path / "log")
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}", tmp_path / "log")
        chaos = httpx.get(f"http://127.0.0.1:{port}/simulator/chaos").json()
    finally:
        stop(process)

    assert (chaos["tokenLifetimeS"], chaos["callbackDelayS"]) == (60, [0.0, 0.1])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIM_CHAOS": '{"pushErrorRate": 5}'}, "SIM_CHAOS"),
        ({"SIM_CALLBACK_DELAY": "soon"}, "SIM_CALLBACK_DELAY"),
    ],
)
def test_bad_settings_stop_the_simulator_with_one_clear_line(
    env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "khalex_pay.boot.simulator", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=simulator_env(**env),
        capture_output=True,
        timeout=20,
        check=False,
    )

    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bad setting:")
    assert message in lines[0]

"""Serving the simulator with uvicorn: `run()` for `khalex-pay simulator`, `main()` for
`python -m daraja.simulator --host 127.0.0.1 --port 8001`.

Settings come from the environment (and `.env`), exactly as for every other Khalex Pay process.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from daraja.simulator.app import create_app
from daraja.simulator.chaos import ChaosError
from daraja.simulator.config import SimulatorConfig
from plumbing.settings import Settings, SettingsError, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001


def run(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the simulator for `settings` until interrupted; `ChaosError` on a bad SIM_CHAOS."""
    app = create_app(SimulatorConfig.from_settings(settings))
    # No access log: paths carry CheckoutRequestIDs, which embed most of the phone number.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, validate settings, serve; the exit status."""
    parser = argparse.ArgumentParser(prog="daraja.simulator", description="The Daraja simulator.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        run(load_settings(), args.host, args.port)
    except SettingsError as exc:
        sys.stderr.write("".join(f"bad setting: {problem}\n" for problem in exc.problems))
        return 2
    except ChaosError as exc:
        sys.stderr.write(f"bad setting: SIM_CHAOS: {exc.message}\n")
        return 2
    return 0

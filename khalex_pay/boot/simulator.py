"""The Daraja simulator as its own server, configured from Khalex Pay's settings.

`khalex-pay simulator`, or `python -m khalex_pay.boot.simulator --host 127.0.0.1 --port 8001`:
settings come from the environment (and `.env`), exactly as for every other process.
"""

from __future__ import annotations

import argparse
import logging
import sys

from daraja.simulator import SimulatorConfig, run
from daraja.simulator.chaos import ChaosError, parse_chaos
from daraja.simulator.server import DEFAULT_HOST, DEFAULT_PORT
from plumbing.settings import Settings, SettingsError, load_settings


def simulator_config(settings: Settings) -> SimulatorConfig:
    """Accept the client's `MPESA_*` credentials; `ChaosError` names a bad `SIM_CHAOS` knob."""
    return SimulatorConfig(
        consumer_key=settings.mpesa_consumer_key,
        consumer_secret=settings.mpesa_consumer_secret,
        shortcode=settings.mpesa_business_shortcode,
        passkey=settings.mpesa_passkey,
        party_b=settings.mpesa_party_b,
        transaction_type=settings.mpesa_transaction_type,
        callback_delay_s=settings.sim_callback_delay_s,
        late_callback_delay_s=settings.sim_late_callback_delay_s,
        chaos=parse_chaos(settings.sim_chaos.encode() or b"{}"),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, validate settings, serve; the exit status."""
    parser = argparse.ArgumentParser(prog="khalex_pay.boot.simulator", description="Daraja sim.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        run(simulator_config(load_settings()), args.host, args.port)
    except SettingsError as exc:
        sys.stderr.write("".join(f"bad setting: {problem}\n" for problem in exc.problems))
        return 2
    except ChaosError as exc:
        sys.stderr.write(f"bad setting: SIM_CHAOS: {exc.message}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

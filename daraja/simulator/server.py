"""Serving the simulator with uvicorn, for whoever starts it (`khalex-pay simulator`)."""

from __future__ import annotations

import uvicorn

from daraja.simulator.app import create_app
from daraja.simulator.config import SimulatorConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001


def run(config: SimulatorConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the simulator for `config` until interrupted."""
    app = create_app(config)
    # No access log: paths carry CheckoutRequestIDs, which embed most of the phone number.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")

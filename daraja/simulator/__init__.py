"""A local Daraja (M-Pesa STK Push) simulator: as strict and as unreliable as the real one.

Public entry points:
- `SimulatorConfig(...)` says whose credentials it accepts and how it behaves;
- `create_app(config)` gives a standalone Litestar app;
- `SimulatorState(config)` + `route_handlers(state)` (or `simulator_router(state)`) mount the
  same handlers at the root of another Litestar app (call `state.aclose()` on shutdown);
- `run(config, host, port)` serves it with uvicorn (`khalex-pay simulator`).
"""

from daraja.simulator.app import create_app, route_handlers, simulator_router
from daraja.simulator.config import SimulatorConfig
from daraja.simulator.server import run
from daraja.simulator.state import SimulatorState

__all__ = [
    "SimulatorConfig",
    "SimulatorState",
    "create_app",
    "route_handlers",
    "run",
    "simulator_router",
]

"""The simulator's fixed configuration: whose credentials it accepts and how fast it answers.

Whoever starts the simulator builds it from the same settings the client reads
(`khalex_pay.boot.simulator`), so it accepts exactly the client's credentials and refuses others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daraja.simulator.chaos import Chaos


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulator checks requests against, plus its timing and starting chaos."""

    consumer_key: str
    consumer_secret: str
    shortcode: str
    passkey: str
    party_b: str
    transaction_type: str = "CustomerPayBillOnline"
    #: Seconds between a push and its prompt resolving (and the callback going out).
    callback_delay_s: float = 1.0
    #: Seconds between a push and the callback for the late-callback number (254700000009).
    late_callback_delay_s: float = 120.0
    chaos: Chaos = field(default_factory=Chaos)

"""The simulator's fixed configuration: whose credentials it accepts and how fast it answers.

Built once from the same `Settings` every Khalex Pay process reads, so the simulator accepts
exactly the `MPESA_*` credentials the client is configured with and refuses others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daraja.simulator.chaos import Chaos, parse_chaos
from plumbing.settings import Settings


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

    @classmethod
    def from_settings(cls, settings: Settings) -> SimulatorConfig:
        """The config for `settings`; raises `ValueError` naming a bad `SIM_CHAOS` knob."""
        return cls(
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

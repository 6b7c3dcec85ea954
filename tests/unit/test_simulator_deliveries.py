"""The simulator's callback deliveries: a burst waits its turn, none is lost to the wait."""

from __future__ import annotations

import asyncio

import httpx

from daraja.simulator import state
from daraja.simulator.config import SimulatorConfig
from daraja.simulator.state import SimulatorState


def _simulator() -> SimulatorState:
    return SimulatorState(SimulatorConfig("key", "secret", "174379", "passkey", "174379"))


def test_a_burst_of_callbacks_keeps_to_the_delivery_limit_and_every_one_arrives() -> None:
    in_flight, most = 0, 0
    answered: list[int] = []

    async def receiver(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200)

    async def burst() -> None:
        sim = _simulator()
        sim._http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
        posts = [
            sim.post("http://shop.test/cb", b"{}", {}) for _ in range(state.MAX_DELIVERIES * 10)
        ]
        answered.extend(a.status_code for a in await asyncio.gather(*posts))
        await sim.aclose()

    asyncio.run(burst())
    assert answered == [200] * (state.MAX_DELIVERIES * 10)
    assert most == state.MAX_DELIVERIES

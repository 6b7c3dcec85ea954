"""The running simulator: config, current chaos, ledger, tokens and background tasks.

One `SimulatorState` backs one set of route handlers. Prompt timers and callback deliveries
run as tasks it owns, so `reset()` and `aclose()` can stop them all.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import httpx
from litestar.di import NamedDependency

from daraja.simulator.chaos import Chaos
from daraja.simulator.config import SimulatorConfig
from daraja.simulator.ledger import Ledger, Tokens
from daraja.simulator.paybill_ledger import Paybill

log = logging.getLogger("daraja.simulator")

#: How long Daraja-side callback delivery waits for the receiver before giving up.
CALLBACK_TIMEOUT_S = 10.0
#: Callbacks and C2B posts in flight at once; the others wait their turn in order. httpx's
#: own pool would make them wait too, but it scans its whole queue for every request (a
#: burst of a thousand callbacks cost the simulator quadratic CPU) and counts the wait
#: against the timeout, losing callbacks the real Daraja would still deliver.
MAX_DELIVERIES = 8
#: Seconds an idle delivery connection is kept for reuse (below the receiver's own limit).
IDLE_CONNECTION_S = 2.0


class SimulatorState:
    """Everything the handlers share."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.chaos = config.chaos
        self.rng = random.Random(config.chaos.seed)  # noqa: S311 - a simulator, not crypto
        self.ledger = Ledger()
        self.paybill = Paybill()
        self.tokens = Tokens()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent_calls: deque[float] = deque()
        self._http: httpx.AsyncClient | None = None
        self._deliveries = asyncio.Semaphore(MAX_DELIVERIES)

    def chance(self, rate: float, rng: random.Random | None = None) -> bool:
        """True with probability `rate` (drawn from `rng`, default the simulator's own);
        a zero rate draws nothing, keeping seeded runs stable when a knob is off."""
        return rate > 0 and (rng or self.rng).random() < rate

    def set_chaos(self, chaos: Chaos, *, reseed: bool) -> None:
        """Switch to `chaos`; `reseed` restarts the random draws from its seed."""
        self.chaos = chaos
        if reseed:
            self.rng.seed(chaos.seed)

    def spike_arrested(self) -> bool:
        """True when this call goes over `spikeArrestPerS` in the last second."""
        limit = self.chaos.spike_arrest_per_s
        now = time.monotonic()
        while self._recent_calls and self._recent_calls[0] <= now - 1.0:
            self._recent_calls.popleft()
        if limit and len(self._recent_calls) >= limit:
            return True
        self._recent_calls.append(now)
        return False

    @property
    def pending(self) -> int:
        """Background work still to run: prompt timers and callback deliveries."""
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, keeping a reference so it is not collected."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float = CALLBACK_TIMEOUT_S
    ) -> httpx.Response:
        """POST `body` to a receiver of ours (a callback, a C2B request), once a delivery
        slot is free; the timeout counts from the moment it is sent."""
        async with self._deliveries:
            return await self._client().post(url, content=body, headers=headers, timeout=timeout_s)

    def _client(self) -> httpx.AsyncClient:
        # Made on first use, in the running loop.
        if self._http is None:
            # Idle connections are closed before the receiving server closes them (uvicorn:
            # 5 s): a callback sent as the server closes one is lost to a reset, and
            # Safaricom does not lose callbacks to that race in our tests' numbers.
            limits = httpx.Limits(
                max_connections=MAX_DELIVERIES,
                max_keepalive_connections=MAX_DELIVERIES,
                keepalive_expiry=IDLE_CONNECTION_S,
            )
            self._http = httpx.AsyncClient(
                timeout=CALLBACK_TIMEOUT_S, follow_redirects=False, limits=limits
            )
        return self._http

    async def reset(self) -> None:
        """Forget every push, PayBill payment and registered C2B URL, and go back to the
        starting chaos; tokens stay valid."""
        await self._cancel_tasks()
        self.ledger = Ledger()
        self.paybill = Paybill()
        self._recent_calls.clear()
        self.set_chaos(self.config.chaos, reseed=True)

    async def aclose(self) -> None:
        """Stop background work and close the HTTP client (on server shutdown)."""
        await self._cancel_tasks()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator background task failed", exc_info=task.exception())


#: How handlers ask for the state: injected by name (`sim`) from the simulator's Router.
Sim = NamedDependency[SimulatorState]

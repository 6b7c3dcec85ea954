"""(a) The pure state machine: how many facts per second `domain.payment.decide` settles.

Each payment lives a realistic life: the push starts and is accepted, a result comes (paid,
cancelled, short of money, or paid by query with the receipt in a later callback), then the
callback is repeated and the expiry fires, both of which must change nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from benchmarks.report import Figure
from domain.payment import (
    Expired,
    Fact,
    Payment,
    PushAccepted,
    PushStarted,
    ResultReported,
    Source,
    decide,
)

#: Payments per round (and in a `--quick` run).
PAYMENTS, QUICK_PAYMENTS = 20_000, 1_000
#: Rounds; the best one is reported, as the least disturbed by the rest of the machine.
ROUNDS, QUICK_ROUNDS = 3, 1
#: When the fake transactions happened (any aware time will do).
WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """What a run did: facts decided, changes made, and the final status of each payment."""

    facts: int
    changes: int
    seconds: float
    statuses: Counter[str]

    @property
    def facts_per_s(self) -> float:
        return self.facts / self.seconds if self.seconds else 0.0


def life(i: int, amount: int) -> list[Fact]:
    """The facts one payment meets, in order; `i` picks its outcome (7 in 10 paid at once)."""
    checkout = f"ws_CO_26112026120000{i:012d}"
    head: list[Fact] = [PushStarted(), PushAccepted(checkout, f"m-{i}")]
    paid = _callback(checkout, 0, amount, f"R{i:09d}")
    match i % 10:
        case 7:
            result = [_callback(checkout, 1032, None, None)]
        case 8:
            result = [_callback(checkout, 1, None, None)]
        case 9:
            query = ResultReported(Source.QUERY, 0, "ok", checkout_request_id=checkout)
            result = [query, paid]
        case _:
            result = [paid]
    return [*head, *result, result[-1], Expired()]


def _callback(checkout: str, code: int, amount: int | None, receipt: str | None) -> Fact:
    return ResultReported(
        Source.CALLBACK, code, "desc", checkout_request_id=checkout,
        amount=Decimal(amount) if amount is not None else None, receipt=receipt,
        transaction_date=WHEN if receipt else None,
    )  # fmt: skip


def run_once(payments: int) -> Outcome:
    """Decide every fact of `payments` payment lives; the clock covers `decide` only."""
    lives = [
        (Payment(id=f"p{i}", amount=100 + i % 900), life(i, 100 + i % 900)) for i in range(payments)
    ]
    facts = changes = 0
    statuses: Counter[str] = Counter()
    started = time.perf_counter()
    for first, facts_of_life in lives:
        payment = first
        for fact in facts_of_life:
            change = decide(payment, fact)
            if change is not None:
                payment = change.after
                changes += 1
        facts += len(facts_of_life)
        statuses[payment.status.value] += 1
    return Outcome(facts, changes, time.perf_counter() - started, statuses)


def run(*, quick: bool = False) -> list[Figure]:
    """The best of a few rounds, as figures."""
    payments = QUICK_PAYMENTS if quick else PAYMENTS
    rounds = [run_once(payments) for _ in range(QUICK_ROUNDS if quick else ROUNDS)]
    best = max(rounds, key=lambda o: o.facts_per_s)
    note = f"{best.facts:,} facts, {best.changes:,} changes, best of {len(rounds)}"
    return [
        Figure("domain decide()", "throughput", best.facts_per_s, "facts/s", note=note),
        Figure("domain decide()", "per fact", 1e6 / best.facts_per_s, "us", note="pure Python"),
    ]

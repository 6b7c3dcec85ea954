"""What operators ask of the database: how payments are going, which are stuck, one in detail.

Read-only queries behind `/api/ops/*` and the `khalex-pay payments` commands, written once
for PostgreSQL and SQLite.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from domain.payment import Status
from domain.phone import mask_msisdn, mask_msisdns_in
from payments import reconciliation
from payments.container import Container
from store import exchanges, figures, inbox, payments
from store.db import utcnow
from store.payments import PaymentRecord
from store.tables import IN_FLIGHT

#: The summary's windows: (name in the answer, length).
WINDOWS = (("lastHour", timedelta(hours=1)), ("lastDay", timedelta(days=1)))
#: Upper bounds (seconds) of the processing-time buckets, shared by the summary and /metrics.
PROCESSING_BUCKETS_S = (2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0)
#: Most processing times one summary window reads to take percentiles from (newest kept).
MAX_DURATIONS = 100_000
#: Most stuck payments listed (the count covers them all).
STUCK_LIMIT = 100
#: Failure reasons meaning the customer walked away rather than M-Pesa saying no.
ABANDONED_REASONS = frozenset({"cancelled_by_user", "timeout"})


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) of sorted values, interpolating between neighbours."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return round(value, 3)


# --- The summary ----------------------------------------------------------------------------


@dataclass
class WindowSummary:
    """Payments created in one window, and how they ended."""

    initiated: int = 0
    pending: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    late_successes: int = 0
    abandoned: int = 0
    failure_reasons: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)  # seconds, sorted

    @property
    def final(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def success_rate(self) -> float | None:
        return round(self.completed / self.final, 4) if self.final else None

    @property
    def abandonment(self) -> float | None:
        return round(self.abandoned / self.final, 4) if self.final else None

    def buckets(self) -> list[tuple[float | None, int]]:
        """Processing times per bucket (not cumulative); the last bound None is +Inf."""
        bounds: list[float | None] = [*PROCESSING_BUCKETS_S, None]
        counts = Counter(_bucket_of(d) for d in self.durations)
        return [(bound, counts[bound]) for bound in bounds]


def _bucket_of(seconds: float) -> float | None:
    return next((b for b in PROCESSING_BUCKETS_S if seconds <= b), None)


def summary(conn: sa.Connection, now: datetime | None = None) -> dict[str, WindowSummary]:
    """Each window of `WINDOWS`, counted exactly, with up to MAX_DURATIONS processing times."""
    now = now or utcnow()
    return {name: _window(conn, now - length) for name, length in WINDOWS}


def _window(conn: sa.Connection, since: datetime) -> WindowSummary:
    window = WindowSummary()
    for status, reason, late, n in figures.created_since(conn, since):
        _count(window, status, reason, late, n)
    window.durations = _durations(conn, since)
    return window


def _count(window: WindowSummary, status: str, reason: str | None, late: bool, n: int) -> None:
    window.initiated += n
    window.late_successes += n if late else 0
    if status in IN_FLIGHT:
        window.pending += n
        return
    setattr(window, status, getattr(window, status) + n)
    if status != Status.COMPLETED and reason:
        window.failure_reasons[reason] += n
        window.abandoned += n if reason in ABANDONED_REASONS else 0


def _durations(conn: sa.Connection, since: datetime) -> list[float]:
    return sorted(max(0.0, s) for s in figures.processing_seconds_since(conn, since, MAX_DURATIONS))


# --- Stuck payments -------------------------------------------------------------------------


@dataclass(frozen=True)
class StuckPayment:
    id: str
    status: str
    amount: int
    phone: str  # masked
    checkout_request_id: str | None  # masked: its tail is the payer's number
    age_s: float
    next_query_at: datetime | None
    query_attempts: int
    push_attempts: int


def stuck(
    conn: sa.Connection, older_than_s: int, now: datetime | None = None, limit: int = STUCK_LIMIT
) -> tuple[int, list[StuckPayment]]:
    """Pending payments created more than `older_than_s` ago: how many, and the oldest."""
    now = now or utcnow()
    total, oldest = payments.in_flight_before(conn, now - timedelta(seconds=older_than_s), limit)
    return total, [_stuck(record, now) for record in oldest]


def _stuck(p: PaymentRecord, now: datetime) -> StuckPayment:
    return StuckPayment(
        id=p.id, status=p.status, amount=p.amount, phone=mask_msisdn(p.phone_number),
        checkout_request_id=mask_msisdns_in(p.checkout_request_id) if p.checkout_request_id
        else None,
        age_s=round((now - p.created_at).total_seconds(), 3), next_query_at=p.next_query_at,
        query_attempts=p.query_attempts, push_attempts=p.push_attempts,
    )  # fmt: skip


# --- One payment in detail (`khalex-pay payments show`) ------------------------------------


@dataclass(frozen=True)
class PaymentDetails:
    payment: PaymentRecord
    events: list[dict[str, Any]]
    inbox: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]


def details(conn: sa.Connection, ref: str) -> PaymentDetails | None:
    """Payment `ref` (id or CheckoutRequestID) with everything recorded about it."""
    record = payments.find(conn, ref)
    if record is None:
        return None
    return PaymentDetails(
        payment=record,
        events=payments.events(conn, record.id),
        inbox=inbox.for_payment(conn, record.id, record.callback_token, record.checkout_request_id),
        exchanges=exchanges.for_payment(conn, record.id),
    )


_EMAIL = re.compile(r"^(.)[^@]*(@.*)$")


def mask_email(email: str) -> str:
    """`w***@example.com`: enough for an operator to recognise, not to write to."""
    return _EMAIL.sub(r"\1***\2", email) if "@" in email else "***"


# --- Query now (`khalex-pay payments requery`) ----------------------------------------------


@dataclass(frozen=True)
class Requery:
    before: PaymentRecord
    after: PaymentRecord
    answer: dict[str, Any] | None  # the query's exchange row; None when none was sent


def requery(c: Container, ref: str) -> Requery | None:
    """Run the STK query for payment `ref` now, exactly as the reconciliation job would.

    Whether to ask at all stays `reconciliation.query_payment`'s decision (pending, or
    expired but still watched); the new exchange row tells whether it did.
    """
    with c.engine.connect() as conn:
        before = payments.find(conn, ref)
        seen = {r["id"] for r in exchanges.for_payment(conn, before.id)} if before else set()
    if before is None:
        return None
    if before.checkout_request_id is not None:
        reconciliation.query_payment(c, before.id)
    with c.engine.connect() as conn:
        after = payments.get(conn, before.id)
        rows = exchanges.for_payment(conn, before.id)
    assert after is not None
    sent = [r for r in rows if r["operation"] == "stk_query" and r["id"] not in seen]
    return Requery(before, after, sent[-1] if sent else None)

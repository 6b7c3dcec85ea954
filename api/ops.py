"""The operators' endpoints: `/metrics` (for scrapers: open, or METRICS_TOKEN) and
`/api/ops/*` (ops token).

Everything is read at request time from the database and the broker, so any API process
answers for the whole system.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Controller, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.types import ControllerRouterHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry

from api import openapi_docs as docs
from api import ops_page
from api.auth import require_ops
from api.callers import bearer, unauthenticated
from api.errors import ApiError
from api.types import AnyRequest
from operations import ops, paybill
from operations.dlq import (
    LIST_LIMIT,
    BrokerUnavailable,
    DeadLetter,
    QueueReader,
    QueueStats,
    dead_deliveries,
    queue_reader,
)
from operations.metrics import build_registry
from operations.ops import StuckPayment, WindowSummary
from payments import orders
from payments.container import Container
from store.db import utcnow


@dataclass(frozen=True)
class Ops:
    """What the operators' endpoints read: the container, the broker's queues, the metrics."""

    container: Container
    queues: QueueReader
    registry: CollectorRegistry


#: The per-app `Ops`, injected by name.
OpsDeps = NamedDependency[Ops]


def routes(
    container: Container, queues: QueueReader | None = None
) -> list[ControllerRouterHandler]:
    """The operators' handlers for one app: metrics, the guarded ops API and the page.

    `queues` reads the broker; by default Redis when configured, else the dev stub broker.
    """
    reader = queues or queue_reader(container.settings)
    ops_deps = Ops(container, reader, build_registry(container.engine, reader))
    provide = {"ops_deps": Provide(lambda: ops_deps, sync_to_thread=False)}
    guarded = Router(
        path="/api/ops",
        route_handlers=[OpsController],
        guards=[
            require_ops(
                ops_deps.container.settings.jwt_secret,
                ops_deps.container.settings.ops_token_max_hours,
            )
        ],
        dependencies=provide,
    )
    scrape = Router(path="/", route_handlers=[metrics], dependencies=provide)
    return [guarded, scrape, ops_page.page]


@get("/metrics", sync_to_thread=True, tags=["operations"], **docs.METRICS)
def metrics(request: AnyRequest, ops_deps: OpsDeps) -> Response[bytes]:
    """Prometheus text, computed at scrape time from the database and the broker.

    With METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`.
    """
    expected = ops_deps.container.settings.metrics_token
    if expected:
        given = bearer(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise unauthenticated("/metrics needs Authorization: Bearer <METRICS_TOKEN>.")
    # As a header: Litestar would append a second charset to a text media type.
    return Response(
        generate_latest(ops_deps.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


class OpsController(Controller):
    path = "/"
    tags = ["operations"]  # noqa: RUF012 - Litestar declares it an instance attribute

    @get("/queues", sync_to_thread=True, **docs.OPS_QUEUES)
    def queues(self, ops_deps: OpsDeps) -> dict[str, object]:
        """Each queue's ready depth, delayed messages, dead letters and oldest wait."""
        with _broker_errors():
            stats = ops_deps.queues.stats()
        return {"queues": [_queue(q) for q in stats]}

    @get("/summary", sync_to_thread=True, **docs.OPS_SUMMARY)
    def summary(self, ops_deps: OpsDeps) -> dict[str, object]:
        """Success rate, processing times, failure reasons and counts: last hour and day."""
        now = utcnow()
        with ops_deps.container.engine.connect() as conn:
            windows = ops.summary(conn, now)
        return {"generatedAt": _iso(now), **{k: _window(w) for k, w in windows.items()}}

    @get("/stuck", sync_to_thread=True, **docs.OPS_STUCK)
    def stuck(self, ops_deps: OpsDeps) -> dict[str, object]:
        """Pending payments older than RECONCILE_AFTER_S, oldest first."""
        after_s = ops_deps.container.settings.reconcile_after_s
        with ops_deps.container.engine.connect() as conn:
            total, found = ops.stuck(conn, after_s)
        return {"olderThanSeconds": after_s, "count": total, "payments": [_stuck(p) for p in found]}

    @get("/refunds-due", sync_to_thread=True, **docs.OPS_REFUNDS_DUE)
    def refunds_due(
        self,
        ops_deps: OpsDeps,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = LIST_LIMIT,
    ) -> dict[str, object]:
        """Orders that owe a customer money back (a late or second success), newest first."""
        page = orders.list_orders(ops_deps.container, refund_due=True, limit=limit)
        return {
            "count": len(page.orders),
            "orders": [
                {"orderId": v.order.id, "status": v.order.status,
                 "totalAmount": v.order.total_amount, "paymentId": v.order.paid_by_payment_id,
                 "refundPaymentIds": v.order.refund_payment_ids,
                 "updatedAt": _iso(v.order.updated_at)}
                for v in page.orders
            ],
        }  # fmt: skip

    @get("/paybill", sync_to_thread=True, **docs.OPS_PAYBILL)
    def paybill_payments(
        self,
        ops_deps: OpsDeps,
        # `state` is a name Litestar keeps for itself: read the query key into another.
        wanted: Annotated[str | None, QueryParameter(name="state", max_length=16)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = paybill.DEFAULT_LIMIT,
    ) -> dict[str, object]:
        """PayBill (C2B) confirmations, newest first; by default those that paid no order
        (unmatched, refund due, untrusted). `state` picks one state instead."""
        state = wanted
        if state is not None and state not in paybill.STATES:
            raise ApiError(
                400, "invalid_state", f"state must be one of {', '.join(paybill.STATES)}.",
                "state",
            )  # fmt: skip
        if state is None:
            found = paybill.listing(ops_deps.container, limit=limit)
        else:  # any one state, of validations too
            found = paybill.listing(ops_deps.container, states=(state,), kind=None, limit=limit)
        return {"count": len(found), "payments": found}

    @get("/dead-letters", sync_to_thread=True, **docs.OPS_DEAD_LETTERS)
    def dead_letters(
        self,
        ops_deps: OpsDeps,
        queue: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = LIST_LIMIT,
    ) -> dict[str, object]:
        """Dead-lettered messages per queue (ids only), and the poison guard's records."""
        reader = ops_deps.queues
        names = reader.queues
        if queue is not None and queue not in names:
            raise ApiError(404, "queue_not_found", f"No queue {queue!r}.", "queue")
        with _broker_errors():
            letters = reader.dead_letters(queue, limit)
        with ops_deps.container.engine.connect() as conn:
            deliveries = dead_deliveries(conn, limit)
        return {
            "queues": [
                {"name": name, "messages": [_letter(m) for m in letters if m.queue == name]}
                for name in names
                if queue in (None, name)
            ],
            "deliveries": [_delivery(d) for d in deliveries],
        }


@contextmanager
def _broker_errors() -> Iterator[None]:
    try:
        yield
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", str(exc), headers={"Retry-After": "5"}) from exc


# --- Presenters (camelCase, as the rest of the API) ----------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _queue(q: QueueStats) -> dict[str, object]:
    return {
        "name": q.name, "depth": q.depth, "delayed": q.delayed,
        "deadLettered": q.dead_lettered, "oldestAgeSeconds": q.oldest_age_s,
    }  # fmt: skip


def _window(w: WindowSummary) -> dict[str, object]:
    return {
        "initiated": w.initiated, "pending": w.pending, "completed": w.completed,
        "failed": w.failed, "cancelled": w.cancelled, "final": w.final,
        "lateSuccesses": w.late_successes, "successRate": w.success_rate,
        "abandonment": w.abandonment, "failureReasons": dict(sorted(w.failure_reasons.items())),
        "processingSeconds": {
            "count": len(w.durations),
            "median": ops.percentile(w.durations, 50),
            "p95": ops.percentile(w.durations, 95),
        },
        "processingBuckets": [{"le": le, "count": n} for le, n in w.buckets()],
    }  # fmt: skip


def _stuck(p: StuckPayment) -> dict[str, object]:
    return {
        "paymentId": p.id, "status": p.status, "amount": p.amount, "phoneNumber": p.phone,
        "checkoutRequestId": p.checkout_request_id, "ageSeconds": p.age_s,
        "nextQueryAt": _iso(p.next_query_at), "queryAttempts": p.query_attempts,
        "pushAttempts": p.push_attempts,
    }  # fmt: skip


def _letter(m: DeadLetter) -> dict[str, object]:
    return {
        "messageId": m.message_id, "entryId": m.entry_id, "actor": m.actor, "args": m.args,
        "deadLetteredAt": _iso(m.dead_lettered_at), "retries": m.retries, "error": m.error,
    }  # fmt: skip


def _delivery(d: dict[str, object]) -> dict[str, object]:
    return {
        "messageId": d["message_id"], "queue": d["queue"], "actor": d["actor"], "args": d["args"],
        "started": d["started"], "finished": d["finished"],
        "deadLetteredAt": _iso(d["dead_lettered_at"]),  # type: ignore[arg-type]
        "lastError": d["last_error"],
    }  # fmt: skip

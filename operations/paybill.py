"""The operators' view of PayBill (C2B) payments: above all, the money that paid no order."""

from __future__ import annotations

from datetime import datetime

from payments.container import Container
from store import c2b

#: What `GET /api/ops/paybill` and `khalex-pay c2b list` show unless told otherwise.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Every state a stored request can be in.
STATES = (
    c2b.RECEIVED, c2b.MATCHED, c2b.REFUND_DUE, c2b.UNMATCHED, c2b.DUPLICATE, c2b.UNTRUSTED,
    c2b.REJECTED, c2b.ACCEPTED, c2b.DECLINED,
)  # fmt: skip


def listing(
    c: Container,
    *,
    states: tuple[str, ...] | None = c2b.NEEDS_OPERATOR,
    kind: str | None = c2b.CONFIRMATION,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, object]]:
    """The newest PayBill requests in `states` (default: those a person must look at).

    Ids, receipts, references, amounts and states only: the payer's number and names stay in
    the stored raw body.
    """
    with c.engine.connect() as conn:
        found = c2b.page(conn, states=states, kind=kind, limit=max(1, min(limit, MAX_LIMIT)))
    return [present(r) for r in found]


def present(r: c2b.C2bRecord) -> dict[str, object]:
    return {
        "id": r.id, "kind": r.kind, "receivedAt": _iso(r.received_at), "receipt": r.trans_id,
        "accountReference": r.bill_ref_number, "amount": r.amount, "state": r.state,
        "reason": r.reason, "orderId": r.order_id, "paymentId": r.payment_id,
        "resultCode": r.result_code, "processedAt": _iso(r.processed_at),
    }  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

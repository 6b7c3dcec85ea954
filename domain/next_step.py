"""What the shop's page should do next about a payment, and how long a poller should wait.

Pure: derived from the payment's state and failure reason only (CONTRACT §11). The page
shows `nextAction`; `pollAfterMs` paces a poller without an event stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.payment import Status

Action = Literal["wait_for_pin", "retry", "pay_by_paybill", "none"]

#: While the push is being sent or the prompt is open, answers come within seconds.
POLL_PROMPT_MS = 2_000
#: The push's answer was lost: reconciliation (STK queries) decides, which takes longer.
POLL_RECONCILING_MS = 5_000

#: Failures the customer can fix by trying again (another PIN, a top-up, a free phone).
RETRY_REASONS = frozenset(
    {
        "insufficient_funds",
        "cancelled_by_user",
        "wrong_pin",
        "subscriber_busy",
        "duplicate_payment_blocked",
        "transaction_expired",
        "invalid_phone_number",
        "mpesa_unavailable",
    }
)
#: The prompt never reached the customer (or went unanswered): paying by PayBill still works.
PAYBILL_REASONS = frozenset(
    {
        "timeout",
        "phone_unreachable",
        "prompt_not_delivered",
        "push_refused",
        "merchant_misconfigured",
        "mpesa_error",
    }
)


@dataclass(frozen=True)
class NextStep:
    action: Action
    poll_after_ms: int  # 0 when the state is final: nothing more to wait for


def next_step(status: Status, failure_reason: str | None) -> NextStep:
    """The page's next step for a payment in `status` that failed for `failure_reason`.

    Failures outside both sets (amount_mismatch, pin_locked, limits) leave the shopper
    nothing to do here: `none`; the message tells them why.
    """
    if status is Status.UNKNOWN:
        return NextStep("wait_for_pin", POLL_RECONCILING_MS)
    if status in (Status.CREATED, Status.SENDING, Status.PUSHED):
        return NextStep("wait_for_pin", POLL_PROMPT_MS)
    if status is Status.COMPLETED:
        return NextStep("none", 0)
    if status is Status.CANCELLED or failure_reason in RETRY_REASONS:
        return NextStep("retry", 0)
    if failure_reason in PAYBILL_REASONS:
        return NextStep("pay_by_paybill", 0)
    return NextStep("none", 0)

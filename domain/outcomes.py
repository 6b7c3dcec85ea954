"""What a Daraja ResultCode means for a payment (DARAJA.md §5).

We map on the code only: the same code arrives with different ResultDesc texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The four things a ResultCode can tell us."""

    SUCCESS = "success"
    CANCELLED = "cancelled"
    FAILED = "failed"
    NOT_YET = "not_yet"  # still being processed: ask again later


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str | None  # snake_case failure reason, None on success or not-yet
    message: str  # what to tell the customer
    final_in_query: bool = True  # may an STK *query* answer with this code fail a payment?


#: The only success code.
SUCCESS_CODE = 0
#: Query only: "The transaction is still under processing" (HTTP 200).
STILL_PROCESSING_CODE = 4999

_PAID = Outcome(Kind.SUCCESS, None, "Payment received. Thank you!")
_NOT_YET = Outcome(Kind.NOT_YET, None, "Waiting for you to enter your M-Pesa PIN.", False)

_OUTCOMES: dict[int, Outcome] = {
    0: _PAID,
    1: Outcome(Kind.FAILED, "insufficient_funds", "Your M-Pesa balance is too low to pay."),
    2: Outcome(Kind.FAILED, "amount_below_minimum", "The amount is below M-Pesa's minimum."),
    3: Outcome(Kind.FAILED, "amount_above_maximum", "The amount is above M-Pesa's limit."),
    4: Outcome(Kind.FAILED, "daily_limit_exceeded", "This would exceed your M-Pesa daily limit."),
    8: Outcome(Kind.FAILED, "merchant_limit_reached", "The shop cannot receive this payment now."),
    17: Outcome(
        Kind.FAILED, "duplicate_payment_blocked", "M-Pesa blocked a repeat payment; try in 2 min."
    ),
    26: Outcome(Kind.FAILED, "mpesa_unavailable", "M-Pesa is busy. Please try again shortly."),
    1001: Outcome(
        Kind.FAILED, "subscriber_busy", "Another M-Pesa request is open on your phone; try again."
    ),
    1019: Outcome(Kind.FAILED, "transaction_expired", "The M-Pesa request expired."),
    1025: Outcome(Kind.FAILED, "mpesa_unavailable", "M-Pesa could not send the prompt."),
    1032: Outcome(Kind.CANCELLED, "cancelled_by_user", "You cancelled the M-Pesa request."),
    1036: Outcome(Kind.FAILED, "prompt_not_delivered", "The prompt did not reach your phone."),
    1037: Outcome(Kind.FAILED, "phone_unreachable", "We could not reach your phone."),
    1101: Outcome(Kind.FAILED, "mpesa_unavailable", "M-Pesa could not send the prompt."),
    1102: Outcome(Kind.FAILED, "mpesa_unavailable", "M-Pesa could not send the prompt."),
    2001: Outcome(Kind.FAILED, "wrong_pin", "The M-Pesa PIN was wrong."),
    2028: Outcome(Kind.FAILED, "merchant_misconfigured", "The shop's M-Pesa setup refused this."),
    8006: Outcome(Kind.FAILED, "pin_locked", "Your M-Pesa PIN is locked; call Safaricom."),
    9999: Outcome(Kind.FAILED, "mpesa_unavailable", "M-Pesa could not send the prompt."),
    STILL_PROCESSING_CODE: _NOT_YET,
}

#: Unknown codes fail a payment from a callback (never paid), but a query must not act on them.
_UNKNOWN = Outcome(Kind.FAILED, "mpesa_error", "M-Pesa could not complete the payment.", False)


def outcome_of(result_code: int) -> Outcome:
    """The outcome Daraja's `result_code` stands for; unknown codes are failures, never paid."""
    return _OUTCOMES.get(result_code, _UNKNOWN)


#: Customer messages for failures that do not come from a ResultCode.
REASON_MESSAGES: dict[str, str] = {
    "timeout": "We did not hear back from M-Pesa in time. If you paid, we will confirm it.",
    "amount_mismatch": "M-Pesa reported a different amount; the shop will contact you.",
    "invalid_phone_number": "M-Pesa refused the phone number.",
    "push_refused": "M-Pesa refused the payment request.",
    "mpesa_unavailable": "M-Pesa is unavailable right now. Please try again shortly.",
}


def message_for_reason(reason: str) -> str:
    """The customer message for a failure `reason`, from either table."""
    if reason in REASON_MESSAGES:
        return REASON_MESSAGES[reason]
    for outcome in _OUTCOMES.values():
        if outcome.reason == reason:
            return outcome.message
    return _UNKNOWN.message

"""The page's next step and poll pace follow from status and failure reason alone."""

from __future__ import annotations

import pytest

from domain.next_step import POLL_PROMPT_MS, POLL_RECONCILING_MS, next_step
from domain.payment import Status


@pytest.mark.parametrize("status", [Status.CREATED, Status.SENDING, Status.PUSHED])
def test_an_open_prompt_asks_for_the_pin_and_a_short_poll(status: Status) -> None:
    step = next_step(status, None)
    assert (step.action, step.poll_after_ms) == ("wait_for_pin", POLL_PROMPT_MS)


def test_a_lost_push_answer_is_reconciled_so_polls_wait_longer() -> None:
    step = next_step(Status.UNKNOWN, None)
    assert (step.action, step.poll_after_ms) == ("wait_for_pin", POLL_RECONCILING_MS)
    assert POLL_RECONCILING_MS > POLL_PROMPT_MS


def test_a_completed_payment_needs_nothing_more() -> None:
    step = next_step(Status.COMPLETED, None)
    assert (step.action, step.poll_after_ms) == ("none", 0)


@pytest.mark.parametrize("reason", ["timeout", "phone_unreachable", "prompt_not_delivered"])
def test_a_prompt_that_never_reached_the_customer_points_to_paybill(reason: str) -> None:
    step = next_step(Status.FAILED, reason)
    assert (step.action, step.poll_after_ms) == ("pay_by_paybill", 0)


@pytest.mark.parametrize("reason", ["insufficient_funds", "wrong_pin", "subscriber_busy"])
def test_failures_the_customer_can_fix_offer_a_retry(reason: str) -> None:
    assert next_step(Status.FAILED, reason).action == "retry"


def test_a_cancelled_prompt_offers_a_retry() -> None:
    assert next_step(Status.CANCELLED, "cancelled_by_user").action == "retry"


@pytest.mark.parametrize("reason", ["amount_mismatch", "pin_locked", None])
def test_failures_the_page_cannot_help_with_offer_nothing(reason: str | None) -> None:
    step = next_step(Status.FAILED, reason)
    assert (step.action, step.poll_after_ms) == ("none", 0)

"""What each Daraja ResultCode means for a payment (DARAJA.md §5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.outcomes import (
    REASON_MESSAGES,
    STILL_PROCESSING_CODE,
    SUCCESS_CODE,
    Kind,
    message_for_reason,
    outcome_of,
)

pytestmark = pytest.mark.unit

#: DARAJA.md §5, code by code: (code, kind, failure reason).
CATALOGUE = [
    (1, Kind.FAILED, "insufficient_funds"),
    (2, Kind.FAILED, "amount_below_minimum"),
    (3, Kind.FAILED, "amount_above_maximum"),
    (4, Kind.FAILED, "daily_limit_exceeded"),
    (8, Kind.FAILED, "merchant_limit_reached"),
    (17, Kind.FAILED, "duplicate_payment_blocked"),
    (26, Kind.FAILED, "mpesa_unavailable"),
    (1001, Kind.FAILED, "subscriber_busy"),
    (1019, Kind.FAILED, "transaction_expired"),
    (1025, Kind.FAILED, "mpesa_unavailable"),
    (1032, Kind.CANCELLED, "cancelled_by_user"),
    (1036, Kind.FAILED, "prompt_not_delivered"),
    (1037, Kind.FAILED, "phone_unreachable"),
    (1101, Kind.FAILED, "mpesa_unavailable"),
    (1102, Kind.FAILED, "mpesa_unavailable"),
    (2001, Kind.FAILED, "wrong_pin"),
    (2028, Kind.FAILED, "merchant_misconfigured"),
    (8006, Kind.FAILED, "pin_locked"),
    (9999, Kind.FAILED, "mpesa_unavailable"),
]
KNOWN_CODES = {SUCCESS_CODE, STILL_PROCESSING_CODE, *(code for code, _, _ in CATALOGUE)}


def test_result_code_0_is_paid_with_no_failure_reason() -> None:
    outcome = outcome_of(SUCCESS_CODE)

    assert (outcome.kind, outcome.reason) == (Kind.SUCCESS, None)
    assert outcome.message == "Payment received. Thank you!"


@pytest.mark.parametrize(("code", "kind", "reason"), CATALOGUE)
def test_catalogued_code_maps_to_its_kind_and_reason(code: int, kind: Kind, reason: str) -> None:
    outcome = outcome_of(code)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert outcome.message


@pytest.mark.parametrize(("code", "kind", "reason"), CATALOGUE)
def test_catalogued_failure_is_final_when_a_query_reports_it(
    code: int, kind: Kind, reason: str
) -> None:
    assert outcome_of(code).final_in_query is True


def test_4999_means_still_processing_and_never_final_in_a_query() -> None:
    outcome = outcome_of(STILL_PROCESSING_CODE)

    assert (outcome.kind, outcome.reason, outcome.final_in_query) == (Kind.NOT_YET, None, False)


@pytest.mark.parametrize("code", [-1, 5, 1030, 4998, 5000, 10_000, 500_001_001])
def test_unknown_code_is_a_failure_a_query_must_not_act_on(code: int) -> None:
    outcome = outcome_of(code)

    assert (outcome.kind, outcome.reason, outcome.final_in_query) == (
        Kind.FAILED, "mpesa_error", False,
    )  # fmt: skip


@given(st.integers().filter(lambda code: code != SUCCESS_CODE))
def test_only_result_code_0_ever_means_paid(code: int) -> None:
    assert outcome_of(code).kind is not Kind.SUCCESS


@given(st.integers().filter(lambda code: code not in KNOWN_CODES))
def test_every_uncatalogued_code_reads_as_mpesa_error(code: int) -> None:
    assert outcome_of(code).reason == "mpesa_error"


@pytest.mark.parametrize(("reason", "message"), sorted(REASON_MESSAGES.items()))
def test_reasons_outside_the_catalogue_have_their_own_message(reason: str, message: str) -> None:
    assert message_for_reason(reason) == message


@pytest.mark.parametrize(("code", "kind", "reason"), CATALOGUE)
def test_every_failure_reason_has_a_customer_message(code: int, kind: Kind, reason: str) -> None:
    expected = REASON_MESSAGES.get(reason, outcome_of(code).message)

    assert message_for_reason(reason) == expected


def test_unknown_reason_gets_the_generic_message() -> None:
    assert message_for_reason("no_such_reason") == "M-Pesa could not complete the payment."
    assert message_for_reason("mpesa_error") == "M-Pesa could not complete the payment."

"""Whole-shilling amounts: what a shop may ask for, and whether M-Pesa paid exactly that."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MAX_AMOUNT, MIN_AMOUNT, InvalidAmount, amount_matches, parse_amount

pytestmark = pytest.mark.unit


def test_limits_are_one_shilling_to_mpesas_per_transaction_maximum() -> None:
    assert (MIN_AMOUNT, MAX_AMOUNT) == (1, 250_000)


@pytest.mark.parametrize(
    ("value", "shillings"),
    [
        (1, 1), (1500, 1500), (250_000, 250_000),
        (1500.0, 1500), (Decimal("1500"), 1500), (Decimal("1500.00"), 1500),
        (Decimal("1.5E+3"), 1500),
    ],
)  # fmt: skip
def test_whole_shillings_are_accepted_as_an_int(value: object, shillings: int) -> None:
    parsed = parse_amount(value)

    assert parsed == shillings
    assert type(parsed) is int


@given(st.integers(MIN_AMOUNT, MAX_AMOUNT))
def test_every_amount_in_range_is_accepted_unchanged(amount: int) -> None:
    assert parse_amount(amount) == amount
    assert parse_amount(float(amount)) == amount
    assert parse_amount(Decimal(amount)) == amount


@pytest.mark.parametrize("value", [0, -1, 0.0, Decimal("-0"), -250_000])
def test_amounts_below_one_shilling_are_refused(value: object) -> None:
    with pytest.raises(InvalidAmount, match="at least 1 KES"):
        parse_amount(value)


@pytest.mark.parametrize("value", [250_001, 250_001.0, Decimal("1E+999999999"), 10**100])
def test_amounts_above_the_mpesa_limit_are_refused(value: object) -> None:
    with pytest.raises(InvalidAmount, match="at most 250,000 KES"):
        parse_amount(value)


@pytest.mark.parametrize(
    "value",
    [1500.5, 0.5, 1500.0000001, Decimal("1500.01"), Decimal("0.1"), float("nan"), float("inf"),
     Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")],
)  # fmt: skip
def test_fractions_and_non_numbers_are_refused_not_rounded(value: object) -> None:
    with pytest.raises(InvalidAmount, match="whole number of shillings"):
        parse_amount(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_amounts(value: bool) -> None:
    with pytest.raises(InvalidAmount, match="whole number of shillings"):
        parse_amount(value)


@pytest.mark.parametrize("value", ["1500", "1500.00", "", "KES 1500"])
def test_strings_are_refused_with_a_clear_message(value: str) -> None:
    with pytest.raises(InvalidAmount, match="not a string"):
        parse_amount(value)


def test_missing_amount_is_refused_as_required() -> None:
    with pytest.raises(InvalidAmount, match="required"):
        parse_amount(None)


@pytest.mark.parametrize("value", [[1500], {"amount": 1500}, b"1500", 1500j])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidAmount, match="whole number of shillings"):
        parse_amount(value)


def test_invalid_amount_is_a_value_error() -> None:
    assert issubclass(InvalidAmount, ValueError)


@pytest.mark.parametrize("reported", ["1500", "1500.00", "1500.0000", "1.5E+3"])
def test_reported_amount_matches_the_amount_asked_however_written(reported: str) -> None:
    assert amount_matches(1500, Decimal(reported))


@pytest.mark.parametrize(
    "reported", ["1499", "1501", "1500.01", "1499.999", "-1500", "0", "NaN", "sNaN", "Infinity"]
)
def test_any_other_reported_amount_does_not_match(reported: str) -> None:
    assert not amount_matches(1500, Decimal(reported))


@given(st.integers(MIN_AMOUNT, MAX_AMOUNT), st.integers(0, 4))
def test_the_amount_asked_matches_with_any_number_of_decimal_places(
    asked: int, places: int
) -> None:
    assert amount_matches(asked, Decimal(asked).quantize(Decimal(1).scaleb(-places)))


@given(st.integers(MIN_AMOUNT, MAX_AMOUNT), st.decimals(allow_nan=True, allow_infinity=True))
def test_amount_matches_never_raises_and_never_matches_another_value(
    asked: int, reported: Decimal
) -> None:
    if amount_matches(asked, reported):  # even a signalling NaN must not raise here
        assert reported.as_integer_ratio() == (asked, 1)

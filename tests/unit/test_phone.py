"""Normalising, masking and scrubbing Kenyan mobile numbers."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.phone import InvalidPhoneNumber, mask_msisdn, mask_msisdns_in, normalise_msisdn

pytestmark = pytest.mark.unit

subscribers = st.from_regex(r"[71][0-9]{8}", fullmatch=True)  # the 9 national digits


def forms_of(national: str) -> list[str]:
    """Ways customers write the mobile number whose national digits are `national`."""
    spaced = f"{national[:3]} {national[3:6]} {national[6:]}"
    return [
        "254" + national, "+254" + national, "0" + national, national,
        "0" + spaced, "+254 " + spaced, f"254-{national[:3]}-{national[3:6]}-{national[6:]}",
        f"(+254) {national[:3]}-{national[3:6]} {national[6:]}",
    ]  # fmt: skip


# normalise_msisdn ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "0712345678", "712345678", "+254712345678", "254712345678",
        "0712 345 678", "0712-345-678", " 0712345678 ", "+254 712 345 678", "254-712-345-678",
        "(+254) 712-345 678", "(254)712345678", "07 12 34 56 78", "0712\u00a0345\u00a0678",
        "0712\u2013345\u2013678", "+254\t712345678",
    ],
)  # fmt: skip
def test_every_contract_form_of_a_07_number_normalises_to_2547(raw: str) -> None:
    assert normalise_msisdn(raw) == "254712345678"


@pytest.mark.parametrize(
    "raw", ["0112345678", "112345678", "+254112345678", "254112345678", "0112 345 678"]
)
def test_every_contract_form_of_a_01_number_normalises_to_2541(raw: str) -> None:
    assert normalise_msisdn(raw) == "254112345678"


@given(subscribers, st.data())
def test_all_forms_of_one_number_normalise_to_the_same_msisdn(
    national: str, data: st.DataObject
) -> None:
    raw = data.draw(st.sampled_from(forms_of(national)))

    assert normalise_msisdn(raw) == "254" + national


@given(subscribers)
def test_normalising_a_normalised_number_changes_nothing(national: str) -> None:
    msisdn = normalise_msisdn("0" + national)

    assert normalise_msisdn(msisdn) == msisdn
    assert re.fullmatch(r"254[71][0-9]{8}", msisdn)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" - ", "empty"),
        ("+255712345678", "Kenyan (+254)"),
        ("+1 415 555 2671", "Kenyan (+254)"),
        ("+243812345678", "Kenyan (+254)"),
        ("255712345678", "Kenyan (254)"),
        ("071234567", "has 9 digits"),
        ("07123456789", "has 11 digits"),
        ("2547123456789", "has 13 digits"),
        ("+25471234567", "has 11 digits"),
        ("+2540712345678", "has 13 digits"),
        ("12345", "has 5 digits"),
        ("0712345abc", "only the digits"),
        ("phone", "only the digits"),
        ("0712.345.678", "only the digits"),
        ("07123+45678", "only the digits"),
        ("\u0660\u0667\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "only the digits"),
        ("0202123456", "landlines"),
        ("+254202123456", "landlines"),
        ("254412345678", "landlines"),
        ("812345678", "mobile"),
    ],
)
def test_unusable_numbers_are_refused_with_a_reason(raw: str, complaint: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match=re.escape(complaint)):
        normalise_msisdn(raw)


@pytest.mark.parametrize("raw", [None, 712345678, 254712345678.0, b"0712345678"])
def test_a_number_that_is_not_a_string_is_refused(raw: object) -> None:
    with pytest.raises(InvalidPhoneNumber, match="must be a string"):
        normalise_msisdn(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["+255798765432", "0209876543", "07987654321", "0798765abc"])
def test_refusals_never_echo_the_number(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalise_msisdn(raw)

    assert re.sub(r"[^0-9]", "", raw)[:6] not in str(refused.value)


def test_invalid_phone_number_is_a_value_error() -> None:
    assert issubclass(InvalidPhoneNumber, ValueError)


# mask_msisdn ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["254712345678", "0712345678", "+254 712 345 678"])
def test_mask_keeps_the_first_four_and_last_four_digits(raw: str) -> None:
    assert mask_msisdn(raw) == "2547****5678"


def test_mask_of_an_01_number_keeps_its_prefix() -> None:
    assert mask_msisdn("254112345678") == "2541****5678"


@pytest.mark.parametrize("raw", ["", "hello", "+255712345678", "2547****5678", "12345678901234"])
def test_mask_of_something_that_is_not_a_kenyan_mobile_shows_nothing_of_it(raw: str) -> None:
    assert mask_msisdn(raw) == "****"


# mask_msisdns_in -----------------------------------------------------------------------------

CHECKOUT_ID = "ws_CO_26112026123456789712345678"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("254712345678", "2547****5678"),
        ("254112345678", "2541****5678"),
        ("+254712345678", "+2547****5678"),
        ("00254712345678", "002547****5678"),
        ("0712345678", "07****5678"),
        ("0112345678", "01****5678"),
        ("712345678", "7****5678"),
        ("call +254 712 345 678 now", "call +2547****5678 now"),
        ("call 0712-345-678 now", "call 07****5678 now"),
        ("call (+254) 712-345 678 now", "call +2547****5678 now"),
        ("call +254 (0) 712 345 678", "call +25407****5678"),
        ("+2540712345678", "+25407****5678"),
        ("phone=0712345678&amount=1500", "phone=07****5678&amount=1500"),
        ("msisdn254712345678x", "msisdn2547****5678x"),
        ("ref 99254712345678", "ref 992547****5678"),
        ("%2B254712345678", "%2B2547****5678"),
        (CHECKOUT_ID, "ws_CO_261120261234567897****5678"),
        ("ws_CO_12082024103757041726945514", "ws_CO_120820241037570417****5514"),
        ("ws_CO_1007202409152617172396192", "ws_CO_10072024091526171****6192"),
        ("ws_CO_1203202412345678254712345678", "ws_CO_12032024123456782547****5678"),
    ],
)  # fmt: skip
def test_free_text_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_msisdns_in(text) == masked


def test_numbers_in_a_logged_daraja_callback_are_masked() -> None:
    body = (
        f'{{"CheckoutRequestID": "{CHECKOUT_ID}", "CallbackMetadata": {{"Item": ['
        '{"Name": "Amount", "Value": 1.00}, {"Name": "TransactionDate", "Value": 20260712093015}, '
        '{"Name": "PhoneNumber", "Value": 254708374149}]}, "PartyA": "254712345678"}'
    )

    assert mask_msisdns_in(body) == (
        '{"CheckoutRequestID": "ws_CO_261120261234567897****5678", "CallbackMetadata": {"Item": ['
        '{"Name": "Amount", "Value": 1.00}, {"Name": "TransactionDate", "Value": 20260712093015}, '
        '{"Name": "PhoneNumber", "Value": 2547****4149}]}, "PartyA": "2547****5678"}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "amount=1500 KES, 250000 max",
        '"TransactionDate": 20260712093015',
        '"TransactionDate": 20191219102115',
        "Timestamp 20260107123456",
        "MerchantRequestID 29115-34620561-1",
        "ws_CO_DMZ_494039711_24052019235340366",
        "ws_CO_08052018140656765",
        "2026-07-12T09:30:15+03:00",
        "pid 4242 took 0.712345678 s",
        "receipt NLJ7RT61SV",
        "already masked 2547****5678 and 0712***678",
        "",
    ],
)
def test_text_without_a_phone_number_is_left_alone(text: str) -> None:
    assert mask_msisdns_in(text) == text


_NEITHER_DIGITS_NOR_WORD = st.text(
    alphabet=st.characters(exclude_categories=["Nd", "Cs"], exclude_characters="_-+( )"),
    max_size=20,
)


@given(subscribers, st.data(), _NEITHER_DIGITS_NOR_WORD, _NEITHER_DIGITS_NOR_WORD)
def test_no_form_of_a_number_survives_masking_anywhere_in_text(
    national: str, data: st.DataObject, before: str, after: str
) -> None:
    raw = data.draw(st.sampled_from(forms_of(national)))

    masked = mask_msisdns_in(before + raw + after)

    assert national not in re.sub(r"[ \-]", "", masked)
    assert masked.startswith(before)
    assert masked.endswith(after)


@given(subscribers, st.datetimes(), st.integers(0, 999), st.sampled_from(["", "254"]))
def test_no_number_survives_inside_a_checkout_request_id_and_its_date_stays(
    national: str, sent_at: datetime, millis: int, country: str
) -> None:
    date = sent_at.strftime("%d%m%Y")
    checkout_id = f"ws_CO_{date}{sent_at:%H%M%S}{millis:03d}{country}{national}"

    masked = mask_msisdns_in(f'{{"CheckoutRequestID": "{checkout_id}"}}')

    assert masked.endswith(f'{national[0]}****{national[-4:]}"}}')
    assert masked.startswith(f'{{"CheckoutRequestID": "ws_CO_{date}')


@given(st.text(max_size=60))
def test_masking_twice_is_masking_once(text: str) -> None:
    once = mask_msisdns_in(text)

    assert mask_msisdns_in(once) == once


@given(st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=60))
def test_text_without_digits_is_never_changed(text: str) -> None:
    assert mask_msisdns_in(text) == text


def test_payment_ids_stay_whole_even_when_they_hold_a_phone_like_run() -> None:
    payment_id = "9bc9fe1e-5eb9-4919-aa1c-a712345678ab"

    masked = mask_msisdns_in(f"payment {payment_id} for 0712345678")

    assert masked == f"payment {payment_id} for 07****5678"


def test_webhook_event_ids_stay_whole_even_when_they_hold_a_phone_like_run() -> None:
    # A real one, masked as `...bdc7****4237` before: its alert's redeliver command then named
    # no event.
    event_id = "msg_a7ccb299a7454107b901bdc784484237"

    masked = mask_msisdns_in(f"event {event_id} refused; call 0712345678")

    assert masked == f"event {event_id} refused; call 07****5678"


@pytest.mark.parametrize(
    "text",
    [
        "aaaaaaaaaaaaaaaaaaaa254712345678",  # 32 hex digits, but not a UUID's version/variant
        "abc254712345678def",
        "x-a7ccb299a7454107b901bdc784484237a",  # 33 hex digits: not a UUID
        "ref 25471234567814448888888888888888 x",  # 32 digits, a UUID's shape but no letter
    ],
)
def test_a_phone_number_among_hex_letters_is_still_masked(text: str) -> None:
    assert "****" in mask_msisdns_in(text)

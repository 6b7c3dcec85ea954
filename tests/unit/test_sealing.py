"""Sealing personal values: AES-GCM round trips, keys, tampering, and the raw-record walker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumbing import sealing
from plumbing.sealing import Keyring, SealingError
from store import raw

A, B = b"a" * 32, b"b" * 32
INDEX = b"i" * 32
RING = Keyring((A,), INDEX)


@pytest.fixture(autouse=True)
def ring() -> Iterator[Keyring]:
    before = sealing.current()
    sealing.install(RING)
    yield RING
    sealing.install(before)


@given(st.text())
def test_a_sealed_value_opens_to_itself_and_shows_nothing_of_it(text: str) -> None:
    sealed = RING.seal(text)

    assert sealed.startswith(f"kp1:{RING.current_id}:")
    assert RING.open(sealed) == text
    assert len(text) < 4 or text not in sealed.removeprefix(f"kp1:{RING.current_id}:")


def test_the_same_value_seals_differently_each_time() -> None:
    assert RING.seal("254712345678") != RING.seal("254712345678")


def test_a_value_that_is_not_sealed_is_legacy_clear_text_and_comes_back_as_it_is() -> None:
    assert RING.open("254712345678") == "254712345678"


def test_a_key_that_did_not_seal_a_value_cannot_open_it() -> None:
    sealed = Keyring((A,), INDEX).seal("Wanjiru")

    with pytest.raises(SealingError, match="no key"):
        Keyring((B,), INDEX).open(sealed)


def test_after_rotation_the_new_key_seals_and_the_old_one_still_opens() -> None:
    old = Keyring((A,), INDEX).seal("Wanjiru")
    rotated = Keyring((B, A), INDEX)

    assert rotated.open(old) == "Wanjiru"
    assert not rotated.is_current(old)
    assert rotated.is_current(rotated.seal("Wanjiru"))


@pytest.mark.parametrize("position", [-1, -10, 14])
def test_an_altered_sealed_value_is_refused(position: int) -> None:
    sealed = RING.seal("254712345678")
    flipped = "A" if sealed[position] != "A" else "B"

    with pytest.raises(SealingError):
        RING.open(sealed[:position] + flipped + sealed[position + 1 :])


def test_the_blind_index_is_stable_keyed_and_kind_specific() -> None:
    other = Keyring((A,), b"j" * 32)

    assert RING.blind_index("phone", "254712345678") == RING.blind_index("phone", "254712345678")
    assert RING.blind_index("phone", "254712345678") != other.blind_index("phone", "254712345678")
    assert RING.blind_index("phone", "x") != RING.blind_index("checkout", "x")
    assert Keyring((B, A), INDEX).blind_index("phone", "x") == RING.blind_index("phone", "x")


@pytest.mark.parametrize(
    ("data", "index", "says"),
    [
        ("", "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk=", "DATA_ENCRYPTION_KEYS"),
        ("bm90IDMyIGJ5dGVz", "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk=", "32 bytes"),
        ("YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=", "no!", "BLIND_INDEX_KEY"),
    ],
)
def test_bad_keys_are_refused_naming_the_setting(data: str, index: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Keyring.parse(data, index)


def test_several_data_keys_parse_in_order() -> None:
    a, b = sealing.new_key(), sealing.new_key()

    ring = Keyring.parse(f"{a}, {b}", sealing.new_key())

    assert len(ring.data_keys) == 2
    assert ring.current_id == sealing.key_id(ring.data_keys[0])


# --- The raw-record walker ---------------------------------------------------------------------

CALLBACK = {
    "Body": {"stkCallback": {
        "MerchantRequestID": "29115-34620561-1",
        "CheckoutRequestID": "ws_CO_26032026133641276708729173",
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 1500.0},
            {"Name": "MpesaReceiptNumber", "Value": "UJ22T8IYOU"},
            {"Name": "TransactionDate", "Value": 20261126102115},
            {"Name": "PhoneNumber", "Value": 254708729173},
        ]},
    }},
}  # fmt: skip


def test_a_callback_keeps_its_ids_codes_amounts_and_receipt_and_seals_the_number() -> None:
    stored = raw.seal_personal(json.dumps(CALLBACK))

    for kept in ("29115-34620561-1", "UJ22T8IYOU", "1500.0", "20261126102115", "ResultCode"):
        assert kept in stored
    assert "708729173" not in stored
    assert json.loads(raw.open_personal(stored)) == CALLBACK


def test_daraja_request_fields_and_c2b_names_are_sealed() -> None:
    body = {
        "PartyA": "254712345678", "PhoneNumber": "254712345678", "Amount": 1,
        "Timestamp": "20261130080000", "MSISDN": "254712345678", "FirstName": "Jane",
        "MiddleName": "W", "LastName": "Doe", "BillRefNumber": "order 0712 345 678",
    }  # fmt: skip

    sealed = raw.seal_tree(body)

    assert {k for k, v in sealed.items() if v == body[k]} == {"Amount", "Timestamp"}
    assert raw.open_tree(sealed) == body


def test_a_body_that_is_not_json_is_sealed_whole() -> None:
    text = '{"phoneNumber": "0712345678", "customerName": "Wanjiru",'

    stored = raw.seal_personal(text)

    assert sealing.is_sealed(stored)
    assert raw.open_personal(stored) == text


def test_walking_twice_changes_nothing_more() -> None:
    once = raw.seal_personal(json.dumps(CALLBACK))

    assert raw.seal_personal(once) == once


def test_a_body_nested_too_deep_to_walk_is_sealed_whole() -> None:
    deep = "[" * 5000 + '"0712345678"' + "]" * 5000

    assert raw.open_personal(raw.seal_personal(deep)) == deep
    assert "0712345678" not in raw.seal_personal(deep)


def _phone() -> st.SearchStrategy[str]:
    national = st.from_regex(r"[71][0-9]{8}", fullmatch=True)
    return national.flatmap(lambda n: st.sampled_from([
        f"0{n}", f"254{n}", n, f"+254 {n[:3]} {n[3:6]} {n[6:]}", f"0{n[:3]} {n[3:6]} {n[6:]}",
        f"+254-{n[:3]}-{n[3:]}", f"ws_CO_26032026133641276{n}", f"call me on 0{n} please",
    ]))  # fmt: skip


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(max_value=10**8 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@given(json_values, _phone(), st.text(max_size=10), st.data())
def test_a_phone_number_anywhere_in_a_json_body_is_sealed(
    tree: object, phone: str, key: str, data: st.DataObject
) -> None:
    body = {"wrapper": [tree, {key or "k": phone, phone: key}]}

    stored = raw.seal_personal(json.dumps(body))

    digits = phone[-9:] if phone[-9:].isdigit() else "".join(filter(str.isdigit, phone))[-9:]
    assert digits not in stored.replace(" ", "").replace("-", "")
    assert json.loads(raw.open_personal(stored)) == body


@given(st.emails())
def test_an_email_under_any_key_is_sealed(email: str) -> None:
    stored = raw.seal_personal(json.dumps({"productId": "x", "comment": f"write to {email}"}))

    assert email not in stored


def test_a_keyring_never_shows_its_keys() -> None:
    shown = repr(RING) + str(RING)

    assert "aaaa" not in shown
    assert "iiii" not in shown


def test_a_strangers_text_starting_like_a_sealed_value_is_sealed_and_read_back() -> None:
    body = {"kp1:": "kp1:", "note": "kp1:0000"}

    stored = raw.seal_personal(json.dumps(body))

    assert json.loads(raw.open_personal(stored)) == body


def test_a_strangers_well_formed_look_alike_of_a_sealed_value_is_read_back_as_sent() -> None:
    # Sealed under a key this keyring never had: shaped like ours, but it does not open.
    forged = Keyring((B,), INDEX).seal("0712345678")
    body = {"Body": {"note": forged, "ResultCode": 0}}

    stored = raw.seal_personal(json.dumps(body))

    assert json.loads(raw.open_personal(stored)) == body
    assert raw.open_personal(forged) == forged  # a whole body that is only a look-alike

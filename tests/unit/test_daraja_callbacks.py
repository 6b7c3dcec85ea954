"""Reading raw STK callback bodies, including the quirks of real-world payloads."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daraja.callbacks import MalformedCallback, parse_stk_callback

pytestmark = pytest.mark.unit

NAIROBI = ZoneInfo("Africa/Nairobi")

#: Daraja's documented success sample (DARAJA.md §4), byte for byte where it matters.
SUCCESS = b"""{"Body": {"stkCallback": {
  "MerchantRequestID": "29115-34620561-1",
  "CheckoutRequestID": "ws_CO_191220191020363925",
  "ResultCode": 0,
  "ResultDesc": "The service request is processed successfully.",
  "CallbackMetadata": {"Item": [
    {"Name": "Amount", "Value": 1.00},
    {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
    {"Name": "Balance"},
    {"Name": "TransactionDate", "Value": 20191219102115},
    {"Name": "PhoneNumber", "Value": 254708374149}]}}}}"""

#: A cancelled payment: no CallbackMetadata at all.
CANCELLED = b"""{"Body": {"stkCallback": {
  "MerchantRequestID": "f1e2-4b95-a71d-b30d3cdbb7a7942864",
  "CheckoutRequestID": "ws_CO_21072024125243250722943992",
  "ResultCode": 1032,
  "ResultDesc": "Request cancelled by user"}}}"""


def _success_with(items: list[dict[str, object]], result_code: object = 0) -> bytes:
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "m-1",
                    "CheckoutRequestID": "ws_CO_1",
                    "ResultCode": result_code,
                    "ResultDesc": "ok",
                    "CallbackMetadata": {"Item": items},
                }
            }
        }
    ).encode()


def test_documented_success_sample_is_read_completely() -> None:
    callback = parse_stk_callback(SUCCESS)
    assert callback.succeeded
    assert callback.merchant_request_id == "29115-34620561-1"
    assert callback.checkout_request_id == "ws_CO_191220191020363925"
    assert callback.result_desc == "The service request is processed successfully."
    assert callback.receipt == "NLJ7RT61SV"
    assert callback.phone == "254708374149"
    assert callback.transaction_date == datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)


def test_decimal_amount_keeps_its_written_precision() -> None:
    callback = parse_stk_callback(SUCCESS)
    assert callback.amount == Decimal("1.00")
    assert str(callback.amount) == "1.00"
    assert callback.amount == 1


def test_large_decimal_amount_does_not_pick_up_float_noise() -> None:
    raw = SUCCESS.replace(b'"Value": 1.00', b'"Value": 249999.00')
    assert str(parse_stk_callback(raw).amount) == "249999.00"


@pytest.mark.parametrize(
    "amount", [b"0", b"0.00", b"-5", b"250001", b"1.50", b"1e400", b'"NaN"', b"[1]", b"true"]
)
def test_amount_outside_whole_shillings_1_to_250000_is_refused(amount: bytes) -> None:
    raw = SUCCESS.replace(b'"Value": 1.00', b'"Value": ' + amount)

    with pytest.raises(MalformedCallback, match="Amount") as refused:
        parse_stk_callback(raw)
    assert refused.value.checkout_request_id == "ws_CO_191220191020363925"


@pytest.mark.parametrize(
    "code", [b"100000000000000000000", b"-99999999999", b'"1' + b"0" * 5000 + b'"']
)
def test_result_code_beyond_a_32_bit_integer_is_refused(code: bytes) -> None:
    raw = SUCCESS.replace(b'"ResultCode": 0', b'"ResultCode": ' + code)

    with pytest.raises(MalformedCallback, match="ResultCode"):
        parse_stk_callback(raw)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"ws_CO_191220191020363925"', b'"ws_CO_' + b"9" * 80 + b'"'),
        (b'"ws_CO_191220191020363925"', b'"ws_CO_\\u0000"'),
        (b'"29115-34620561-1"', b'"' + b"m" * 65 + b'"'),
        (b'"NLJ7RT61SV"', b'"' + b"R" * 33 + b'"'),
        (b'"NLJ7RT61SV"', b'"NLJ7 RT61\\u0000"'),
    ],
)
def test_ids_and_receipts_wider_than_their_columns_or_with_odd_characters_are_refused(
    old: bytes, new: bytes
) -> None:
    with pytest.raises(MalformedCallback):
        parse_stk_callback(SUCCESS.replace(old, new))


def test_nesting_deeper_than_python_allows_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedCallback, match="not JSON"):
        parse_stk_callback(b"[" * 200_000 + b"]" * 200_000)


def test_result_desc_keeps_no_nul_and_fits_its_column() -> None:
    raw = SUCCESS.replace(b'"The service request is processed successfully."',
                          b'"a\\u0000b' + b"x" * 400 + b'"')  # fmt: skip

    desc = parse_stk_callback(raw).result_desc

    assert "\x00" not in desc
    assert len(desc) == 255


def test_transaction_date_is_aware_and_in_nairobi() -> None:
    date = parse_stk_callback(SUCCESS).transaction_date
    assert date is not None
    assert date.utcoffset() is not None
    assert date.utcoffset().total_seconds() == 3 * 3600  # type: ignore[union-attr]


def test_balance_without_value_is_ignored() -> None:
    items: list[dict[str, object]] = [
        {"Name": "Balance"},
        {"Name": "Amount", "Value": 5},
        {"Name": "MpesaReceiptNumber", "Value": "QWE123RTY"},
    ]
    callback = parse_stk_callback(_success_with(items))
    assert callback.amount == Decimal(5)
    assert callback.transaction_date is None


def test_items_are_found_by_name_in_any_order() -> None:
    items: list[dict[str, object]] = [
        {"Name": "PhoneNumber", "Value": 254712345678},
        {"Name": "TransactionDate", "Value": "20240712153000"},
        {"Name": "MpesaReceiptNumber", "Value": "SGH12KL90P"},
        {"Name": "Amount", "Value": "1500.00"},
    ]
    callback = parse_stk_callback(_success_with(items))
    assert callback.amount == Decimal("1500.00")
    assert callback.receipt == "SGH12KL90P"
    assert callback.phone == "254712345678"
    assert callback.transaction_date == datetime(2024, 7, 12, 15, 30, tzinfo=NAIROBI)


def test_result_code_sent_as_a_string_is_coerced() -> None:
    raw = CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": "1032"')
    assert parse_stk_callback(raw).result_code == 1032


def test_failure_without_metadata_has_no_payment_details() -> None:
    callback = parse_stk_callback(CANCELLED)
    assert not callback.succeeded
    assert callback.result_code == 1032
    assert callback.result_desc == "Request cancelled by user"
    assert (callback.amount, callback.receipt, callback.transaction_date, callback.phone) == (
        None,
        None,
        None,
        None,
    )


def test_phone_number_is_kept_out_of_repr() -> None:
    assert "254708374149" not in repr(parse_stk_callback(SUCCESS))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[]", "Body.stkCallback"),
        (b'{"Body": {}}', "Body.stkCallback"),
        (b'{"Body": {"stkCallback": "x"}}', "Body.stkCallback"),
        (b'{"Result": {"ResultCode": 0}}', "Body.stkCallback"),
        (CANCELLED.replace(b'"CheckoutRequestID"', b'"Checkout"'), "CheckoutRequestID"),
        (CANCELLED.replace(b'"MerchantRequestID"', b'"Merchant"'), "MerchantRequestID"),
        (CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": "abc"'), "ResultCode"),
        (CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": null'), "ResultCode"),
        (CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": true'), "ResultCode"),
        (CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": 10.5'), "ResultCode"),
    ],
)
def test_garbage_is_malformed_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedCallback, match=reason):
        parse_stk_callback(raw)


def test_success_without_a_receipt_is_malformed() -> None:
    with pytest.raises(MalformedCallback, match="MpesaReceiptNumber"):
        parse_stk_callback(_success_with([{"Name": "Amount", "Value": 1}]))


def test_success_without_an_amount_is_malformed() -> None:
    with pytest.raises(MalformedCallback, match="Amount"):
        parse_stk_callback(_success_with([{"Name": "MpesaReceiptNumber", "Value": "R1"}]))


def test_success_without_any_metadata_is_malformed() -> None:
    raw = CANCELLED.replace(b'"ResultCode": 1032', b'"ResultCode": 0')
    with pytest.raises(MalformedCallback, match="ResultCode 0 without"):
        parse_stk_callback(raw)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"Name": "Amount", "Value": "ten"}, "Amount"),
        ({"Name": "Amount", "Value": True}, "Amount"),
        ({"Name": "TransactionDate", "Value": "yesterday"}, "TransactionDate"),
        ({"Name": "TransactionDate", "Value": 20191399102115}, "TransactionDate"),
    ],
)
def test_unreadable_metadata_values_are_malformed(item: dict[str, object], reason: str) -> None:
    items: list[dict[str, object]] = [
        {"Name": "Amount", "Value": 1},
        {"Name": "MpesaReceiptNumber", "Value": "R1"},
    ]
    with pytest.raises(MalformedCallback, match=reason):
        parse_stk_callback(_success_with([item, *items]))


def test_metadata_item_that_is_not_a_list_is_malformed() -> None:
    raw = CANCELLED.replace(b'"ResultDesc"', b'"CallbackMetadata": {"Item": 3}, "ResultDesc"')
    with pytest.raises(MalformedCallback, match="Item"):
        parse_stk_callback(raw)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_malformed(raw: bytes) -> None:
    with contextlib.suppress(MalformedCallback):
        parse_stk_callback(raw)


_NAMES = ["Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber", "Balance"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    result_code=_json,
    items=st.lists(
        st.fixed_dictionaries({"Name": st.sampled_from(_NAMES)}, optional={"Value": _json}),
        max_size=4,
    ),
)
def test_arbitrary_callback_values_never_raise_anything_but_malformed(
    result_code: object, items: list[dict[str, object]]
) -> None:
    with contextlib.suppress(MalformedCallback):
        parse_stk_callback(_success_with(items, result_code))

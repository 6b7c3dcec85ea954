"""Daraja's C2B messages: reading notifications, the URL rules, the register answer."""

from __future__ import annotations

import json

import pytest

from daraja.c2b import (
    MalformedNotification,
    parse_notification,
    parse_registered,
    register_refusal,
    url_refusal,
    whole_amount,
)
from daraja.classify import Reply, register_outcome
from daraja.errors import InvalidToken, Refused
from daraja.wire import ErrorBody
from tests.factories import c2b_request

pytestmark = pytest.mark.unit


def test_a_confirmation_is_read_without_the_payers_fields() -> None:
    n = parse_notification(c2b_request("UKL7N8PQ2R", bill_ref="KP1A2B3C4D5E", amount="3200.00"))

    assert (n.trans_id, n.bill_ref_number, n.amount, n.amount_text) == (
        "UKL7N8PQ2R", "KP1A2B3C4D5E", 3200, "3200.00",
    )  # fmt: skip
    assert (n.business_short_code, n.trans_time) == ("174379", "20261130103000")
    assert "WANJIRU" not in repr(n)
    assert "2547" not in repr(n)


def test_numbers_where_daraja_writes_strings_are_read_too() -> None:
    body = json.loads(c2b_request())
    body.update(TransAmount=1500, BusinessShortCode=174379)

    n = parse_notification(json.dumps(body).encode())

    assert (n.amount, n.business_short_code) == (1500, "174379")


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1500.00", 1500), ("1500", 1500), ("1500.5", None), ("0.00", None), ("-5", None),
     ("abc", None), ("NaN", None), ("Infinity", None), ("2147483647", 2147483647),
     ("2147483648", None), ("1e30", None)],
)  # fmt: skip
def test_only_whole_positive_shillings_are_an_amount(text: str, amount: int | None) -> None:
    assert whole_amount(text) == amount


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"not json", b'{"TransAmount": "10"}', b'{"TransID": "X"}']
)
def test_what_is_not_a_confirmation_says_why(body: bytes) -> None:
    with pytest.raises(MalformedNotification):
        parse_notification(body)


def test_a_validation_may_come_without_a_trans_id() -> None:
    body = json.loads(c2b_request())
    body["TransID"] = ""

    assert parse_notification(json.dumps(body).encode(), needs_trans_id=False).trans_id == ""


@pytest.mark.parametrize(
    ("url", "word"),
    [("https://pay.example/mpesa/c", "MPESA"), ("https://MPESA.example/c", "MPESA"),
     ("https://pay.example/safaricom", "SAFARICOM"), ("https://pay.example/m-pesa", "M-PESA"),
     ("https://pay.example/c?query=1", "QUERY")],
)  # fmt: skip
def test_urls_with_a_word_daraja_bans_are_refused(url: str, word: str) -> None:
    assert url_refusal(url) == f"Invalid URL - URL has the word {word}"


def test_our_own_urls_pass_darajas_rules() -> None:
    for kind in ("confirmation", "validation"):
        assert url_refusal(f"https://pay.khalex.example/api/payments/c2b/{kind}/s3cr3t") is None


def test_register_requests_are_checked_before_sending() -> None:
    good = "https://pay.example/api/payments/c2b/confirmation"
    assert register_refusal("174379", "Completed", good, good) is None
    assert register_refusal("174379", "completed", good, good) == (
        "Invalid ResponseType: Completed or Cancelled"
    )
    assert register_refusal("17", "Completed", good, good) == "Invalid ShortCode: 5 to 7 digits"
    assert "ValidationURL" in (register_refusal("174379", "Cancelled", good, "ftp://x") or "")


def test_the_register_answer_is_read_with_darajas_spelling() -> None:
    answer = {"OriginatorCoversationID": "abc", "ResponseCode": "0",
              "ResponseDescription": "success"}  # fmt: skip

    registered = register_outcome(Reply(200, answer))

    assert (registered.originator_conversation_id, registered.response_description) == (
        "abc", "success",
    )  # fmt: skip
    assert parse_registered({"ResponseCode": "1"}) is None


def test_register_refusals_are_final_and_token_refusals_are_refreshed() -> None:
    already = ErrorBody("500.003.1001", "Urls are already registered", "r1")
    token = ErrorBody("404.001.03", "Invalid Access Token", "r2")

    with pytest.raises(Refused, match="Urls are already registered") as refused:
        register_outcome(Reply(500, already))
    with pytest.raises(InvalidToken):
        register_outcome(Reply(404, token))
    assert refused.value.retryable is False

"""Every Daraja answer shape mapped onto the taxonomy: refused, unknown, not ready, token."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import pytest

from daraja.classify import (
    Reply,
    push_outcome,
    push_transport_failure,
    query_outcome,
    query_transport_failure,
    token_outcome,
    token_transport_failure,
)
from daraja.errors import (
    AnswerKind,
    DarajaError,
    InvalidToken,
    OutcomeUnknown,
    QueryNotReady,
    Reason,
    Refused,
)
from daraja.wire import read_answer

pytestmark = pytest.mark.unit

HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def error(status: int, code: str, message: str) -> Reply:
    body = {"requestId": "1c5b-4ba8", "errorCode": code, "errorMessage": message}
    return Reply(status, read_answer("application/json", json.dumps(body).encode()))


def fault(status: int, errorcode: str, faultstring: str) -> Reply:
    body = {"fault": {"faultstring": faultstring, "detail": {"errorcode": errorcode}}}
    return Reply(status, read_answer("application/json", json.dumps(body).encode()))


def page(status: int, text: str = HTML, content_type: str = "text/html") -> Reply:
    return Reply(status, read_answer(content_type, text.encode()))


def ok(body: Mapping[str, object]) -> Reply:
    return Reply(200, read_answer("application/json", json.dumps(body).encode()))


LOCKED_MESSAGE = (
    "Unable to lock subscriber, a transaction is already in process for the current subscriber"
)
ACCEPTED = {
    "MerchantRequestID": "2654-4b64-97ff-b827b542881d3130",
    "CheckoutRequestID": "ws_CO_1007202409152617172396192",
    "ResponseCode": "0",
    "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
}

REFUSED_PUSHES = [
    (
        error(400, "400.002.02", "Bad Request - Invalid BusinessShortCode"),
        Reason.INVALID_REQUEST,
        False,
    ),
    (error(400, "400.002.02", "Bad Request - Invalid CallBackURL"), Reason.INVALID_REQUEST, False),
    (error(400, "400.002.05", "Invalid Request Payload"), Reason.INVALID_REQUEST, False),
    (
        error(401, "401.003.01", "Invalid API call as no apiproduct match found"),
        Reason.NOT_ENTITLED,
        False,
    ),
    (error(404, "404.001.01", "Resource not found"), Reason.REJECTED, False),
    (error(405, "405.001", "Method Not Allowed"), Reason.REJECTED, False),
    (error(500, "500.001.1001", "Merchant does not exist"), Reason.MERCHANT_UNKNOWN, False),
    (error(500, "500.001.1001", "Wrong credentials"), Reason.WRONG_CREDENTIALS, False),
    (
        error(500, "500.001.1001", LOCKED_MESSAGE),
        Reason.SUBSCRIBER_LOCKED,
        True,
    ),
    (
        error(500, "500.003.02", "System is busy. Please try again in few minutes."),
        Reason.RATE_LIMITED,
        True,
    ),
    (error(500, "500.003.02", "Error Occurred: Spike Arrest Violation"), Reason.RATE_LIMITED, True),
    (error(500, "500.003.03", "Quota Violation"), Reason.QUOTA_EXCEEDED, True),
    (
        fault(
            404,
            "messaging.adaptors.http.flow.ApplicationNotFound",
            "Unable to identify proxy for host: x and url: /y",
        ),
        Reason.REJECTED,
        False,
    ),
    (
        fault(429, "policies.ratelimit.SpikeArrestViolation", "Spike arrest violation"),
        Reason.RATE_LIMITED,
        True,
    ),
    (
        fault(500, "policies.ratelimit.QuotaViolation", "Rate limit quota violation"),
        Reason.QUOTA_EXCEEDED,
        True,
    ),
    (page(403, "<html>Forbidden</html>"), Reason.REJECTED, False),
    (page(429, "", "text/plain"), Reason.RATE_LIMITED, True),
    # Spike arrest as several SDKs see it: HTTP 429 with Daraja's error body.
    (error(429, "429.001.01", "Spike arrest violation"), Reason.RATE_LIMITED, True),
]


@pytest.mark.parametrize(("reply", "reason", "retryable"), REFUSED_PUSHES)
def test_push_refused_before_processing(reply: Reply, reason: Reason, retryable: bool) -> None:
    with pytest.raises(Refused) as caught:
        push_outcome(reply)
    assert caught.value.reason is reason
    assert caught.value.retryable is retryable
    assert caught.value.http_status == reply.status


UNKNOWN_PUSHES = [
    (error(500, "500.002.1001", "System internal error."), AnswerKind.DARAJA_ERROR),
    (error(500, "500.003.1001", "Internal Server Error"), AnswerKind.DARAJA_ERROR),
    (error(500, "500.001.1001", ""), AnswerKind.DARAJA_ERROR),
    (error(500, "500.001.1001", "Something we have never seen"), AnswerKind.DARAJA_ERROR),
    (
        fault(
            503,
            "messaging.adaptors.http.flow.ServiceUnavailable",
            "The Service is temporarily unavailable",
        ),
        AnswerKind.GATEWAY_FAULT,
    ),
    (
        fault(504, "messaging.adaptors.http.flow.GatewayTimeout", "Gateway Timeout"),
        AnswerKind.GATEWAY_FAULT,
    ),
    (page(502), AnswerKind.NOT_JSON),
    (page(200), AnswerKind.NOT_JSON),
    (page(500, "", "application/json"), AnswerKind.NOT_JSON),
    (ok({"unexpected": True}), AnswerKind.UNREADABLE),
    (ok({**ACCEPTED, "ResponseCode": "1"}), AnswerKind.UNREADABLE),
    (ok({**ACCEPTED, "CheckoutRequestID": ""}), AnswerKind.UNREADABLE),
    (Reply(500, {"status": "error"}), AnswerKind.UNREADABLE),
]


@pytest.mark.parametrize(("reply", "kind"), UNKNOWN_PUSHES)
def test_push_outcome_unknown_when_it_may_have_been_processed(
    reply: Reply, kind: AnswerKind
) -> None:
    with pytest.raises(OutcomeUnknown) as caught:
        push_outcome(reply)
    assert caught.value.kind is kind


@pytest.mark.parametrize(
    "reply",
    [
        error(404, "404.001.03", "Invalid Access Token"),
        error(401, "404.001.03", "Invalid Access Token"),
        error(401, "401.002.01", "Error Occurred - Invalid Access Token"),
        error(400, "400.003.01", "Error Occurred - Invalid Access Token"),
        fault(401, "keymanagement.service.invalid_access_token", "Invalid access token"),
        fault(401, "keymanagement.service.access_token_expired", "Access Token expired"),
    ],
)
def test_invalid_token_family_asks_for_a_refresh(reply: Reply) -> None:
    with pytest.raises(InvalidToken):
        push_outcome(reply)
    with pytest.raises(InvalidToken):
        query_outcome(reply)


def test_push_accepted_with_response_code_as_string() -> None:
    accepted = push_outcome(ok(ACCEPTED))
    assert accepted.checkout_request_id == "ws_CO_1007202409152617172396192"
    assert accepted.merchant_request_id == "2654-4b64-97ff-b827b542881d3130"
    assert accepted.customer_message == "Success. Request accepted for processing"


def test_push_accepted_with_response_code_as_number() -> None:
    assert push_outcome(ok({**ACCEPTED, "ResponseCode": 0})).checkout_request_id


def test_locked_subscriber_suggests_a_minute_and_retry_after_wins() -> None:
    locked = error(500, "500.001.1001", "Unable to lock subscriber")
    with pytest.raises(Refused) as caught:
        push_outcome(locked)
    assert caught.value.retry_after_s == 60
    with pytest.raises(Refused) as caught:
        push_outcome(Reply(429, locked.answer, retry_after_s=5.0))
    assert caught.value.retry_after_s == 5.0


def test_error_keeps_darajas_code_message_and_request_id() -> None:
    with pytest.raises(Refused) as caught:
        push_outcome(error(400, "400.002.02", "Bad Request - Invalid Amount"))
    assert (caught.value.code, caught.value.message, caught.value.request_id) == (
        "400.002.02",
        "Bad Request - Invalid Amount",
        "1c5b-4ba8",
    )
    assert "400.002.02" in str(caught.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("timed out"),
    ],
)
def test_push_that_never_left_is_a_retryable_refusal(exc: httpx.RequestError) -> None:
    failure = push_transport_failure(exc)
    assert isinstance(failure, Refused)
    assert failure.retryable
    assert failure.reason is Reason.CONNECT_FAILED


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout("timed out"), Reason.TIMEOUT),
        (httpx.WriteTimeout("timed out"), Reason.TIMEOUT),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), Reason.CONNECTION_LOST),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            Reason.CONNECTION_LOST,
        ),
        (httpx.WriteError("[Errno 32] Broken pipe"), Reason.CONNECTION_LOST),
    ],
)
def test_push_that_may_have_left_is_unknown(exc: httpx.RequestError, reason: Reason) -> None:
    failure = push_transport_failure(exc)
    assert isinstance(failure, OutcomeUnknown)
    assert failure.reason is reason
    assert failure.kind is AnswerKind.TRANSPORT


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("timed out"), httpx.ReadError("reset")],
)
def test_query_without_an_answer_is_not_ready(exc: httpx.RequestError) -> None:
    assert isinstance(query_transport_failure(exc), QueryNotReady)


@pytest.mark.parametrize(
    ("body", "code", "desc"),
    [
        (
            {
                "ResponseCode": "0",
                "ResultCode": "0",
                "ResultDesc": "The service request is processed successfully.",
            },
            0,
            "The service request is processed successfully.",
        ),
        (
            {"ResultCode": "1032", "ResultDesc": "Request cancelled by user"},
            1032,
            "Request cancelled by user",
        ),
        (
            {"ResultCode": 1037, "ResultDesc": "DS timeout user cannot be reached"},
            1037,
            "DS timeout user cannot be reached",
        ),
        (
            {"ResultCode": "1", "ResultDesc": "The balance is insufficient for the transaction."},
            1,
            "The balance is insufficient for the transaction.",
        ),
    ],
)
def test_query_final_answers_coerce_the_result_code(
    body: dict[str, object], code: int, desc: str
) -> None:
    result = query_outcome(ok(body))
    assert (result.result_code, result.result_desc) == (code, desc)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (error(500, "500.001.1001", "The transaction is being processed"), Reason.PROCESSING),
        (error(200, "500.001.1001", ""), Reason.PROCESSING),
        (error(500, "500.001.1001", "The transaction does not Exist"), Reason.PROCESSING),
        (error(500, "500.001.1001", "Wrong credentials"), Reason.PROCESSING),
        (
            ok({"ResultCode": "4999", "ResultDesc": "The transaction is still under processing"}),
            Reason.PROCESSING,
        ),
        (error(500, "500.002.1001", "System internal error."), Reason.SERVER_ERROR),
        (page(503), Reason.SERVER_ERROR),
        (
            fault(503, "messaging.adaptors.http.flow.ServiceUnavailable", "unavailable"),
            Reason.SERVER_ERROR,
        ),
    ],
)
def test_query_without_a_final_answer_is_not_ready(reply: Reply, reason: Reason) -> None:
    with pytest.raises(QueryNotReady) as caught:
        query_outcome(reply)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (error(500, "500.003.02", "System is busy"), True),
        (error(500, "500.003.03", "Quota Violation"), True),
        (error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID"), False),
        (fault(404, "messaging.adaptors.http.flow.ApplicationNotFound", "no proxy"), False),
    ],
)
def test_query_refusals(reply: Reply, retryable: bool) -> None:
    with pytest.raises(Refused) as caught:
        query_outcome(reply)
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    "reply", [page(200), ok({"ResultCode": "SFC_IC0003"}), ok({"ResponseCode": "0"})]
)
def test_query_answer_that_cannot_be_read_is_a_plain_daraja_error(reply: Reply) -> None:
    with pytest.raises(DarajaError) as caught:
        query_outcome(reply)
    assert type(caught.value) is DarajaError
    assert caught.value.reason is Reason.UNREADABLE_ANSWER


@pytest.mark.parametrize("expires_in", ["3599", 3599])
def test_token_answer_with_expiry_as_string_or_number(expires_in: object) -> None:
    token = token_outcome(ok({"access_token": "abc", "expires_in": expires_in}))
    assert token.value == "abc"
    assert token.expires_in_s == 3599


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [
        (error(400, "400.008.01", "Invalid Authentication passed"), Reason.AUTH_FAILED, False),
        (error(400, "400.008.02", "Invalid grant type passed"), Reason.AUTH_FAILED, False),
        (page(401, "", "text/plain"), Reason.AUTH_FAILED, False),
        (
            fault(404, "messaging.adaptors.http.flow.ApplicationNotFound", "no proxy"),
            Reason.AUTH_FAILED,
            False,
        ),
        (page(200), Reason.TOKEN_UNAVAILABLE, True),
        (ok({"access_token": ""}), Reason.TOKEN_UNAVAILABLE, True),
        (page(503), Reason.TOKEN_UNAVAILABLE, True),
        (page(429, "", "text/plain"), Reason.TOKEN_UNAVAILABLE, True),
        (error(500, "500.003.02", "System is busy"), Reason.TOKEN_UNAVAILABLE, True),
    ],
)
def test_token_endpoint_failures_are_refusals(
    reply: Reply, reason: Reason, retryable: bool
) -> None:
    with pytest.raises(Refused) as caught:
        token_outcome(reply)
    assert caught.value.reason is reason
    assert caught.value.retryable is retryable


def test_token_endpoint_unreachable_is_retryable() -> None:
    assert token_transport_failure(httpx.ConnectError("refused")).reason is Reason.CONNECT_FAILED
    timeout = token_transport_failure(httpx.ReadTimeout("timed out"))
    assert timeout.retryable
    assert timeout.reason is Reason.TOKEN_UNAVAILABLE

"""DarajaClient over `httpx.MockTransport`: what it sends, when it retries, what it raises."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import httpx
import pytest

from daraja.client import DarajaClient, DarajaConfig, proxy_for
from daraja.errors import (
    AnswerKind,
    DarajaError,
    OutcomeUnknown,
    QueryNotReady,
    Reason,
    Refused,
    RequestWithdrawn,
)
from daraja.tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from daraja.wire import OAUTH_PATH, PUSH_PATH, QUERY_PATH, REDACTED
from payments.container import daraja_config
from plumbing.settings import Settings
from tests import services

pytestmark = pytest.mark.unit

PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
CONFIG = DarajaConfig(
    base_url="https://daraja.test",
    consumer_key="consumer-key-123",
    consumer_secret="consumer-secret-456",
    shortcode="174379",
    passkey=PASSKEY,
    transaction_type="CustomerPayBillOnline",
    party_b="174379",
    timeout_s=5.0,
)
PHONE = "254712345678"
#: 06:24:08 UTC is 09:24:08 in Nairobi.
UTC_NOW = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)
ACCEPTED = {
    "MerchantRequestID": "2654-4b64-97ff-b827b542881d3130",
    "CheckoutRequestID": "ws_CO_1007202409152617172396192",
    "ResponseCode": "0",
    "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
}
QUERY_DONE = {
    "ResponseCode": "0",
    "ResponseDescription": "The service request has been accepted successfully",
    "MerchantRequestID": "22205-34066-1",
    "CheckoutRequestID": "ws_CO_13012021093521236557",
    "ResultCode": "0",
    "ResultDesc": "The service request is processed successfully.",
}

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"requestId": "r-1", "errorCode": code, "errorMessage": message}
    )


INVALID_TOKEN = error(404, "404.001.03", "Invalid Access Token")
RATE_LIMITED = error(500, "500.003.02", "System is busy. Please try again in few minutes.")
LOCKED = error(
    500,
    "500.001.1001",
    "Unable to lock subscriber, a transaction is already in process for the current subscriber",
)


class FakeDaraja:
    """Scripted answers per path; records every request it sees. Tokens are numbered."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {PUSH_PATH: [], QUERY_PATH: [], OAUTH_PATH: []}
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.expires_in: object = 3599

    def script(self, path: str, *answers: Answer) -> None:
        self.answers[path].extend(answers)

    def seen(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers[request.url.path]
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer(request) if callable(answer) else answer
        return self._default(request)

    def _default(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == OAUTH_PATH:
            self.tokens_issued += 1
            token = f"tok{self.tokens_issued:025d}"
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in})
        if request.url.path == PUSH_PATH:
            return httpx.Response(200, json=ACCEPTED)
        return httpx.Response(200, json=QUERY_DONE)


@pytest.fixture
def daraja() -> FakeDaraja:
    return FakeDaraja()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    daraja: FakeDaraja,
    sleeps: list[float] | None = None,
    tokens: TokenCache | None = None,
    now: Callable[[], datetime] = lambda: UTC_NOW,
    **kwargs: Any,
) -> DarajaClient:
    return DarajaClient(
        CONFIG,
        tokens or MemoryTokenCache(),
        transport=httpx.MockTransport(daraja.handler),
        now=now,
        sleep=(sleeps if sleeps is not None else []).append,
        **{"jitter": lambda: 0.5, **kwargs},
    )


def push(client: DarajaClient, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "phone": PHONE,
        "amount": 1500,
        "callback_url": "https://pay.example.com/api/payments/webhook/abc123",
        "account_reference": "KhalexChess",
        "description": "Khalex Chess",
    }
    return client.stk_push(**{**fields, **overrides})


def body(request: httpx.Request) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(request.content)
    return decoded


# --- what goes out -----------------------------------------------------------------------


def test_push_sends_darajas_fields_with_a_nairobi_timestamp(daraja: FakeDaraja) -> None:
    accepted = push(make_client(daraja))
    assert accepted.checkout_request_id == ACCEPTED["CheckoutRequestID"]
    assert accepted.merchant_request_id == ACCEPTED["MerchantRequestID"]
    sent = body(daraja.seen(PUSH_PATH)[0])
    assert sent["Timestamp"] == "20210628092408"
    assert sent["BusinessShortCode"] == 174379
    assert (sent["PartyA"], sent["PhoneNumber"], sent["PartyB"]) == (PHONE, PHONE, "174379")
    assert sent["Amount"] == 1500
    assert sent["TransactionType"] == "CustomerPayBillOnline"
    assert sent["CallBackURL"] == "https://pay.example.com/api/payments/webhook/abc123"
    assert (sent["AccountReference"], sent["TransactionDesc"]) == ("KhalexChess", "Khalex Chess")


def test_push_password_is_shortcode_passkey_and_the_same_timestamp(daraja: FakeDaraja) -> None:
    push(make_client(daraja))
    sent = body(daraja.seen(PUSH_PATH)[0])
    decoded = base64.b64decode(sent["Password"]).decode()
    assert decoded == f"174379{PASSKEY}{sent['Timestamp']}"


def test_push_is_json_with_the_bearer_token(daraja: FakeDaraja) -> None:
    push(make_client(daraja))
    request = daraja.seen(PUSH_PATH)[0]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer tok{1:025d}"


def test_token_is_fetched_with_basic_auth_and_client_credentials(daraja: FakeDaraja) -> None:
    push(make_client(daraja))
    request = daraja.seen(OAUTH_PATH)[0]
    assert request.method == "GET"
    assert request.url.params["grant_type"] == "client_credentials"
    expected = base64.b64encode(b"consumer-key-123:consumer-secret-456").decode()
    assert request.headers["authorization"] == f"Basic {expected}"


def test_every_request_names_us_and_asks_for_json(daraja: FakeDaraja) -> None:
    push(make_client(daraja))
    for request in daraja.requests:
        assert request.headers["user-agent"] == "khalex-pay"
        assert request.headers["accept"] == "application/json"
        assert request.extensions["timeout"]["connect"] == CONFIG.timeout.connect


def test_a_cookie_daraja_sets_is_never_sent_back(daraja: FakeDaraja) -> None:
    daraja.script(
        PUSH_PATH,
        httpx.Response(200, json=ACCEPTED, headers={"set-cookie": "session=abc; Path=/"}),
    )
    client = make_client(daraja)
    push(client)
    push(client)

    assert [r.headers.get("cookie") for r in daraja.seen(PUSH_PATH)] == [None, None]


def test_every_call_gets_a_fresh_timestamp_and_password(daraja: FakeDaraja) -> None:
    ticks = iter(UTC_NOW + timedelta(seconds=s) for s in range(10))
    client = make_client(daraja, now=lambda: next(ticks))
    push(client)
    client.stk_query("ws_CO_1")
    first, second = (body(r) for r in daraja.requests if r.url.path != OAUTH_PATH)
    assert (first["Timestamp"], second["Timestamp"]) == ("20210628092408", "20210628092409")
    assert first["Password"] != second["Password"]


def test_query_sends_the_checkout_id_with_its_own_password(daraja: FakeDaraja) -> None:
    result = make_client(daraja).stk_query("ws_CO_13012021093521236557")
    assert (result.result_code, result.result_desc) == (0, QUERY_DONE["ResultDesc"])
    sent = body(daraja.seen(QUERY_PATH)[0])
    assert sent["CheckoutRequestID"] == "ws_CO_13012021093521236557"
    assert base64.b64decode(sent["Password"]).decode() == f"174379{PASSKEY}20210628092408"


def test_explicit_timeouts_are_applied_to_every_request(daraja: FakeDaraja) -> None:
    push(make_client(daraja))
    for request in daraja.requests:
        timeout = request.extensions["timeout"]
        assert timeout["read"] == 5.0
        assert timeout["connect"] == 3.0


@pytest.mark.parametrize(
    ("field", "value", "daraja_field"),
    [
        ("phone", "0712345678", "PhoneNumber"),
        ("phone", "+254712345678", "PhoneNumber"),
        ("phone", "255712345678", "PhoneNumber"),
        ("amount", 0, "Amount"),
        ("amount", 10.5, "Amount"),
        ("amount", True, "Amount"),
        ("callback_url", " https://pay.example.com/cb", "CallBackURL"),
        ("callback_url", "ftp://pay.example.com/cb", "CallBackURL"),
        ("account_reference", "A" * 13, "AccountReference"),
        ("account_reference", "  ", "AccountReference"),
        ("description", "D" * 14, "TransactionDesc"),
    ],
)
def test_input_daraja_would_refuse_is_refused_without_sending(
    daraja: FakeDaraja, field: str, value: object, daraja_field: str
) -> None:
    with pytest.raises(Refused, match=f"Invalid {daraja_field}") as caught:
        push(make_client(daraja), **{field: value})
    assert not caught.value.retryable
    assert caught.value.reason is Reason.INVALID_REQUEST
    assert caught.value.kind is AnswerKind.LOCAL
    assert daraja.requests == []


def test_config_comes_from_settings_and_hides_secrets_from_repr() -> None:
    config = daraja_config(Settings(mpesa_base_url="http://127.0.0.1:9000/"))
    assert config.base_url == "http://127.0.0.1:9000"
    assert config.shortcode == "174379"
    assert config.timeout_s == 10.0
    for secret in (config.passkey, config.consumer_key, config.consumer_secret):
        assert secret not in repr(config)


# --- the token ---------------------------------------------------------------------------


def test_token_is_reused_across_calls(daraja: FakeDaraja) -> None:
    client = make_client(daraja)
    push(client)
    push(client)
    client.stk_query("ws_CO_1")
    assert len(daraja.seen(OAUTH_PATH)) == 1


def test_two_clients_sharing_a_memory_cache_fetch_one_token(daraja: FakeDaraja) -> None:
    cache = MemoryTokenCache()
    push(make_client(daraja, tokens=cache))
    push(make_client(daraja, tokens=cache))
    assert len(daraja.seen(OAUTH_PATH)) == 1


def test_two_processes_sharing_redis_fetch_one_token(daraja: FakeDaraja) -> None:
    server = fakeredis.FakeServer()
    first = make_client(daraja, tokens=RedisTokenCache(fakeredis.FakeRedis(server=server)))
    second = make_client(daraja, tokens=RedisTokenCache(fakeredis.FakeRedis(server=server)))
    push(first)
    push(second)
    assert len(daraja.seen(OAUTH_PATH)) == 1
    tokens = {r.headers["authorization"] for r in daraja.seen(PUSH_PATH)}
    assert tokens == {f"Bearer tok{1:025d}"}


def test_token_is_refreshed_before_it_expires(daraja: FakeDaraja) -> None:
    clock = [0.0]
    client = make_client(daraja, tokens=MemoryTokenCache(clock=lambda: clock[0]))
    daraja.expires_in = "3599"  # sent as a string, as Daraja has done
    push(client)
    clock[0] = 3200.0
    push(client)
    assert len(daraja.seen(OAUTH_PATH)) == 1
    clock[0] = 3400.0  # Daraja would still accept it for 199 s; we do not wait for that
    push(client)
    assert len(daraja.seen(OAUTH_PATH)) == 2


def test_invalid_token_is_refreshed_once_and_the_push_resent(daraja: FakeDaraja) -> None:
    daraja.script(PUSH_PATH, INVALID_TOKEN)
    accepted = push(make_client(daraja))
    assert accepted.checkout_request_id == ACCEPTED["CheckoutRequestID"]
    pushes = daraja.seen(PUSH_PATH)
    assert len(daraja.seen(OAUTH_PATH)) == 2
    assert [r.headers["authorization"] for r in pushes] == [
        f"Bearer tok{1:025d}",
        f"Bearer tok{2:025d}",
    ]


def test_invalid_token_twice_gives_up_without_a_third_fetch(daraja: FakeDaraja) -> None:
    daraja.script(PUSH_PATH, INVALID_TOKEN, INVALID_TOKEN)
    with pytest.raises(Refused) as caught:
        push(make_client(daraja))
    assert not caught.value.retryable
    assert caught.value.reason is Reason.INVALID_TOKEN
    assert caught.value.code == "404.001.03"
    assert len(daraja.seen(OAUTH_PATH)) == 2
    assert len(daraja.seen(PUSH_PATH)) == 2


def test_query_refreshes_an_invalid_token_once(daraja: FakeDaraja) -> None:
    daraja.script(QUERY_PATH, error(401, "401.002.01", "Error Occurred - Invalid Access Token"))
    assert make_client(daraja).stk_query("ws_CO_1").result_code == 0
    assert len(daraja.seen(OAUTH_PATH)) == 2


def test_refresh_does_not_discard_a_token_another_process_already_replaced(
    daraja: FakeDaraja,
) -> None:
    cache = MemoryTokenCache()
    slow, fast = make_client(daraja, tokens=cache), make_client(daraja, tokens=cache)
    push(slow)  # tok1 cached

    def refused_after_fast_refreshed(request: httpx.Request) -> httpx.Response:
        daraja.script(PUSH_PATH, INVALID_TOKEN)
        push(fast)  # fast is refused tok1 too, fetches tok2, succeeds
        return INVALID_TOKEN

    daraja.script(PUSH_PATH, refused_after_fast_refreshed)
    push(slow)  # slow invalidates tok1 (already gone), then reuses tok2
    assert len(daraja.seen(OAUTH_PATH)) == 2


def test_wrong_consumer_credentials_are_a_final_refusal(daraja: FakeDaraja) -> None:
    daraja.script(OAUTH_PATH, error(400, "400.008.01", "Invalid Authentication passed"))
    with pytest.raises(Refused) as caught:
        push(make_client(daraja))
    assert (caught.value.reason, caught.value.retryable) == (Reason.AUTH_FAILED, False)
    assert daraja.seen(PUSH_PATH) == []


def test_token_endpoint_html_is_a_retryable_refusal(daraja: FakeDaraja) -> None:
    html = httpx.Response(
        200, text="<html>CloudFront</html>", headers={"content-type": "text/html"}
    )
    daraja.script(OAUTH_PATH, html)
    with pytest.raises(Refused) as caught:
        push(make_client(daraja))
    assert (caught.value.reason, caught.value.retryable) == (Reason.TOKEN_UNAVAILABLE, True)
    assert caught.value.kind is AnswerKind.NOT_JSON
    assert daraja.seen(PUSH_PATH) == []


# --- refusals, retries and unknown outcomes ----------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (RATE_LIMITED, Reason.RATE_LIMITED),
        (LOCKED, Reason.SUBSCRIBER_LOCKED),
        (httpx.ConnectError("[Errno 111] Connection refused"), Reason.CONNECT_FAILED),
        (httpx.ConnectTimeout("timed out"), Reason.CONNECT_FAILED),
    ],
)
def test_passing_refusals_are_retried_a_bounded_number_of_times(
    daraja: FakeDaraja, sleeps: list[float], refusal: Answer, reason: Reason
) -> None:
    daraja.script(PUSH_PATH, refusal, refusal, refusal, refusal)
    with pytest.raises(Refused) as caught:
        push(make_client(daraja, sleeps, max_refused_retries=2))
    assert caught.value.retryable
    assert caught.value.reason is reason
    assert len(daraja.seen(PUSH_PATH)) == 3
    assert sleeps == [0.375, 0.75]  # 0.5 s then 1 s steps, with jitter fixed at mid-range


def test_a_refused_push_that_succeeds_on_retry_returns_the_acceptance(
    daraja: FakeDaraja, sleeps: list[float]
) -> None:
    daraja.script(PUSH_PATH, RATE_LIMITED)
    assert push(make_client(daraja, sleeps)).checkout_request_id == ACCEPTED["CheckoutRequestID"]
    assert len(sleeps) == 1


def test_backoff_grows_and_is_capped(daraja: FakeDaraja, sleeps: list[float]) -> None:
    daraja.script(PUSH_PATH, *[RATE_LIMITED] * 8)
    client = make_client(daraja, sleeps, max_refused_retries=6, jitter=lambda: 1.0)
    with pytest.raises(Refused):
        push(client)
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_no_retries_when_the_budget_is_zero(daraja: FakeDaraja, sleeps: list[float]) -> None:
    daraja.script(PUSH_PATH, RATE_LIMITED)
    with pytest.raises(Refused):
        push(make_client(daraja, sleeps, max_refused_retries=0))
    assert (len(daraja.seen(PUSH_PATH)), sleeps) == (1, [])


@pytest.mark.parametrize(
    "refusal",
    [
        error(500, "500.003.03", "Quota Violation"),
        error(400, "400.002.02", "Bad Request - Invalid PhoneNumber"),
        error(500, "500.001.1001", "Merchant does not exist"),
        error(500, "500.001.1001", "Wrong credentials"),
        error(401, "401.003.01", "Invalid API call as no apiproduct match found"),
    ],
)
def test_other_refusals_are_not_retried_here(
    daraja: FakeDaraja, sleeps: list[float], refusal: httpx.Response
) -> None:
    daraja.script(PUSH_PATH, refusal)
    with pytest.raises(Refused):
        push(make_client(daraja, sleeps))
    assert (len(daraja.seen(PUSH_PATH)), sleeps) == (1, [])


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ReadTimeout("timed out"), Reason.TIMEOUT),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), Reason.CONNECTION_LOST),
        (httpx.RemoteProtocolError("Server disconnected"), Reason.CONNECTION_LOST),
        (
            httpx.Response(
                502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}
            ),
            Reason.SERVER_ERROR,
        ),
        (httpx.Response(500), Reason.SERVER_ERROR),
        (
            httpx.Response(200, text="OK", headers={"content-type": "text/plain"}),
            Reason.UNREADABLE_ANSWER,
        ),
        (
            httpx.Response(
                503, json={"fault": {"faultstring": "The Service is temporarily unavailable"}}
            ),
            Reason.SERVER_ERROR,
        ),
    ],
)
def test_a_push_that_may_have_been_processed_is_never_resent(
    daraja: FakeDaraja, sleeps: list[float], failure: Answer, reason: Reason
) -> None:
    daraja.script(PUSH_PATH, failure)
    with pytest.raises(OutcomeUnknown) as caught:
        push(make_client(daraja, sleeps))
    assert caught.value.reason is reason
    assert (len(daraja.seen(PUSH_PATH)), sleeps) == (1, [])


def test_apigee_proxy_fault_is_a_final_refusal(daraja: FakeDaraja) -> None:
    daraja.script(
        PUSH_PATH,
        httpx.Response(
            404,
            json={
                "fault": {
                    "faultstring": "Unable to identify proxy for host: daraja and url: /mpesa",
                    "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
                }
            },
        ),
    )
    with pytest.raises(Refused) as caught:
        push(make_client(daraja))
    assert not caught.value.retryable
    assert caught.value.kind is AnswerKind.GATEWAY_FAULT
    assert caught.value.code == "messaging.adaptors.http.flow.ApplicationNotFound"


@pytest.mark.parametrize(
    "answer",
    [
        error(500, "500.001.1001", "The transaction is being processed"),
        error(200, "500.001.1001", ""),
        error(500, "500.001.1001", "The transaction does not Exist"),
        httpx.Response(200, json={**QUERY_DONE, "ResultCode": "4999"}),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ],
)
def test_query_without_a_final_answer_is_not_ready(daraja: FakeDaraja, answer: Answer) -> None:
    daraja.script(QUERY_PATH, answer)
    with pytest.raises(QueryNotReady):
        make_client(daraja).stk_query("ws_CO_1")
    assert len(daraja.seen(QUERY_PATH)) == 1


def test_query_rate_limit_is_a_retryable_refusal_not_retried_here(
    daraja: FakeDaraja, sleeps: list[float]
) -> None:
    daraja.script(QUERY_PATH, RATE_LIMITED)
    with pytest.raises(Refused) as caught:
        make_client(daraja, sleeps).stk_query("ws_CO_1")
    assert caught.value.retryable
    assert (len(daraja.seen(QUERY_PATH)), sleeps) == (1, [])


def test_query_final_failure_result_is_returned_not_raised(daraja: FakeDaraja) -> None:
    daraja.script(
        QUERY_PATH,
        httpx.Response(
            200,
            json={**QUERY_DONE, "ResultCode": "1032", "ResultDesc": "Request cancelled by user"},
        ),
    )
    result = make_client(daraja).stk_query("ws_CO_1")
    assert (result.result_code, result.result_desc) == (1032, "Request cancelled by user")


def test_empty_checkout_id_is_refused_without_sending(daraja: FakeDaraja) -> None:
    with pytest.raises(Refused):
        make_client(daraja).stk_query(" ")
    assert daraja.requests == []


# --- the recorder ------------------------------------------------------------------------


class Recorder:
    """Keeps what the client reports, and notes when the request actually went out."""

    def __init__(self, daraja: FakeDaraja, fail_on: str | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.daraja = daraja
        self.fail_on = fail_on

    def request_sent(self, operation: str, url: str, body: Any) -> object:
        if self.fail_on == "request":
            raise RuntimeError("database down")
        if self.fail_on == "withdraw":
            raise RequestWithdrawn("another job pushed this payment")
        self.events.append(("sent", (operation, url, dict(body), len(self.daraja.requests))))
        return len(self.events)

    def answer_received(
        self,
        handle: object,
        http_status: int | None,
        text: str | None,
        error: str | None,
        elapsed_ms: int,
    ) -> None:
        if self.fail_on == "answer":
            raise RuntimeError("database down")
        self.events.append(("answer", (handle, http_status, text, error, elapsed_ms)))


def test_recorder_sees_the_request_before_it_is_sent_and_the_raw_answer(
    daraja: FakeDaraja,
) -> None:
    recorder = Recorder(daraja)
    push(make_client(daraja), recorder=recorder)
    (sent_kind, sent), (answer_kind, answer) = recorder.events
    operation, url, recorded_body, requests_before = sent
    assert (sent_kind, answer_kind) == ("sent", "answer")
    assert (operation, url) == ("stk_push", f"https://daraja.test{PUSH_PATH}")
    assert requests_before == 1  # only the token fetch had gone out: the push had not
    assert recorded_body["Password"] == REDACTED
    assert recorded_body["PhoneNumber"] == PHONE
    handle, status, text, error_text, elapsed_ms = answer
    assert (handle, status, error_text) == (1, 200, None)
    assert json.loads(text) == ACCEPTED
    assert elapsed_ms >= 0


def test_recorder_gets_one_row_per_attempt_including_transport_errors(
    daraja: FakeDaraja,
) -> None:
    daraja.script(PUSH_PATH, httpx.ConnectError("refused"), RATE_LIMITED)
    recorder = Recorder(daraja)
    push(make_client(daraja), recorder=recorder)
    answers = [event for kind, event in recorder.events if kind == "answer"]
    assert len(answers) == 3
    assert answers[0][1:4] == (None, None, "connect_failed: ConnectError: refused")
    assert answers[1][1] == 500
    assert "500.003.02" in answers[1][2]
    assert answers[2][1] == 200


def test_recorder_sees_a_timeout_as_an_error_without_status(daraja: FakeDaraja) -> None:
    daraja.script(QUERY_PATH, httpx.ReadTimeout("timed out"))
    recorder = Recorder(daraja)
    with pytest.raises(QueryNotReady):
        make_client(daraja).stk_query("ws_CO_1", recorder=recorder)
    (_, sent), (_, answer) = recorder.events
    assert sent[0] == "stk_query"
    assert answer[1:4] == (None, None, "timeout: ReadTimeout: timed out")


def test_recorder_failing_before_sending_means_nothing_was_sent(daraja: FakeDaraja) -> None:
    with pytest.raises(Refused) as caught:
        push(make_client(daraja), recorder=Recorder(daraja, fail_on="request"))
    assert (caught.value.reason, caught.value.retryable) == (Reason.RECORDER_FAILED, True)
    assert daraja.seen(PUSH_PATH) == []


def test_a_request_the_recorder_withdraws_is_not_sent_and_not_logged_as_a_failure(
    daraja: FakeDaraja, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RequestWithdrawn):
        push(make_client(daraja), recorder=Recorder(daraja, fail_on="withdraw"))
    assert daraja.seen(PUSH_PATH) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_recorder_failing_after_an_accepted_push_makes_the_outcome_unknown(
    daraja: FakeDaraja,
) -> None:
    with pytest.raises(OutcomeUnknown) as caught:
        push(make_client(daraja), recorder=Recorder(daraja, fail_on="answer"))
    assert caught.value.reason is Reason.RECORDER_FAILED
    assert len(daraja.seen(PUSH_PATH)) == 1


# --- logs --------------------------------------------------------------------------------


def test_logs_never_hold_secrets_tokens_passwords_or_full_phone_numbers(
    daraja: FakeDaraja, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Today's CheckoutRequestIDs end with the payer's number without 254.
    checkout_id = f"ws_CO_28062021092408123{PHONE[3:]}"
    accepted = httpx.Response(200, json={**ACCEPTED, "CheckoutRequestID": checkout_id})
    daraja.script(PUSH_PATH, INVALID_TOKEN, RATE_LIMITED, httpx.ReadTimeout("timed out"), accepted)
    client = make_client(daraja)
    with pytest.raises(OutcomeUnknown):
        push(client)
    push(client)
    with pytest.raises(Refused):
        push(client, phone="0712345678")
    daraja.script(QUERY_PATH, error(500, "500.001.1001", "The transaction is being processed"))
    with pytest.raises(QueryNotReady):
        client.stk_query(checkout_id)
    client.stk_query(checkout_id)
    passwords = [body(r)["Password"] for r in daraja.requests if r.url.path != OAUTH_PATH]
    secrets = [
        CONFIG.consumer_key,
        CONFIG.consumer_secret,
        CONFIG.passkey,
        base64.b64encode(b"consumer-key-123:consumer-secret-456").decode(),
        f"tok{1:025d}",
        f"tok{2:025d}",
        PHONE[3:],  # the national number: catches the full MSISDN and the checkout-id tail
        "0712345678",
        *passwords,
    ]
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in logged
    assert "2547****5678" in caplog.text
    assert "ws_CO_28062021092408123*****5678" in caplog.text
    assert {r.name for r in caplog.records} >= {"daraja.client", "daraja.tokens"}


# --- real sockets: the timeouts are the ones asked for -----------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a read timeout, not a refusal."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _real_client(base_url: str, tokens: TokenCache, sleeps: list[float]) -> DarajaClient:
    config = DarajaConfig(**{**CONFIG.__dict__, "base_url": base_url, "timeout_s": 0.3})
    return DarajaClient(config, tokens, sleep=sleeps.append)


class _FixedToken:
    """A token cache that already holds a token, so only the push touches the network."""

    def token(self, scope: str, fetch: Callable[[], object]) -> str:
        return "preloaded-token"

    def invalidate(self, scope: str, token: str) -> None:
        pass


def test_a_server_that_never_answers_is_an_unknown_outcome(silent_server: str) -> None:
    sleeps: list[float] = []
    with (
        _real_client(silent_server, _FixedToken(), sleeps) as client,
        pytest.raises(OutcomeUnknown) as caught,
    ):
        push(client)
    assert caught.value.reason is Reason.TIMEOUT
    assert sleeps == []


def test_a_closed_port_is_a_retryable_refusal_after_bounded_retries() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    with (
        _real_client(f"http://127.0.0.1:{port}", _FixedToken(), sleeps) as client,
        pytest.raises(Refused) as caught,
    ):
        push(client)
    assert (caught.value.reason, caught.value.retryable) == (Reason.CONNECT_FAILED, True)
    assert len(sleeps) == 2


def test_daraja_error_str_names_reason_code_and_status() -> None:
    exc = DarajaError(
        "System is busy",
        reason=Reason.RATE_LIMITED,
        kind=AnswerKind.DARAJA_ERROR,
        code="500.003.02",
        http_status=500,
    )
    assert str(exc) == "rate_limited 500.003.02 HTTP 500: System is busy"


def test_no_more_calls_are_in_flight_at_once_than_the_configured_bound(
    daraja: FakeDaraja,
) -> None:
    bound, in_flight, most = 3, [0], [0]
    lock, release = threading.Lock(), threading.Event()

    def slow(_: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        release.wait(2)
        with lock:
            in_flight[0] -= 1
        return httpx.Response(200, json=ACCEPTED)

    daraja.script(PUSH_PATH, *([slow] * 8))
    client = DarajaClient(
        dataclasses.replace(CONFIG, max_concurrency=bound), MemoryTokenCache(),
        transport=httpx.MockTransport(daraja.handler),
        now=lambda: UTC_NOW,
    )  # fmt: skip
    threads = [threading.Thread(target=push, args=(client,)) for _ in range(8)]
    for t in threads:
        t.start()
    services.wait_until(lambda: in_flight[0] >= bound, 5, 0.01, "the first calls in flight")
    time.sleep(0.2)  # proves a negative: while those are held, no further call gets in
    release.set()
    for t in threads:
        t.join(5)

    assert most[0] == bound
    assert len(daraja.seen(PUSH_PATH)) == 8


def test_a_rate_limit_answer_holds_the_next_calls_of_every_thread(
    daraja: FakeDaraja, sleeps: list[float]
) -> None:
    client = make_client(daraja, sleeps, max_refused_retries=0)
    daraja.script(PUSH_PATH, RATE_LIMITED)
    with pytest.raises(Refused):
        push(client)

    push(client)  # another payment, as another thread would send it

    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 0.25  # half the first backoff step, less the time gone by


def test_a_spike_arrest_429_is_refused_and_retried_after_a_backoff(
    daraja: FakeDaraja, sleeps: list[float]
) -> None:
    daraja.script(PUSH_PATH, error(429, "429.001.01", "Spike arrest violation"))

    accepted = push(make_client(daraja, sleeps))

    assert accepted.checkout_request_id == ACCEPTED["CheckoutRequestID"]
    assert len(daraja.seen(PUSH_PATH)) == 2
    assert len(sleeps) == 1


def test_the_proxy_the_environment_names_is_used_unless_the_host_is_exempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    daraja_url = "https://api.safaricom.co.ke"
    assert proxy_for(daraja_url) is None

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.shop.lan:3128")
    assert proxy_for(daraja_url) == "http://proxy.shop.lan:3128"
    assert proxy_for("http://127.0.0.1:8001") is None  # no HTTP_PROXY set

    monkeypatch.setenv("NO_PROXY", "safaricom.co.ke")
    assert proxy_for(daraja_url) is None

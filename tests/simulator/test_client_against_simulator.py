"""The real DarajaClient against the real simulator process: every scenario row, token
expiry, chaos knobs and query states (CONTRACT.md §5), end to end over HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import fakeredis
import httpx
import pytest

from daraja import client as client_module
from daraja.callbacks import parse_stk_callback
from daraja.client import DarajaClient, DarajaConfig
from daraja.errors import (
    AnswerKind,
    DarajaError,
    OutcomeUnknown,
    QueryNotReady,
    Reason,
    Refused,
)
from daraja.tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from daraja.wire import NAIROBI, OAUTH_PATH, PUSH_PATH, QUERY_PATH, REDACTED, PushAccepted
from tests.simulator.conftest import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    LATE_CALLBACK_DELAY_S,
    PASSKEY,
    PAYING_PHONE,
    SHORTCODE,
    Sim,
)

pytestmark = pytest.mark.simulator

#: A CheckoutRequestID the simulator never handed out.
UNKNOWN_CHECKOUT_ID = "ws_CO_01012024000000000254799999999"


@dataclass
class Traffic:
    """Every request the client made, and the status of each answer, in order."""

    sent: list[str] = field(default_factory=list)
    answers: list[tuple[str, int]] = field(default_factory=list)

    def on_request(self, request: httpx.Request) -> None:
        self.sent.append(request.url.path)

    def on_response(self, request: httpx.Request, response: httpx.Response) -> None:
        self.answers.append((request.url.path, response.status_code))

    def count(self, path: str) -> int:
        return self.sent.count(path)

    def statuses(self, path: str) -> list[int]:
        return [status for p, status in self.answers if p == path]


class Observed(httpx.BaseTransport):
    """A real transport whose every request and answer `traffic` hears of."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.traffic.on_request(request)
        response = self.inner.handle_request(request)
        self.traffic.on_response(request, response)
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass
class Connected:
    """A client wired to the simulator, with its traffic log and recorded backoff sleeps."""

    client: DarajaClient
    transport: Observed
    traffic: Traffic
    sleeps: list[float]

    def push(self, phone: str = PAYING_PHONE, *, callback_url: str, **fields: Any) -> PushAccepted:
        values: dict[str, Any] = {
            "phone": phone,
            "amount": 1500,
            "callback_url": callback_url,
            "account_reference": "KhalexChess",
            "description": "Khalex Chess",
            **fields,
        }
        return self.client.stk_push(**values)


Connect = Callable[..., Connected]


@pytest.fixture
def config(simulator_url: str) -> DarajaConfig:
    return DarajaConfig(
        base_url=simulator_url,
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        shortcode=SHORTCODE,
        passkey=PASSKEY,
        transaction_type="CustomerPayBillOnline",
        party_b=SHORTCODE,
        timeout_s=5.0,
    )


@pytest.fixture
def connect(config: DarajaConfig, sim: Sim) -> Iterator[Connect]:
    """Build clients against the (freshly reset) simulator; all are closed afterwards."""
    made: list[Connected] = []

    def build(
        tokens: TokenCache | None = None,
        *,
        real_sleep: bool = False,
        max_refused_retries: int = 2,
        **overrides: Any,
    ) -> Connected:
        traffic, sleeps = Traffic(), list[float]()
        transport = Observed(traffic)
        client = DarajaClient(
            replace(config, **overrides),
            tokens or MemoryTokenCache(),
            transport=transport,
            sleep=time.sleep if real_sleep else sleeps.append,
            max_refused_retries=max_refused_retries,
        )
        made.append(Connected(client, transport, traffic, sleeps))
        return made[-1]

    yield build
    for connected in made:
        connected.client.close()
        connected.transport.close()  # the client only closes a transport it made itself


@pytest.fixture
def daraja(connect: Connect) -> Connected:
    return connect()


# --- CONTRACT.md §5 scenario table ------------------------------------------------------


def test_paying_number_is_accepted_and_its_callback_reads_as_paid(
    daraja: Connected, sim: Sim
) -> None:
    accepted = daraja.push(PAYING_PHONE, callback_url=sim.receiver.url())
    assert accepted.checkout_request_id.startswith("ws_CO_")
    assert accepted.customer_message

    raw = sim.receiver.wait_for(accepted.checkout_request_id)[0].body
    callback = parse_stk_callback(raw)
    entry = sim.entry(accepted.checkout_request_id)
    assert callback.succeeded
    assert callback.merchant_request_id == accepted.merchant_request_id
    assert callback.amount == Decimal(1500)
    assert callback.receipt == entry["receipt"]
    assert callback.phone == PAYING_PHONE
    assert callback.transaction_date is not None
    assert callback.transaction_date.tzinfo == NAIROBI

    result = daraja.client.stk_query(accepted.checkout_request_id)
    assert result.result_code == 0
    assert result.checkout_request_id == accepted.checkout_request_id


@pytest.mark.parametrize(
    ("phone", "result_code"),
    [
        ("254708374149", 1037),
        ("254700000001", 1),
        ("254700000002", 1032),
        ("254700000003", 2001),
        ("254700000004", 1037),
    ],
)
def test_failing_numbers_end_with_their_result_code_in_callback_and_query(
    daraja: Connected, sim: Sim, phone: str, result_code: int
) -> None:
    accepted = daraja.push(phone, callback_url=sim.receiver.url())
    callback = parse_stk_callback(sim.receiver.wait_for(accepted.checkout_request_id)[0].body)
    assert callback.result_code == result_code
    assert (callback.amount, callback.receipt) == (None, None)
    assert daraja.client.stk_query(accepted.checkout_request_id).result_code == result_code


def test_paid_without_callback_shows_only_in_the_query(daraja: Connected, sim: Sim) -> None:
    accepted = daraja.push("254700000005", callback_url=sim.receiver.url())
    sim.wait_resolved(accepted.checkout_request_id)
    assert daraja.client.stk_query(accepted.checkout_request_id).result_code == 0
    sim.wait_idle()
    assert sim.receiver.calls(accepted.checkout_request_id) == []


def test_duplicate_callbacks_read_as_the_same_payment(daraja: Connected, sim: Sim) -> None:
    accepted = daraja.push("254700000006", callback_url=sim.receiver.url())
    calls = sim.receiver.wait_for(accepted.checkout_request_id, count=2)
    first, second = (parse_stk_callback(call.body) for call in calls)
    assert first == second
    assert first.succeeded


def test_locked_subscriber_is_refused_retryably_after_bounded_retries(
    daraja: Connected, sim: Sim
) -> None:
    with pytest.raises(Refused) as caught:
        daraja.push("254700000007", callback_url=sim.receiver.url())
    assert caught.value.retryable
    assert caught.value.reason is Reason.SUBSCRIBER_LOCKED
    assert caught.value.retry_after_s == 60
    assert daraja.traffic.count(PUSH_PATH) == 3
    assert len(daraja.sleeps) == 2
    assert sim.ledger() == []


def test_hanging_push_is_unknown_never_resent_and_was_in_fact_paid(
    connect: Connect, sim: Sim
) -> None:
    sim.set_chaos(hangS=3.0)  # keep the simulator's sleeping handler short
    daraja = connect(timeout_s=1.0)
    with pytest.raises(OutcomeUnknown) as caught:
        daraja.push("254700000008", callback_url=sim.receiver.url())
    assert caught.value.reason is Reason.TIMEOUT
    assert daraja.traffic.count(PUSH_PATH) == 1
    assert daraja.sleeps == []
    (entry,) = sim.ledger()
    assert sim.wait_resolved(entry["checkoutRequestId"])["resultCode"] == 0


def test_late_callback_number_is_final_in_the_query_before_the_callback(
    daraja: Connected, sim: Sim
) -> None:
    accepted = daraja.push("254700000009", callback_url=sim.receiver.url())
    sim.wait_resolved(accepted.checkout_request_id)
    assert daraja.client.stk_query(accepted.checkout_request_id).result_code == 0
    assert sim.receiver.calls(accepted.checkout_request_id) == []
    late = sim.receiver.wait_for(accepted.checkout_request_id, timeout=LATE_CALLBACK_DELAY_S + 3)
    assert parse_stk_callback(late[0].body).succeeded


# --- query states ------------------------------------------------------------------------


def test_open_prompt_is_not_ready_in_every_form_then_final(daraja: Connected, sim: Sim) -> None:
    phone = "254711000001"
    sim.set_chaos(manualPhones=[phone])
    accepted = daraja.push(phone, callback_url=sim.receiver.url())
    reasons = []
    for _ in range(3):
        with pytest.raises(QueryNotReady) as caught:
            daraja.client.stk_query(accepted.checkout_request_id)
        reasons.append(caught.value.reason)
    assert reasons == [Reason.PROCESSING] * 3
    assert sorted(daraja.traffic.statuses(QUERY_PATH)) == [200, 200, 500]

    resolved = sim.http.post(f"/simulator/prompts/{accepted.checkout_request_id}/cancel")
    assert resolved.status_code == 200
    assert daraja.client.stk_query(accepted.checkout_request_id).result_code == 1032


def test_unknown_checkout_id_is_not_ready_rather_than_failed(daraja: Connected) -> None:
    with pytest.raises(QueryNotReady) as caught:
        daraja.client.stk_query(UNKNOWN_CHECKOUT_ID)
    assert caught.value.code == "500.001.1001"
    assert caught.value.message == "The transaction does not Exist"


def test_sporadic_query_errors_on_a_final_payment_are_not_ready(
    daraja: Connected, sim: Sim
) -> None:
    accepted = daraja.push(PAYING_PHONE, callback_url=sim.receiver.url())
    sim.wait_resolved(accepted.checkout_request_id)
    sim.set_chaos(queryErrorRate=1.0)
    with pytest.raises(QueryNotReady):
        daraja.client.stk_query(accepted.checkout_request_id)
    sim.set_chaos(queryErrorRate=0.0)
    assert daraja.client.stk_query(accepted.checkout_request_id).result_code == 0


# --- tokens ------------------------------------------------------------------------------


def test_short_lived_token_is_replaced_before_daraja_refuses_it(connect: Connect, sim: Sim) -> None:
    sim.set_chaos(tokenLifetimeS=1)
    daraja = connect()
    daraja.push("254711000002", callback_url=sim.receiver.url())
    time.sleep(1.1)  # the simulator's own token expiry (1 s) must really pass
    daraja.push("254711000003", callback_url=sim.receiver.url())
    assert daraja.traffic.count(OAUTH_PATH) == 2
    assert daraja.traffic.statuses(PUSH_PATH) == [200, 200]


def test_expired_token_is_refreshed_once_when_daraja_refuses_it(connect: Connect, sim: Sim) -> None:
    sim.set_chaos(tokenLifetimeS=1)
    frozen = MemoryTokenCache(clock=lambda: 0.0)  # never notices the expiry by itself
    daraja = connect(frozen)
    daraja.push("254711000004", callback_url=sim.receiver.url())
    time.sleep(1.1)  # the simulator's own token expiry (1 s) must really pass
    daraja.push("254711000005", callback_url=sim.receiver.url())
    assert daraja.traffic.statuses(PUSH_PATH) == [200, 404, 200]
    assert daraja.traffic.count(OAUTH_PATH) == 2


def test_processes_sharing_redis_fetch_one_token_even_when_new_tokens_revoke_old(
    connect: Connect, sim: Sim
) -> None:
    sim.set_chaos(revokeOldTokens=True)
    server = fakeredis.FakeServer()
    first = connect(RedisTokenCache(fakeredis.FakeRedis(server=server)))
    second = connect(RedisTokenCache(fakeredis.FakeRedis(server=server)))
    first.push("254711000006", callback_url=sim.receiver.url())
    second.push("254711000007", callback_url=sim.receiver.url())
    first.push("254711000008", callback_url=sim.receiver.url())
    assert first.traffic.count(OAUTH_PATH) + second.traffic.count(OAUTH_PATH) == 1
    assert first.traffic.statuses(PUSH_PATH) == [200, 200]


def test_separate_caches_under_revocation_recover_through_the_one_refresh(
    connect: Connect, sim: Sim
) -> None:
    sim.set_chaos(revokeOldTokens=True)
    first, second = connect(), connect()
    first.push("254711000009", callback_url=sim.receiver.url())
    second.push("254711000010", callback_url=sim.receiver.url())  # revokes first's token
    first.push("254711000011", callback_url=sim.receiver.url())
    assert first.traffic.statuses(PUSH_PATH) == [200, 404, 200]


def test_wrong_consumer_secret_is_a_final_refusal(connect: Connect, sim: Sim) -> None:
    daraja = connect(consumer_secret="not-the-secret")
    with pytest.raises(Refused) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert (caught.value.reason, caught.value.retryable) == (Reason.AUTH_FAILED, False)
    assert daraja.traffic.count(PUSH_PATH) == 0


# --- refusals Daraja makes after reading the request -------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"passkey": "0" * 64}, Reason.WRONG_CREDENTIALS),
        ({"shortcode": "600000"}, Reason.MERCHANT_UNKNOWN),
    ],
)
def test_merchant_misconfiguration_is_a_final_refusal(
    connect: Connect, sim: Sim, overrides: dict[str, str], reason: Reason
) -> None:
    daraja = connect(**overrides)
    with pytest.raises(Refused) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert (caught.value.reason, caught.value.retryable) == (reason, False)
    assert daraja.traffic.count(PUSH_PATH) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"description": "Order #12"}, "Bad Request - Invalid TransactionDesc"),
        ({"callback_url": "http://127.0.0.1:9/mpesa/cb"}, "Bad Request - Invalid CallBackURL"),
    ],
)
def test_fields_daraja_rejects_are_final_refusals(
    daraja: Connected, sim: Sim, fields: dict[str, str], message: str
) -> None:
    values = {"callback_url": sim.receiver.url(), **fields}
    with pytest.raises(Refused) as caught:
        daraja.push(**values)
    assert (caught.value.code, caught.value.message) == ("400.002.02", message)
    assert not caught.value.retryable
    assert sim.ledger() == []


# --- chaos knobs -------------------------------------------------------------------------


def test_push_error_rate_is_refused_retryably_after_bounded_retries(
    daraja: Connected, sim: Sim
) -> None:
    sim.set_chaos(pushErrorRate=1.0)
    with pytest.raises(Refused) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert (caught.value.reason, caught.value.retryable) == (Reason.RATE_LIMITED, True)
    assert caught.value.code == "500.003.02"
    assert daraja.traffic.count(PUSH_PATH) == 3
    assert sim.ledger() == []


def test_spike_arrest_is_ridden_out_by_the_in_client_backoff(connect: Connect, sim: Sim) -> None:
    sim.set_chaos(spikeArrestPerS=1)
    daraja = connect(real_sleep=True, max_refused_retries=4)
    daraja.push("254711000012", callback_url=sim.receiver.url())
    daraja.push("254711000013", callback_url=sim.receiver.url())
    statuses = daraja.traffic.statuses(PUSH_PATH)
    assert statuses[0] == 200
    assert statuses[-1] == 200
    assert 500 in statuses
    assert len(sim.ledger()) == 2


def _prime_token(daraja: Connected) -> None:
    """Fetch and cache a token while the gateway still behaves."""
    with pytest.raises(QueryNotReady):
        daraja.client.stk_query(UNKNOWN_CHECKOUT_ID)


def test_apigee_fault_to_a_push_is_an_unknown_outcome(daraja: Connected, sim: Sim) -> None:
    _prime_token(daraja)
    sim.set_chaos(faultRate=1.0)
    with pytest.raises(OutcomeUnknown) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert caught.value.kind is AnswerKind.GATEWAY_FAULT
    assert caught.value.http_status == 503
    assert daraja.traffic.count(PUSH_PATH) == 1
    with pytest.raises(QueryNotReady) as not_ready:
        daraja.client.stk_query(UNKNOWN_CHECKOUT_ID)
    assert not_ready.value.kind is AnswerKind.GATEWAY_FAULT


def test_html_answer_to_a_push_is_an_unknown_outcome(daraja: Connected, sim: Sim) -> None:
    _prime_token(daraja)
    sim.set_chaos(htmlRate=1.0)
    with pytest.raises(OutcomeUnknown) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert caught.value.kind is AnswerKind.NOT_JSON
    assert "Request Rejected" in caught.value.message
    with pytest.raises(DarajaError) as unreadable:
        daraja.client.stk_query(UNKNOWN_CHECKOUT_ID)
    assert type(unreadable.value) is DarajaError
    assert unreadable.value.kind is AnswerKind.NOT_JSON


@pytest.mark.parametrize("knob", ["faultRate", "htmlRate"])
def test_gateway_trouble_at_the_token_endpoint_sends_no_push(
    daraja: Connected, sim: Sim, knob: str
) -> None:
    sim.set_chaos(**{knob: 1.0})
    with pytest.raises(Refused) as caught:
        daraja.push(callback_url=sim.receiver.url())
    assert (caught.value.reason, caught.value.retryable) == (Reason.TOKEN_UNAVAILABLE, True)
    assert daraja.traffic.count(PUSH_PATH) == 0


def test_logs_of_a_real_exchange_hold_no_phone_number_or_secret(
    daraja: Connected, sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    accepted = daraja.push(PAYING_PHONE, callback_url=sim.receiver.url())
    assert accepted.checkout_request_id.endswith(PAYING_PHONE[3:])  # why ids are masked
    sim.wait_resolved(accepted.checkout_request_id)
    daraja.client.stk_query(accepted.checkout_request_id)
    client_logs = [r for r in caplog.records if r.name.startswith("daraja.")]
    text = " ".join(r.getMessage() for r in client_logs)
    assert "stk push accepted" in text
    for secret in (PAYING_PHONE[3:], CONSUMER_SECRET, PASSKEY):
        assert secret not in text


# --- the recorder sees the simulator's raw answers ---------------------------------------


class Rows:
    """An ExchangeRecorder keeping rows in memory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def request_sent(self, operation: str, url: str, body: Any) -> object:
        self.rows.append({"operation": operation, "url": url, "body": dict(body)})
        return len(self.rows) - 1

    def answer_received(
        self,
        handle: object,
        http_status: int | None,
        text: str | None,
        error: str | None,
        elapsed_ms: int,
    ) -> None:
        assert isinstance(handle, int)
        self.rows[handle].update(status=http_status, text=text, error=error, ms=elapsed_ms)


def test_recorder_keeps_one_row_per_attempt_with_raw_answers(daraja: Connected, sim: Sim) -> None:
    rows = Rows()
    with pytest.raises(Refused):
        daraja.client.stk_push(
            phone="254700000007",
            amount=10,
            callback_url=sim.receiver.url(),
            account_reference="KhalexChess",
            description="Khalex Chess",
            recorder=rows,
        )
    assert [row["status"] for row in rows.rows] == [500, 500, 500]
    assert all("Unable to lock subscriber" in row["text"] for row in rows.rows)
    assert all(row["body"]["Password"] == REDACTED for row in rows.rows)
    assert all(row["url"] == f"{sim.base_url}{PUSH_PATH}" for row in rows.rows)


def test_threads_sharing_a_client_each_keep_a_connection_of_their_own(
    config: DarajaConfig, sim: Sim
) -> None:
    client = DarajaClient(config, MemoryTokenCache())
    seen: dict[str, list[object]] = {}

    def push_twice(n: int) -> None:
        for _ in range(2):
            accepted = client.stk_push(
                phone=f"2547{10_000_000 + n:08d}", amount=10, callback_url=sim.receiver.url(),
                account_reference="Order1", description="Chess",
            )  # fmt: skip
            assert accepted.checkout_request_id.startswith("ws_CO_")
            # The connection this thread's calls went over (its own client's pool).
            pool = client._transport()._pool  # type: ignore[attr-defined]
            seen.setdefault(threading.current_thread().name, []).extend(pool.connections)

    threads = [threading.Thread(target=push_twice, args=(n,), name=f"t{n}") for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        client.close()

    assert len(seen) == 8
    ids = [{id(c) for c in connections} for connections in seen.values()]
    assert all(len(mine) == 1 for mine in ids)  # kept alive between a thread's two calls
    assert len(set().union(*ids)) == 8  # and never shared with another thread


def test_a_connection_idle_longer_than_the_limit_is_not_reused(
    config: DarajaConfig, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server closes idle connections too; a push sent on one it is closing just then is
    # reset, its outcome unknown. We close ours first.
    monkeypatch.setattr(client_module, "IDLE_CONNECTION_S", 0.2)
    client = DarajaClient(config, MemoryTokenCache())
    used: list[list[object]] = []  # the connection objects themselves: no id reused
    try:
        for n, pause in enumerate((0.0, 0.0, 0.5)):
            time.sleep(pause)
            client.stk_push(
                phone=f"25471000000{n}", amount=10, callback_url=sim.receiver.url(),
                account_reference="Order1", description="Chess",
            )  # fmt: skip
            pool = client._transport()._pool  # type: ignore[attr-defined]
            used.append(list(pool.connections))
    finally:
        client.close()

    assert len(used[0]) == 1
    assert used[1] == used[0]  # back to back: kept alive
    assert all(c not in used[1] for c in used[2])  # idle past the limit: a fresh one


def test_a_client_used_after_close_opens_a_new_transport(config: DarajaConfig, sim: Sim) -> None:
    client = DarajaClient(config, MemoryTokenCache())

    def push(phone: str) -> PushAccepted:
        return client.stk_push(
            phone=phone, amount=10, callback_url=sim.receiver.url(),
            account_reference="Order1", description="Chess",
        )  # fmt: skip

    try:
        push("254710000020")
        first = client._transport()
        client.close()

        accepted = push("254710000021")

        assert accepted.checkout_request_id.startswith("ws_CO_")
        assert client._transport() is not first
    finally:
        client.close()

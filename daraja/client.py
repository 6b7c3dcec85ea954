"""`DarajaClient`: STK push and STK query against Daraja (or the simulator).

What the client promises its callers (the payment workers):

- every push either returns `PushAccepted` or raises `Refused` (nothing reached the phone;
  `retryable` says whether to try again later) or `OutcomeUnknown` (the prompt may be out:
  never resend, reconcile); it never resends a push that may have been processed;
- pushes refused for a passing reason (rate limit, locked subscriber, a connection that never
  opened) are retried here a bounded number of times with short jittered backoff, then
  handed back as `Refused(retryable=True)` so the worker can wait longer;
- one shared OAuth token (see `tokens.py`), refreshed once when Daraja calls it invalid;
- a fresh Nairobi Timestamp and Password for every HTTP request;
- every HTTP attempt is offered to an `ExchangeRecorder` before it is sent and after it
  ends, so the caller can store raw exchanges before acting on them;
- no credential, token, Password or full phone number in logs.
"""

from __future__ import annotations

import base64
import functools
import logging
import random
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import httpx

from daraja.c2b import REGISTER_PATH, Registered, register_body, register_refusal
from daraja.classify import (
    Reply,
    push_outcome,
    push_transport_failure,
    query_outcome,
    query_transport_failure,
    register_outcome,
    register_transport_failure,
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
    RequestWithdrawn,
)
from daraja.tokens import TokenCache, token_scope
from daraja.wire import (
    MSISDN,
    OAUTH_PATH,
    PUSH_PATH,
    QUERY_PATH,
    AccessToken,
    PushAccepted,
    QueryResult,
    mask_checkout_id,
    mask_msisdn,
    nairobi_timestamp,
    push_body,
    query_body,
    read_answer,
    redacted,
)

__all__ = [
    "DarajaClient",
    "DarajaConfig",
    "ExchangeRecorder",
    "PushAccepted",
    "QueryResult",
]

#: Opening a TCP/TLS connection should be quick; a slow one is better retried than waited on.
CONNECT_TIMEOUT_S = 3.0
#: First in-client backoff before resending a refused push; doubles each time...
BACKOFF_BASE_S = 0.5
#: ...up to this; longer waits are the worker's job.
BACKOFF_CAP_S = 4.0
#: Refusals worth retrying at once: short-lived, and nothing reached the phone.
RETRY_IN_CLIENT = frozenset({Reason.RATE_LIMITED, Reason.SUBSCRIBER_LOCKED, Reason.CONNECT_FAILED})
#: Daraja's limits on the prompt's texts (DARAJA.md §2).
MAX_ACCOUNT_REFERENCE = 12
MAX_DESCRIPTION = 13
#: Seconds a kept-alive connection may sit idle before we close it rather than reuse it.
#: Servers close idle connections too (uvicorn, so the simulator, after 5 s; httpx's own
#: default is also 5 s): a request sent on a connection the server is closing at that very
#: moment fails with a reset, and for a push that means an outcome unknown, a payment only
#: a query can settle. Closing ours well before the server's makes the race unlikely.
IDLE_CONNECTION_S = 2.0

log = logging.getLogger("daraja.client")

#: Sent with every request (an `httpx.Client` would add its own User-Agent and Accept).
_HEADERS = {"User-Agent": "khalex-pay", "Accept": "application/json"}

_T = TypeVar("_T")


@dataclass(frozen=True)
class DarajaConfig:
    """The Daraja app and shortcode this client speaks for. Secrets stay out of `repr`."""

    base_url: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    shortcode: str
    passkey: str = field(repr=False)
    transaction_type: str
    party_b: str
    timeout_s: float = 10.0
    #: Calls this client has in flight at once (a worker process's threads share it).
    max_concurrency: int = 64

    @property
    def timeout(self) -> httpx.Timeout:
        """Explicit timeouts: a short connect, and `timeout_s` for everything else."""
        return httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s))


class ExchangeRecorder(Protocol):
    """Stores raw Daraja exchanges (one per HTTP attempt) before the caller acts on them."""

    def request_sent(self, operation: str, url: str, body: Mapping[str, object]) -> object:
        """Called before the request goes out; `body` has its Password redacted.

        Returns a handle passed back to `answer_received`. If this raises, nothing is sent:
        `RequestWithdrawn` reaches the caller as it is, anything else as `Refused`.
        """
        ...

    def answer_received(
        self,
        handle: object,
        http_status: int | None,
        text: str | None,
        error: str | None,
        elapsed_ms: int,
    ) -> None:
        """Called when the attempt ends: the answer's status and text, or the error text."""
        ...


@dataclass(frozen=True)
class _Operation:
    """What differs between a push and a query on the way out and back."""

    name: str
    path: str
    transport_failure: Callable[[httpx.RequestError], DarajaError]
    #: What an answer we could not record means: for a push the prompt may be out.
    lost: type[DarajaError]


_PUSH = _Operation("stk_push", PUSH_PATH, push_transport_failure, OutcomeUnknown)
_QUERY = _Operation("stk_query", QUERY_PATH, query_transport_failure, QueryNotReady)
_REGISTER = _Operation("c2b_register", REGISTER_PATH, register_transport_failure, DarajaError)


@dataclass(frozen=True)
class _Push:
    phone: str
    amount: int
    callback_url: str
    account_reference: str
    description: str


class DarajaClient:
    """Calls Daraja's STK push and STK query; see the module docstring for its promises.

    Parameters:
        config: the Daraja app and shortcode.
        tokens: the shared token cache (`RedisTokenCache`, or `MemoryTokenCache`).
        transport: the httpx transport to send every request through (tests pass a
            `MockTransport`); by default each thread gets an `HTTPTransport` of its own.
        now: the clock for Timestamps; must return aware datetimes.
        sleep: how to wait between retries (tests pass a recorder).
        max_refused_retries: in-client resends of a push refused for a passing reason.
        jitter: a source of floats in [0, 1) for the backoff.
    """

    def __init__(
        self,
        config: DarajaConfig,
        tokens: TokenCache,
        *,
        transport: httpx.BaseTransport | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_refused_retries: int = 2,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._tokens = tokens
        # Given a transport (tests), every call uses it. Otherwise each thread gets one of
        # its own, holding the one connection the thread uses: httpx's pool scans all its
        # connections (quadratically, polling each socket) for every request, which cost a
        # third of a busy worker's CPU with 64 threads sharing one pool. Requests go to the
        # transport itself, not through an `httpx.Client`: the client's cookie jar,
        # URL and header merging and auth and redirect handling cost a quarter of the
        # call's CPU, and Daraja needs none of them.
        self._given = transport
        self._local = threading.local()
        self._owned: list[httpx.BaseTransport] = []
        self._owned_lock = threading.Lock()
        self._generation = 0  # moved on by close(): the threads' transports are closed
        self._ssl = httpx.create_ssl_context() if transport is None else None
        # Waiting here sends nothing: a push that waits for a slot is still safe to drop.
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        # After a rate-limit answer every call of this client waits until then (monotonic),
        # so the threads that share it back off together, not each on its own.
        self._calm_until = 0.0
        self._calm_lock = threading.Lock()
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._max_refused_retries = max_refused_retries
        self._jitter = jitter
        self._scope = token_scope(config.base_url, config.consumer_key)

    def stk_push(
        self,
        *,
        phone: str,
        amount: int,
        callback_url: str,
        account_reference: str,
        description: str,
        recorder: ExchangeRecorder | None = None,
    ) -> PushAccepted:
        """Ask Daraja to prompt `phone` to pay `amount` KES.

        Raises:
            Refused: nothing was sent to the phone (`retryable` says if later may work);
                also raised, not retryable, for input Daraja would refuse.
            OutcomeUnknown: the prompt may be out; never resend, reconcile.
        """
        push = _Push(phone, amount, callback_url, account_reference, description)
        _check_push(push)
        attempt = 0
        while True:
            try:
                # A retry has just backed off on its own: only a first attempt waits for calm.
                accepted = self._with_token(
                    functools.partial(self._push_once, push=push, recorder=recorder,
                                      calm=attempt == 0)
                )  # fmt: skip
            except Refused as exc:
                self._calm_down(attempt + 1, exc)
                if exc.reason not in RETRY_IN_CLIENT or attempt >= self._max_refused_retries:
                    _log_failure(_described(push), exc)
                    raise
                attempt += 1
                self._back_off(attempt, exc)
            except DarajaError as exc:
                _log_failure(_described(push), exc)
                raise
            else:
                # One line per push, once its end is known (each attempt's is at DEBUG).
                log.info(
                    "stk push accepted: %s (%s)",
                    mask_checkout_id(accepted.checkout_request_id), _described(push),
                )  # fmt: skip
                return accepted

    def stk_query(
        self, checkout_request_id: str, *, recorder: ExchangeRecorder | None = None
    ) -> QueryResult:
        """Ask Daraja how the push `checkout_request_id` ended. Never retried here.

        Raises:
            QueryNotReady: no final answer this time (still processing, unknown id yet,
                timeouts, server errors); ask again later.
            Refused: Daraja refused the query (`retryable` for rate limits).
            DarajaError: an answer that could not be read.
        """
        if not checkout_request_id.strip():
            raise _invalid("Invalid CheckoutRequestID: empty")
        try:
            result = self._with_token(
                lambda token: self._query_once(token, checkout_request_id, recorder)
            )
        except Refused as exc:
            self._calm_down(1, exc)
            _log_failure(f"stk query {mask_checkout_id(checkout_request_id)}", exc)
            raise
        except DarajaError as exc:
            _log_failure(f"stk query {mask_checkout_id(checkout_request_id)}", exc)
            raise
        masked = mask_checkout_id(checkout_request_id)
        log.info("stk query %s: ResultCode %s", masked, result.result_code)
        return result

    def register_c2b_urls(
        self,
        *,
        response_type: str,
        confirmation_url: str,
        validation_url: str,
        recorder: ExchangeRecorder | None = None,
    ) -> Registered:
        """Register this shortcode's C2B confirmation and validation URLs with Daraja.

        Raises:
            Refused: Daraja refused them (production registers once: a second call is
                "Urls are already registered"), or they break Daraja's URL rules (no
                "mpesa", "safaricom", ...), checked here before anything is sent.
            DarajaError: no answer; whether Daraja registered them is unknown.
        """
        shortcode = self._config.shortcode
        refusal = register_refusal(shortcode, response_type, confirmation_url, validation_url)
        if refusal:
            raise _invalid(refusal)
        body = register_body(shortcode, response_type, confirmation_url, validation_url)
        try:
            registered = self._with_token(
                lambda token: register_outcome(self._post(_REGISTER, body, token, recorder))
            )
        except DarajaError as exc:
            _log_failure("c2b registerurl", exc)
            raise
        log.info("c2b urls registered for shortcode %s", shortcode)
        return registered

    def close(self) -> None:
        """Close the transports this client made (a given one is the caller's to close); a
        thread that calls again afterwards gets a new one."""
        with self._owned_lock:
            owned, self._owned = self._owned, []
            self._generation += 1
        for transport in owned:
            transport.close()

    def __enter__(self) -> DarajaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _push_once(
        self, token: str, push: _Push, recorder: ExchangeRecorder | None, *, calm: bool = True
    ) -> PushAccepted:
        cfg = self._config
        log.debug("%s: sending", _described(push))
        body = push_body(
            shortcode=cfg.shortcode,
            passkey=cfg.passkey,
            timestamp=nairobi_timestamp(self._now()),
            transaction_type=cfg.transaction_type,
            party_b=cfg.party_b,
            phone=push.phone,
            amount=push.amount,
            callback_url=push.callback_url,
            account_reference=push.account_reference,
            description=push.description,
        )
        return push_outcome(self._post(_PUSH, body, token, recorder, calm=calm))

    def _query_once(
        self, token: str, checkout_request_id: str, recorder: ExchangeRecorder | None
    ) -> QueryResult:
        body = query_body(
            shortcode=self._config.shortcode,
            passkey=self._config.passkey,
            timestamp=nairobi_timestamp(self._now()),
            checkout_request_id=checkout_request_id,
        )
        return query_outcome(self._post(_QUERY, body, token, recorder))

    def _with_token(self, call: Callable[[str], _T]) -> _T:
        """Run `call` with the shared token; on an invalid-token answer, refresh once."""
        token = self._tokens.token(self._scope, self._fetch_token)
        try:
            return call(token)
        except InvalidToken as exc:
            log.warning("Daraja refused the access token (%s); fetching a new one", exc.code)
            self._tokens.invalidate(self._scope, token)
        token = self._tokens.token(self._scope, self._fetch_token)
        try:
            return call(token)
        except InvalidToken as exc:
            raise Refused(
                f"access token refused again after a refresh: {exc.message}",
                retryable=False,
                reason=Reason.INVALID_TOKEN,
                kind=exc.kind,
                code=exc.code,
                http_status=exc.http_status,
                request_id=exc.request_id,
            ) from exc

    def _fetch_token(self) -> AccessToken:
        cfg = self._config
        log.info("fetching a Daraja access token")
        try:
            response = self._send(
                "GET",
                cfg.base_url + OAUTH_PATH,
                params={"grant_type": "client_credentials"},
                authorization=_basic(cfg.consumer_key, cfg.consumer_secret),
            )
        except httpx.RequestError as exc:
            raise token_transport_failure(exc) from exc
        return token_outcome(_reply(response))

    def _post(
        self,
        operation: _Operation,
        body: Mapping[str, object],
        token: str,
        recorder: ExchangeRecorder | None,
        *,
        calm: bool = True,
    ) -> Reply:
        url = self._config.base_url + operation.path
        with self._slots:
            if calm:
                self._wait_for_calm()
            handle = _record_request(recorder, operation, url, body)
            started = time.monotonic()
            try:
                response = self._send("POST", url, json=dict(body), authorization=f"Bearer {token}")
            except httpx.RequestError as exc:
                failure = operation.transport_failure(exc)
                _record_answer(recorder, operation, handle, started, error=str(failure))
                raise failure from exc
        _record_answer(
            recorder, operation, handle, started, status=response.status_code, text=response.text
        )
        return _reply(response)

    def _send(
        self,
        method: str,
        url: str,
        *,
        authorization: str,
        json: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request through this thread's transport, its answer read whole."""
        request = httpx.Request(
            method, url, params=params, json=json,
            headers={**_HEADERS, "Authorization": authorization},
            extensions={"timeout": self._config.timeout.as_dict()},
        )  # fmt: skip
        response = self._transport().handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _transport(self) -> httpx.BaseTransport:
        """The given transport, or this thread's own."""
        if self._given is not None:
            return self._given
        mine: tuple[int, httpx.BaseTransport] | None = getattr(self._local, "transport", None)
        if mine is not None and mine[0] == self._generation:
            return mine[1]
        # One connection: the thread makes one call at a time (the slots bound them all).
        limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=IDLE_CONNECTION_S
        )
        assert self._ssl is not None
        transport = httpx.HTTPTransport(
            limits=limits, verify=self._ssl, proxy=proxy_for(self._config.base_url)
        )
        with self._owned_lock:
            self._owned.append(transport)
            self._local.transport = (self._generation, transport)
        return transport

    def _calm_down(self, attempt: int, exc: Refused) -> None:
        """After a rate-limit answer, hold every call of this client for a backoff step
        (or Daraja's Retry-After): one thread refused means the others would be too."""
        if exc.reason is not Reason.RATE_LIMITED:
            return
        # Half a step: the least the refused thread's own jittered back-off waits.
        step = min(BACKOFF_CAP_S, exc.retry_after_s or BACKOFF_BASE_S * 2 ** (attempt - 1) / 2)
        with self._calm_lock:
            self._calm_until = max(self._calm_until, time.monotonic() + step)

    def _wait_for_calm(self) -> None:
        wait = self._calm_until - time.monotonic()
        if wait > 0:
            log.info("Daraja asked us to slow down; waiting %.2fs before the next call", wait)
            self._sleep(wait)

    def _back_off(self, attempt: int, exc: Refused) -> None:
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        # "Equal jitter": never less than half the step, so retries stay spaced out, but
        # spread enough that workers refused together do not come back together.
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        log.warning(
            "stk push refused (%s); retry %d of %d in %.2fs",
            exc.reason.value,
            attempt,
            self._max_refused_retries,
            delay,
        )
        self._sleep(delay)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    `NO_PROXY`, as an `httpx.Client` would honour them), or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def _basic(user: str, password: str) -> str:
    """An HTTP Basic Authorization value, as `httpx.BasicAuth` writes it."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _record_request(
    recorder: ExchangeRecorder | None, operation: _Operation, url: str, body: Mapping[str, object]
) -> object:
    if recorder is None:
        return None
    try:
        return recorder.request_sent(operation.name, url, redacted(body))
    except RequestWithdrawn:
        raise  # the caller's own decision, not a failure: nothing was sent
    except Exception as exc:
        # Nothing has been sent: the caller may try again once its store works.
        raise Refused(
            f"recording the request failed: {type(exc).__name__}",
            retryable=True,
            reason=Reason.RECORDER_FAILED,
            kind=AnswerKind.LOCAL,
        ) from exc


def _record_answer(
    recorder: ExchangeRecorder | None,
    operation: _Operation,
    handle: object,
    started: float,
    *,
    status: int | None = None,
    text: str | None = None,
    error: str | None = None,
) -> None:
    if recorder is None:
        return
    elapsed_ms = int((time.monotonic() - started) * 1000)
    try:
        recorder.answer_received(handle, status, text, error, elapsed_ms)
    except Exception as exc:
        # The answer is lost to the caller, so for a push the outcome is unknown.
        raise operation.lost(
            f"recording the answer failed: {type(exc).__name__}",
            reason=Reason.RECORDER_FAILED,
            kind=AnswerKind.LOCAL,
            http_status=status,
        ) from exc


def _reply(response: httpx.Response) -> Reply:
    content_type = response.headers.get("content-type", "")
    return Reply(
        status=response.status_code,
        answer=read_answer(content_type, response.content),
        retry_after_s=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None  # an HTTP date: rare enough to ignore


def _described(push: _Push) -> str:
    """A push as its log lines name it: the masked number and the amount."""
    return f"stk push to {mask_msisdn(push.phone)} for KES {push.amount}"


def _check_push(push: _Push) -> None:
    """Refuse locally what Daraja would refuse (DARAJA.md §2), worded like Daraja's refusals."""
    if not MSISDN.match(push.phone):
        raise _invalid(
            f"Invalid PhoneNumber: {mask_msisdn(push.phone)} is not 2547/2541 + 8 digits"
        )
    if isinstance(push.amount, bool) or not isinstance(push.amount, int) or push.amount < 1:
        raise _invalid("Invalid Amount: a whole number of KES, at least 1")
    if not push.callback_url.startswith(("https://", "http://")) or any(
        c.isspace() for c in push.callback_url
    ):
        raise _invalid("Invalid CallBackURL: an http(s) URL without spaces")
    if not push.account_reference.strip() or len(push.account_reference) > MAX_ACCOUNT_REFERENCE:
        raise _invalid(f"Invalid AccountReference: 1 to {MAX_ACCOUNT_REFERENCE} characters")
    if not push.description.strip() or len(push.description) > MAX_DESCRIPTION:
        raise _invalid(f"Invalid TransactionDesc: 1 to {MAX_DESCRIPTION} characters")


def _invalid(message: str) -> Refused:
    return Refused(message, retryable=False, reason=Reason.INVALID_REQUEST, kind=AnswerKind.LOCAL)


def _log_failure(what: str, exc: DarajaError) -> None:
    # "Not ready" is the normal answer to most polls; an unknown push needs a human's eye.
    level = logging.WARNING
    if isinstance(exc, OutcomeUnknown):
        level = logging.ERROR
    elif isinstance(exc, QueryNotReady):
        level = logging.INFO
    log.log(level, "%s failed: %s (%s)", what, exc, type(exc).__name__)

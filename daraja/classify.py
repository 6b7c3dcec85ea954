"""What a Daraja answer means: the rules that turn replies into results or taxonomy errors.

Pure functions over an already-read `Reply` (or a transport exception), so every rule is
pinned by a unit test without a network. DARAJA.md §3 and §6 are the authority.

STK push:

| answer | result |
|---|---|
| 200, `ResponseCode` 0 and both ids | `PushAccepted` |
| 404.001.03, 401.002.01, 400.003.01, Apigee token faults | `InvalidToken`: refresh once |
| 500.003.02, 429.001.01, Apigee SpikeArrest, HTTP 429 | `Refused(retryable)`, retried here |
| 500.001.1001 "Unable to lock subscriber" | `Refused(retryable)`, retried here |
| 500.003.03, Apigee Quota | `Refused(retryable)`, left to the worker |
| 500.001.1001 "Merchant does not exist" / "Wrong credentials" | `Refused(not retryable)` |
| any other 4xx code or status (validation, 401.003.01, Apigee 404) | `Refused(not retryable)` |
| connect error, connect or pool timeout (the request never left) | `Refused(retryable)` |
| read timeout, reset, other 5xx, unrecognised body, HTML, unreadable 200 | `OutcomeUnknown` |

STK query: the same, except that any 500.001.1001, other 5xx answers, HTTP 200 with
ResultCode 4999 and every transport failure are `QueryNotReady` (a query has no side
effect, so "ask again later" is always safe), and an unreadable 200 is a plain `DarajaError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from daraja.c2b import Registered, parse_registered
from daraja.errors import (
    AnswerKind,
    DarajaError,
    InvalidToken,
    OutcomeUnknown,
    QueryNotReady,
    Reason,
    Refused,
)
from daraja.wire import (
    AccessToken,
    Answer,
    ErrorBody,
    FaultBody,
    NotJson,
    PushAccepted,
    QueryResult,
    WireError,
    parse_push_accepted,
    parse_query_result,
    parse_token,
)

#: "Invalid Access Token" and its older relatives: refresh the token and retry once.
TOKEN_CODES = frozenset({"404.001.03", "401.002.01", "400.003.01"})
#: Apigee's own words for a bad or expired token, matched inside its fault `errorcode`.
TOKEN_FAULT_MARKERS = ("invalid_access_token", "access_token_expired", "invalidaccesstoken")
#: Gateway rate limit (SpikeArrest): refused before processing.
RATE_LIMIT_CODE = "500.003.02"
#: SpikeArrest as several SDKs report it, with HTTP 429: refused before processing too.
SPIKE_ARREST_CODE = "429.001.01"
#: Gateway quota: refused before processing, but only worth retrying much later.
QUOTA_CODE = "500.003.03"
#: Daraja's catch-all: its message says whether the push was refused (DARAJA.md §3).
BACKEND_CODE = "500.001.1001"
#: The product is not enabled on the app: a configuration error.
NOT_ENTITLED_CODE = "401.003.01"
#: A payer with an open USSD/STK session: Daraja's docs say wait at least a minute.
LOCKED_SUBSCRIBER_WAIT_S = 60.0
#: The still-processing ResultCode a query can return with HTTP 200 (DARAJA.md §6).
STILL_PROCESSING_RESULT = 4999
#: Failures raised before a single byte of the request left this host.
NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
#: 500.001.1001 messages that mean the push was turned down: (marker, reason, retryable).
BACKEND_REFUSALS = (
    ("lock subscriber", Reason.SUBSCRIBER_LOCKED, True),
    ("merchant does not exist", Reason.MERCHANT_UNKNOWN, False),
    ("wrong credentials", Reason.WRONG_CREDENTIALS, False),
)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read: its status, its body's shape, and any `Retry-After`."""

    status: int
    answer: Answer
    retry_after_s: float | None = None


def push_outcome(reply: Reply) -> PushAccepted:
    """The push acknowledgement in `reply`, or the taxonomy error it amounts to."""
    answer = reply.answer
    if isinstance(answer, ErrorBody):
        raise _push_error(reply, answer)
    if isinstance(answer, FaultBody):
        raise _fault_error(reply, answer, OutcomeUnknown)
    if reply.status == 200 and isinstance(answer, dict):
        try:
            return parse_push_accepted(answer)
        except WireError as exc:
            raise OutcomeUnknown(
                f"unreadable push acknowledgement: {exc}",
                reason=Reason.UNREADABLE_ANSWER,
                kind=AnswerKind.UNREADABLE,
                http_status=200,
            ) from exc
    raise _status_error(reply, OutcomeUnknown)


def query_outcome(reply: Reply) -> QueryResult:
    """The final query answer in `reply`, or why there is none this time."""
    answer = reply.answer
    if isinstance(answer, ErrorBody):
        raise _query_error(reply, answer)
    if isinstance(answer, FaultBody):
        raise _fault_error(reply, answer, QueryNotReady)
    if reply.status != 200:
        raise _status_error(reply, QueryNotReady)
    if isinstance(answer, NotJson):
        raise DarajaError(
            answer.description,
            reason=Reason.UNREADABLE_ANSWER,
            kind=AnswerKind.NOT_JSON,
            http_status=200,
        )
    return _final_result(answer)


def token_outcome(reply: Reply) -> AccessToken:
    """The access token in `reply`; every failure is a `Refused` (no push was sent yet)."""
    if reply.status == 200 and isinstance(reply.answer, dict):
        try:
            return parse_token(reply.answer)
        except WireError as exc:
            raise _token_error(reply, f"unreadable token answer: {exc}") from exc
    raise _token_error(reply, _describe(reply.answer))


def push_transport_failure(exc: httpx.RequestError) -> DarajaError:
    """No answer to a push: refused if it never left, otherwise unknown (never resend)."""
    if isinstance(exc, NEVER_SENT):
        return _connect_refused(exc)
    reason = Reason.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Reason.CONNECTION_LOST
    return OutcomeUnknown(_exc_text(exc), reason=reason, kind=AnswerKind.TRANSPORT)


def query_transport_failure(exc: httpx.RequestError) -> DarajaError:
    """No answer to a query: ask again later, whatever happened."""
    reason = Reason.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Reason.CONNECTION_LOST
    return QueryNotReady(_exc_text(exc), reason=reason, kind=AnswerKind.TRANSPORT)


def token_transport_failure(exc: httpx.RequestError) -> Refused:
    """No answer from the token endpoint: the payment request was not sent, so refused."""
    if isinstance(exc, NEVER_SENT):
        return _connect_refused(exc)
    return Refused(
        _exc_text(exc),
        retryable=True,
        reason=Reason.TOKEN_UNAVAILABLE,
        kind=AnswerKind.TRANSPORT,
    )


def _push_error(reply: Reply, body: ErrorBody) -> DarajaError:
    shared = _shared_error(reply, body)
    if shared is not None:
        return shared
    if body.code == BACKEND_CODE:
        refusal = _backend_refusal(reply, body)
        if refusal is not None:
            return refusal
    message = body.message or "Daraja server error"
    return _error(OutcomeUnknown, _daraja_origin(reply, body), message, Reason.SERVER_ERROR)


def _query_error(reply: Reply, body: ErrorBody) -> DarajaError:
    shared = _shared_error(reply, body)
    if shared is not None:
        return shared
    # Any 500.001.1001 on a query, even "does not Exist" for a final payment, is "no answer
    # this time" (DARAJA.md §6); other server errors are no answer either.
    reason = Reason.PROCESSING if body.code == BACKEND_CODE else Reason.SERVER_ERROR
    message = body.message or "no answer yet"
    return _error(QueryNotReady, _daraja_origin(reply, body), message, reason)


def _shared_error(reply: Reply, body: ErrorBody) -> DarajaError | None:
    """Codes that mean the same for a push and a query."""
    origin = _daraja_origin(reply, body)
    if body.code in TOKEN_CODES or "invalid access token" in body.message.lower():
        return _error(InvalidToken, origin, body.message, Reason.INVALID_TOKEN)
    if body.code in (RATE_LIMIT_CODE, SPIKE_ARREST_CODE) or reply.status == 429:
        return _refused(origin, body.message, Reason.RATE_LIMITED, retryable=True)
    if body.code == QUOTA_CODE:
        return _refused(origin, body.message, Reason.QUOTA_EXCEEDED, retryable=True)
    if body.code == NOT_ENTITLED_CODE:
        return _refused(origin, body.message, Reason.NOT_ENTITLED, retryable=False)
    if body.code.startswith("4"):
        reason = Reason.INVALID_REQUEST if body.code.startswith("400.002") else Reason.REJECTED
        return _refused(origin, body.message, reason, retryable=False)
    return None


def _backend_refusal(reply: Reply, body: ErrorBody) -> Refused | None:
    message = body.message.lower()
    for marker, reason, retryable in BACKEND_REFUSALS:
        if marker in message:
            wait = LOCKED_SUBSCRIBER_WAIT_S if reason is Reason.SUBSCRIBER_LOCKED else None
            origin = _daraja_origin(reply, body)
            return _refused(origin, body.message, reason, retryable=retryable, wait_s=wait)
    return None


def _fault_error(reply: Reply, body: FaultBody, otherwise: type[DarajaError]) -> DarajaError:
    """Apigee faults: token and rate faults are recognised; 4xx refused; the rest unknown."""
    marker = (body.errorcode or "").lower().replace(".", "_")
    origin = _Origin(AnswerKind.GATEWAY_FAULT, reply.status, body.errorcode, None, reply)
    text = body.faultstring or "gateway fault"
    if any(m in marker for m in TOKEN_FAULT_MARKERS):
        return _error(InvalidToken, origin, text, Reason.INVALID_TOKEN)
    if "spikearrest" in marker or reply.status == 429:
        return _refused(origin, text, Reason.RATE_LIMITED, retryable=True)
    if "quota" in marker:
        return _refused(origin, text, Reason.QUOTA_EXCEEDED, retryable=True)
    if 400 <= reply.status < 500:
        return _refused(origin, text, Reason.REJECTED, retryable=False)
    return _error(otherwise, origin, text, Reason.SERVER_ERROR)


def _status_error(reply: Reply, otherwise: type[DarajaError]) -> DarajaError:
    """A body we could not read: only the status is left to judge by."""
    kind = AnswerKind.NOT_JSON if isinstance(reply.answer, NotJson) else AnswerKind.UNREADABLE
    origin = _Origin(kind, reply.status, None, None, reply)
    text = _describe(reply.answer)
    if reply.status == 429:
        return _refused(origin, text, Reason.RATE_LIMITED, retryable=True)
    if 400 <= reply.status < 500:
        return _refused(origin, text, Reason.REJECTED, retryable=False)
    reason = Reason.UNREADABLE_ANSWER if reply.status == 200 else Reason.SERVER_ERROR
    return _error(otherwise, origin, text, reason)


def _final_result(answer: dict[str, Any]) -> QueryResult:
    try:
        result = parse_query_result(answer)
    except WireError as exc:
        raise DarajaError(
            f"unreadable query answer: {exc}",
            reason=Reason.UNREADABLE_ANSWER,
            kind=AnswerKind.UNREADABLE,
            http_status=200,
        ) from exc
    if result.result_code == STILL_PROCESSING_RESULT:
        raise QueryNotReady(
            result.result_desc or "still under processing",
            reason=Reason.PROCESSING,
            kind=AnswerKind.HTTP_STATUS,
            code=str(STILL_PROCESSING_RESULT),
            http_status=200,
        )
    return result


def _token_error(reply: Reply, message: str) -> Refused:
    code = _answer_code(reply.answer)
    client_fault = (400 <= reply.status < 500 and reply.status != 429) or (
        code is not None and code.startswith("4")
    )
    origin = _Origin(_answer_kind(reply.answer), reply.status, code, None, reply)
    reason = Reason.AUTH_FAILED if client_fault else Reason.TOKEN_UNAVAILABLE
    return _refused(origin, message, reason, retryable=not client_fault)


@dataclass(frozen=True)
class _Origin:
    """Where an error came from: copied onto every error built from one reply."""

    kind: AnswerKind
    http_status: int | None
    code: str | None
    request_id: str | None
    reply: Reply | None


def _daraja_origin(reply: Reply, body: ErrorBody) -> _Origin:
    return _Origin(AnswerKind.DARAJA_ERROR, reply.status, body.code, body.request_id, reply)


def _error(cls: type[DarajaError], origin: _Origin, message: str, reason: Reason) -> DarajaError:
    return cls(
        message,
        reason=reason,
        kind=origin.kind,
        code=origin.code,
        http_status=origin.http_status,
        request_id=origin.request_id,
    )


def _refused(
    origin: _Origin, message: str, reason: Reason, *, retryable: bool, wait_s: float | None = None
) -> Refused:
    asked = origin.reply.retry_after_s if origin.reply is not None else None
    return Refused(
        message,
        retryable=retryable,
        reason=reason,
        kind=origin.kind,
        code=origin.code,
        http_status=origin.http_status,
        request_id=origin.request_id,
        retry_after_s=asked or wait_s,
    )


def _connect_refused(exc: httpx.RequestError) -> Refused:
    return Refused(
        _exc_text(exc), retryable=True, reason=Reason.CONNECT_FAILED, kind=AnswerKind.TRANSPORT
    )


def _answer_code(answer: Answer) -> str | None:
    if isinstance(answer, ErrorBody):
        return answer.code
    if isinstance(answer, FaultBody):
        return answer.errorcode
    return None


def _answer_kind(answer: Answer) -> AnswerKind:
    if isinstance(answer, ErrorBody):
        return AnswerKind.DARAJA_ERROR
    if isinstance(answer, FaultBody):
        return AnswerKind.GATEWAY_FAULT
    if isinstance(answer, NotJson):
        return AnswerKind.NOT_JSON
    return AnswerKind.UNREADABLE


def _describe(answer: Answer) -> str:
    if isinstance(answer, ErrorBody):
        return answer.message or answer.code
    if isinstance(answer, FaultBody):
        return answer.faultstring or (answer.errorcode or "gateway fault")
    if isinstance(answer, NotJson):
        return answer.description
    return "JSON answer without the expected fields"


def _exc_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def register_outcome(reply: Reply) -> Registered:
    """Daraja's acceptance of C2B URLs, or why it refused them (never retried here).

    A token refusal is `InvalidToken` (refreshed once); every other error body, fault,
    status or unreadable answer is `Refused`, not retryable: a person reads it ("Urls are
    already registered" means production URLs change only through Safaricom).
    """
    answer = reply.answer
    if isinstance(answer, ErrorBody):
        if answer.code in TOKEN_CODES:
            raise _error(InvalidToken, _daraja_origin(reply, answer), answer.message,
                         Reason.INVALID_TOKEN)  # fmt: skip
        raise _refused(_daraja_origin(reply, answer), answer.message or answer.code,
                       Reason.REJECTED, retryable=False)  # fmt: skip
    if reply.status == 200 and isinstance(answer, dict):
        registered = parse_registered(answer)
        if registered is not None:
            return registered
    raise Refused(
        f"registerurl not accepted: HTTP {reply.status}, {_describe(answer)}",
        retryable=False, reason=Reason.UNREADABLE_ANSWER, kind=_answer_kind(answer),
        http_status=reply.status,
    )  # fmt: skip


def register_transport_failure(exc: httpx.RequestError) -> DarajaError:
    """No answer to a register-URL request: unknown; registering again is safe to try."""
    reason = Reason.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Reason.CONNECTION_LOST
    return DarajaError(_exc_text(exc), reason=reason, kind=AnswerKind.TRANSPORT)

"""The Daraja error taxonomy: what a failed call means for the payment, not how it failed.

Three questions decide what a caller may do next, so there are three classes:

- `Refused`: Daraja (or we, before sending) turned the request down before processing it.
  Nothing reached the customer's phone. `retryable` says whether sending it again later
  can help (rate limits, a locked subscriber, a connection that never opened) or not
  (validation, credentials, configuration).
- `OutcomeUnknown`: the request may have been processed: the prompt may be on the phone.
  Never resend; reconcile through the STK query or the callback.
- `QueryNotReady`: an STK query got no final answer this time; ask again later.

Anything else is a plain `DarajaError` (an answer we could not read). Every error carries
`kind` (what the answer looked like: a Daraja error body, an Apigee fault, HTML, a transport
failure...) and `reason` (a short snake_case name fit for metrics and failure reasons).
"""

from __future__ import annotations

from enum import StrEnum


class AnswerKind(StrEnum):
    """The shape of what came back (or did not)."""

    DARAJA_ERROR = "daraja_error"  # {"requestId", "errorCode", "errorMessage"}
    GATEWAY_FAULT = "gateway_fault"  # Apigee's {"fault": {"faultstring", "detail": ...}}
    NOT_JSON = "not_json"  # HTML or text pages from a proxy or CDN
    UNREADABLE = "unreadable"  # JSON, but not the fields we expected
    HTTP_STATUS = "http_status"  # nothing but a status worth reading
    TRANSPORT = "transport"  # no HTTP answer at all: connect error, timeout, reset
    LOCAL = "local"  # we refused before sending (bad input, recorder or cache failure)


class Reason(StrEnum):
    """Why a call failed, in words a worker can log, count and act on."""

    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    SUBSCRIBER_LOCKED = "subscriber_locked"
    CONNECT_FAILED = "connect_failed"
    TOKEN_UNAVAILABLE = "token_unavailable"  # noqa: S105 - a reason, not a secret
    AUTH_FAILED = "auth_failed"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a reason, not a secret
    NOT_ENTITLED = "not_entitled"
    WRONG_CREDENTIALS = "wrong_credentials"
    MERCHANT_UNKNOWN = "merchant_unknown"
    INVALID_REQUEST = "invalid_request"
    REJECTED = "rejected"
    RECORDER_FAILED = "recorder_failed"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    SERVER_ERROR = "server_error"
    UNREADABLE_ANSWER = "unreadable_answer"
    PROCESSING = "processing"


class DarajaError(Exception):
    """A Daraja call that did not produce the answer asked for.

    Attributes:
        code: Daraja's `errorCode` (`"500.003.02"`), Apigee's fault `errorcode`, or None.
        message: Daraja's `errorMessage`, Apigee's `faultstring`, or our own description.
        http_status: the HTTP status, or None when no answer came back.
        kind: the shape of the answer (`AnswerKind`).
        reason: what it means (`Reason`).
        request_id: Daraja's `requestId`, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: Reason,
        kind: AnswerKind,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.reason.value]
        if self.code:
            parts.append(self.code)
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        return f"{' '.join(parts)}: {self.message}"


class Refused(DarajaError):
    """Refused before processing: nothing was sent to the phone.

    Attributes:
        retryable: sending the same request again later may succeed.
        retry_after_s: the wait Daraja asked for (`Retry-After`) or that its docs give
            (60 s for a locked subscriber), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: Reason,
        kind: AnswerKind,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            message,
            reason=reason,
            kind=kind,
            code=code,
            http_status=http_status,
            request_id=request_id,
        )
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class OutcomeUnknown(DarajaError):
    """The request may have been processed. Never resend it: reconcile instead."""


class QueryNotReady(DarajaError):
    """The STK query has no final answer this time (still processing, or no answer)."""


class RequestWithdrawn(Exception):
    """Raised by a recorder's `request_sent` when the request is no longer to be sent (the
    work was done by another, or ended): nothing is sent, and the client lets it through as
    it is, neither logged as a failure nor turned into `Refused`."""


class InvalidToken(DarajaError):
    """Daraja rejected the access token; the client refreshes it once, then gives up.

    Never escapes `DarajaClient`: a second rejection becomes `Refused(retryable=False)`.
    """

"""The error envelope every answer uses: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

import logging

from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException

from api.types import AnyRequest

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer the client should see, with a stable snake_case `code`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra


#: What a customer is told when payments cannot be taken right now.
UNAVAILABLE = "M-Pesa payments are unavailable right now. Please order by phone."


def payments_unavailable(contact: str, cause: Exception) -> ApiError:
    """503 `payments_unavailable` with the shop's call-to-order `contact`, for a store that
    is down. Logged at ERROR, so operators (and Sentry, through logging) see every refusal."""
    log.error("answering 503: the database is unavailable (%s)", type(cause).__name__)
    return ApiError(
        503, "payments_unavailable", UNAVAILABLE, contact=contact, headers={"Retry-After": "30"}
    )


def envelope(
    code: str, message: str, field: str | None = None, **extra: object
) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def api_error_handler(_: AnyRequest, exc: ApiError) -> Response[object]:
    return Response(
        envelope(exc.code, exc.message, exc.field, **exc.extra),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


#: Litestar's own HTTP errors, named for the envelope.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_error_handler(_: AnyRequest, exc: HTTPException) -> Response[object]:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return Response(
        envelope(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def validation_error_handler(request: AnyRequest, exc: ValidationException) -> Response[object]:
    """A path or query parameter Litestar could not read: 400 `invalid_parameter`, naming it.

    (Bodies are read by hand and never reach Litestar's validation.)
    """
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    name, why = first.get("key"), first.get("message")
    if not isinstance(name, str):
        return http_error_handler(request, exc)
    message = f"{name} is not valid: {str(why).rstrip('.')}." if why else f"{name} is not valid."
    return Response(
        envelope("invalid_parameter", message, name),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
    )


def internal_error_handler(request: AnyRequest, exc: Exception) -> Response[object]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        envelope("internal_error", "Something went wrong on our side; nothing was lost."),
        status_code=500,
        media_type=MediaType.JSON,
    )

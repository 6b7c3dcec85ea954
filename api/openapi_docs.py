"""What the OpenAPI document says about callers and errors, so clients (and schemathesis)
know every answer a payment endpoint may give."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

#: The one scheme: `Authorization: Bearer <API key | checkout token | operator token>`.
BEARER = "bearer"
COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="A shop API key, a checkout token or an operator token (README).",
        )
    }
)
#: For handlers that need a caller.
SECURED: list[SecurityRequirement] = [{BEARER: []}]


@dataclass
class ErrorDetail:
    code: str
    message: str
    field: str | None


@dataclass
class ErrorEnvelope:
    error: ErrorDetail


_TEXT = {
    400: "Malformed JSON",
    401: "unauthenticated: no valid API key or token",
    404: "Not found, or not the caller's to see",
    409: "Conflict (payment_in_progress, idempotency_key_reused)",
    413: "Body over 64 KiB",
    415: "unsupported_media_type: the body must be application/json",
    422: "A field is invalid (error.field names it)",
    429: "rate_limited, with Retry-After",
    503: "payments_unavailable, with the shop's contact",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers `statuses`, each in the envelope."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope, description=_TEXT[status], generate_examples=False
        )
        for status in statuses
    }

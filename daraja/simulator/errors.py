"""Daraja's synchronous error answers: HTTP status, errorCode and errorMessage (DARAJA.md §3).

The wording is Daraja's own, typos and odd casing included ("does not Exist"), because
clients match on these strings in the wild and must keep working against the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """One refusal as Daraja words it; the answer adds a requestId."""

    status: int
    code: str
    message: str


def invalid_field(field: str) -> Refusal:
    """Payload validation failure for `field`, e.g. "Bad Request - Invalid Amount"."""
    return Refusal(400, "400.002.02", f"Bad Request - Invalid {field}")


INVALID_PAYLOAD = Refusal(400, "400.002.05", "Invalid Request Payload")
INVALID_GRANT_TYPE = Refusal(400, "400.008.02", "Invalid grant type passed")
INVALID_AUTH_TYPE = Refusal(400, "400.008.01", "Invalid authentication type passed")
INVALID_AUTHENTICATION = Refusal(400, "400.008.01", "Invalid Authentication passed")
INVALID_ACCESS_TOKEN = Refusal(404, "404.001.03", "Invalid Access Token")
RESOURCE_NOT_FOUND = Refusal(404, "404.001.01", "Resource not found")
METHOD_NOT_ALLOWED = Refusal(405, "405.001", "Method Not Allowed")
MERCHANT_UNKNOWN = Refusal(500, "500.001.1001", "Merchant does not exist")
WRONG_CREDENTIALS = Refusal(500, "500.001.1001", "Wrong credentials")
SUBSCRIBER_LOCKED = Refusal(
    500,
    "500.001.1001",
    "Unable to lock subscriber, a transaction is already in process for the current subscriber",
)
SYSTEM_BUSY = Refusal(500, "500.003.02", "System is busy. Please try again in few minutes.")
SPIKE_ARREST = Refusal(500, "500.003.02", "Error Occurred: Spike Arrest Violation")
BEING_PROCESSED = Refusal(500, "500.001.1001", "The transaction is being processed")
#: Seen with HTTP 200 and an empty message while a prompt is open (DARAJA.md §6).
BEING_PROCESSED_QUIETLY = Refusal(200, "500.001.1001", "")
TRANSACTION_UNKNOWN = Refusal(500, "500.001.1001", "The transaction does not Exist")
INTERNAL_ERROR = Refusal(500, "500.003.1001", "Internal Server Error")

"""HTTP answers in the shapes Daraja and its Apigee gateway send.

Bodies are encoded here rather than by Litestar so that field order, types and
Content-Type are exactly what the simulator chooses, never a framework default.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response

from daraja.simulator.errors import Refusal

JSON = "application/json"

#: What Apigee answers when the backend is down (`{"fault": ...}`, not Daraja's shape).
_FAULT = {
    "fault": {
        "faultstring": "The Service is temporarily unavailable",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ServiceUnavailable"},
    }
}

#: A gateway page served with HTTP 200 where JSON was expected (osen-wc-mpesa#10).
_HTML = (
    "<html><head><title>Request Rejected</title></head><body>"
    "The requested URL was rejected. Please consult with your administrator.<br><br>"
    "Your support ID is: 1234567890123456789</body></html>"
)


def json_answer(body: dict[str, Any], status: int = 200) -> Response[bytes]:
    """`body` as JSON with `status`."""
    return Response(msgspec.json.encode(body), status_code=status, media_type=JSON)


def error_answer(error: Refusal, request_id: str) -> Response[bytes]:
    """Daraja's `{"requestId", "errorCode", "errorMessage"}` refusal."""
    body = {"requestId": request_id, "errorCode": error.code, "errorMessage": error.message}
    return json_answer(body, error.status)


def fault_answer() -> Response[bytes]:
    """An Apigee fault body, HTTP 503."""
    return json_answer(_FAULT, 503)


def html_answer() -> Response[bytes]:
    """A non-JSON gateway page, HTTP 200, text/html."""
    return Response(_HTML.encode(), status_code=200, media_type="text/html")


def control_error(
    status: int, code: str, message: str, field: str | None = None
) -> Response[bytes]:
    """A refusal on the control API, in Khalex Pay's own error shape (CONTRACT.md §4)."""
    return json_answer({"error": {"code": code, "message": message, "field": field}}, status)

"""One signed POST to the shop's webhook, per the Standard Webhooks spec.

Signing is done here with `hmac`: `webhook-signature: v1,<base64 HMAC-SHA256(key,
"{webhook-id}.{webhook-timestamp}.{body}")>`, keyed with the bytes SHOP_WEBHOOK_SECRET holds
(`whsec_<base64>`). The `standardwebhooks` package, which the shop would use to verify, is a
test dependency only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass
from functools import cache

import httpx

from domain.phone import mask_msisdns_in

#: Seconds to open the connection to the shop.
CONNECT_S = 3.0
#: Seconds one attempt may take in all; a slow shop costs a webhook worker no more than this.
TOTAL_S = 10.0
#: Characters of the shop's answer kept with the attempt.
EXCERPT_CHARS = 500
#: Bytes of the answer read at most (enough for the excerpt; the rest is never read).
READ_BYTES = 4096


@dataclass(frozen=True)
class Answer:
    """What the shop said (`http_status`, an excerpt of its answer) or why it said nothing."""

    http_status: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


def sign(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value for `body` sent as `msg_id` at `timestamp`."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(key: bytes, msg_id: str, body: str, now: float) -> dict[str, str]:
    """The headers of one attempt; the timestamp is the attempt's, as receivers check it."""
    timestamp = int(now)
    return {
        "content-type": "application/json",
        "user-agent": "khalex-pay",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def send(url: str, body: str, sent_headers: dict[str, str], *, total_s: float = TOTAL_S) -> Answer:
    """POST `body` once; never raises for what the shop or the network did.

    httpx's timeouts bound each step, not the whole; the event loop's `wait_for` does.
    """
    started = time.monotonic()
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    try:
        status, excerpt = asyncio.run(
            asyncio.wait_for(_post(url, body, sent_headers, total_s), total_s)
        )
    except TimeoutError:
        error = f"no answer within {total_s:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ")
    latency_ms = round((time.monotonic() - started) * 1000)
    return Answer(status, latency_ms, excerpt, error[:EXCERPT_CHARS] if error else None)


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs about 0.1 s of CPU: once per process, not per attempt.
    return httpx.create_ssl_context()


async def _post(
    url: str, body: str, sent_headers: dict[str, str], total_s: float
) -> tuple[int, str]:
    timeout = httpx.Timeout(total_s, connect=min(CONNECT_S, total_s))
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls()) as client,
        client.stream("POST", url, content=body.encode(), headers=sent_headers) as answer,
    ):
        read = b""
        async for chunk in answer.aiter_bytes():
            read += chunk
            if len(read) >= READ_BYTES:
                break
    # The shop's answer is free text: a phone number in it is masked like in our logs.
    text = read[:READ_BYTES].decode("utf-8", errors="replace")
    return answer.status_code, mask_msisdns_in(text)[:EXCERPT_CHARS]

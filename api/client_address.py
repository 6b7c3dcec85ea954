"""The client's address, for the per-address limit (CONTRACT.md §9).

The peer's address, unless the peer is one of TRUSTED_PROXIES: then the right-most entry of
`X-Forwarded-For` that is not itself a trusted proxy (entries to its left are whatever the
client chose to send, so they are never believed). With no trusted proxies, the header is
ignored; `khalex-pay api` also tells uvicorn not to rewrite the peer from it.
"""

from __future__ import annotations

import ipaddress

from api.types import AnyRequest
from plumbing.settings import Network


def client_address(request: AnyRequest, trusted: tuple[Network, ...]) -> str:
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = ",".join(request.headers.getall("x-forwarded-for", []))
    for entry in reversed([e.strip() for e in forwarded.split(",") if e.strip()]):
        try:
            address = ipaddress.ip_address(entry)
        except ValueError:
            return peer  # a proxy we trust always writes an address: this one did not
        if not any(address in net for net in trusted):
            return str(address)
    return peer


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)

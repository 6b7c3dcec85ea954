"""Registering the shop's C2B (PayBill) URLs with Daraja (`khalex-pay c2b register`).

Production registers once per shortcode; changing the URLs afterwards goes through
Safaricom. The exchange is stored in `daraja_exchanges` like every other Daraja call.
"""

from __future__ import annotations

import logging

from daraja.c2b import Registered
from daraja.client import DarajaClient
from daraja.tokens import MemoryTokenCache
from payments import c2b
from payments.container import Container, daraja_config
from store.exchanges import StoreRecorder

log = logging.getLogger(__name__)

#: What Daraja does with a payment when our validation URL does not answer in time.
DEFAULT_RESPONSE_TYPE = "Completed"


def register(
    c: Container,
    *,
    response_type: str = DEFAULT_RESPONSE_TYPE,
    base_url: str | None = None,
    client: DarajaClient | None = None,
) -> tuple[Registered, dict[str, str]]:
    """Register the confirmation and validation URLs (`payments.c2b.urls`); returns Daraja's
    answer and the URLs registered.

    Raises:
        daraja.errors.Refused: Daraja refused (or would refuse: checked before sending).
        daraja.errors.DarajaError: no answer; try again.
    """
    urls = c2b.urls(c.settings, base_url)
    own = client is None
    daraja = client or DarajaClient(daraja_config(c.settings), c.token_cache or MemoryTokenCache())
    try:
        registered = daraja.register_c2b_urls(
            response_type=response_type,
            confirmation_url=urls[c2b.CONFIRMATION],
            validation_url=urls[c2b.VALIDATION],
            recorder=StoreRecorder(c.engine, None),
        )
    finally:
        if own:
            daraja.close()
    return registered, urls

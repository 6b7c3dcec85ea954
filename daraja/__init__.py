"""Safaricom Daraja (M-Pesa Express / STK Push): the client and its wire format.

`daraja.client` calls Daraja, `daraja.tokens` shares one OAuth token between processes,
`daraja.errors` is the error taxonomy callers act on, `daraja.callbacks` reads STK callback
bodies, and `daraja.wire` holds every Daraja field name. `daraja.simulator` stands in for
Daraja in development and tests.
"""

from daraja.callbacks import MalformedCallback, StkCallback, parse_stk_callback
from daraja.client import DarajaClient, DarajaConfig, ExchangeRecorder
from daraja.errors import (
    AnswerKind,
    DarajaError,
    OutcomeUnknown,
    QueryNotReady,
    Reason,
    Refused,
)
from daraja.tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from daraja.wire import PushAccepted, QueryResult, mask_msisdn, nairobi_timestamp, stk_password

__all__ = [
    "AnswerKind",
    "DarajaClient",
    "DarajaConfig",
    "DarajaError",
    "ExchangeRecorder",
    "MalformedCallback",
    "MemoryTokenCache",
    "OutcomeUnknown",
    "PushAccepted",
    "QueryNotReady",
    "QueryResult",
    "Reason",
    "RedisTokenCache",
    "Refused",
    "StkCallback",
    "TokenCache",
    "mask_msisdn",
    "nairobi_timestamp",
    "parse_stk_callback",
    "stk_password",
]

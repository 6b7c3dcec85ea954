"""Sealed columns: personal values encrypted on their way in, opened on their way out.

`Sealed` is a column type, so code reading `row.phone_number` sees the clear value while
the table (and every dump or backup of it) holds only `kp1:…` ciphertext. `SEALED_COLUMNS`
names every sealed column, for `khalex-pay keys rotate-data`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from plumbing import sealing

#: Blind-index kinds: the same value hashes differently per kind.
PHONE, CHECKOUT = "phone", "checkout"


class Sealed(sa.TypeDecorator[str]):
    """Text sealed with the process's keyring (plumbing/sealing.py); clear legacy values pass."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        # Always sealed, even a value that looks sealed already: a customer may type anything.
        return None if value is None else sealing.seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else sealing.open_value(value)


def phone_index(msisdn: str) -> str:
    """The blind index of a normalised MSISDN (2547…/2541…)."""
    return sealing.blind_index(PHONE, msisdn)


def checkout_index(checkout_request_id: str) -> str:
    return sealing.blind_index(CHECKOUT, checkout_request_id)

"""Personal data sealed at rest: AES-GCM under rotating keys, and keyed blind indexes.

A sealed value is `kp1:<key id>:<base64url(nonce + ciphertext)>`. The key id (8 hex
characters of the key's SHA-256) says which of `DATA_ENCRYPTION_KEYS` opens it, so keys can
rotate: the first key seals, every listed key opens. A value without the prefix is legacy
clear text and is returned as it is, so rows written before sealing keep working until
`khalex-pay keys rotate-data` seals them.

Equality look-ups (by phone, by CheckoutRequestID) cannot use a sealed column, whose every
value differs: they use `blind_index`, an HMAC under `BLIND_INDEX_KEY`, which does not
change when the data keys rotate. Losing a data key loses what it sealed, for good.

Standard library and `cryptography` only: the store's column types and the raw-record
walker call it at bind time, so a process installs its `Keyring` once at start (`install`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Marks a sealed value; the version names this format.
PREFIX = "kp1:"
#: A sealed value anywhere in a text: prefix, key id, base64url body.
TOKEN = re.compile(r"kp1:[0-9a-f]{8}:[A-Za-z0-9_-]{38,}")
#: Bytes of every key (AES-256, HMAC-SHA256).
KEY_BYTES = 32
NONCE_BYTES = 12
#: Hex characters kept of a blind index: 128 bits, no collisions at any shop's scale.
INDEX_HEX = 32


class SealingError(Exception):
    """A sealed value that no key opens, or was altered, or no keyring installed."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def key_problem(text: str) -> str | None:
    """What is wrong with `text` as a key, after the setting's name; None when it is one."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"must be base64 ({exc})"
    if len(key) != KEY_BYTES:
        return f"keys must be {KEY_BYTES} bytes, base64-encoded"
    return None


def _b64_key(text: str, name: str) -> bytes:
    if problem := key_problem(text):
        raise ValueError(f"{name} {problem}")
    return base64.b64decode(text.strip(), validate=True)


def new_key() -> str:
    """A fresh base64 key for DATA_ENCRYPTION_KEYS or BLIND_INDEX_KEY."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class Keyring:
    """The data keys (the first seals, all open) and the blind-index key."""

    # Never in a repr: a keyring printed in a log line or an error report gives keys away.
    data_keys: tuple[bytes, ...] = field(repr=False)
    index_key: bytes = field(repr=False)
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.data_keys:
            raise ValueError("DATA_ENCRYPTION_KEYS needs at least one key")
        object.__setattr__(self, "_aead", {key_id(k): AESGCM(k) for k in self.data_keys})

    @classmethod
    def parse(cls, data_keys: str, index_key: str) -> Keyring:
        """From the settings' text; ValueError naming the bad setting."""
        keys = [_b64_key(k, "DATA_ENCRYPTION_KEYS") for k in data_keys.split(",") if k.strip()]
        if not keys:
            raise ValueError("DATA_ENCRYPTION_KEYS is empty")
        return cls(tuple(keys), _b64_key(index_key, "BLIND_INDEX_KEY"))

    @property
    def current_id(self) -> str:
        return key_id(self.data_keys[0])

    def seal(self, text: str) -> str:
        """`text` encrypted under the first key (a random nonce each time)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(self.current_id).encrypt(nonce, text.encode(), None)
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
        return f"{PREFIX}{self.current_id}:{body}"

    def open(self, value: str) -> str:
        """The clear text of a sealed value; a value that is not sealed comes back as it is."""
        if not value.startswith(PREFIX):
            return value
        try:
            _, kid, body = value.split(":", 2)
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, binascii.Error) as exc:
            raise SealingError("a sealed value is damaged") from exc
        try:
            clear = self._cipher(kid).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise SealingError(f"a value sealed under key {kid} was altered") from exc
        return clear.decode()

    def is_current(self, value: str) -> bool:
        """True when `value` is sealed under the first key (nothing to rotate)."""
        return value.startswith(f"{PREFIX}{self.current_id}:")

    def blind_index(self, kind: str, value: str) -> str:
        """A keyed digest of `value` for equality look-ups; `kind` keeps kinds apart."""
        message = f"{kind}:{value}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()[:INDEX_HEX]

    def keyed_digest(self, data: bytes) -> str:
        """A keyed SHA-256 of `data` (idempotency fingerprints of bodies holding a phone)."""
        return hmac.new(self.index_key, b"digest:" + data, hashlib.sha256).hexdigest()

    def _cipher(self, kid: str) -> AESGCM:
        try:
            return self._aead[kid]
        except KeyError:
            raise SealingError(
                f"no key in DATA_ENCRYPTION_KEYS has id {kid}: that data cannot be read"
            ) from None


def is_sealed(value: str) -> bool:
    """True when `value` is a whole sealed value (a stranger's "kp1:" text is not)."""
    return TOKEN.fullmatch(value) is not None


_current: Keyring | None = None


def install(keyring: Keyring | None) -> None:
    """Make `keyring` the process's keyring (the store's column types use it)."""
    global _current  # noqa: PLW0603 - one keyring per process, set once at start
    _current = keyring


def installed() -> Keyring | None:
    """The installed keyring, or None (to restore it after a temporary one)."""
    return _current


def current() -> Keyring:
    if _current is None:
        raise SealingError("no data keys installed: set DATA_ENCRYPTION_KEYS and BLIND_INDEX_KEY")
    return _current


def seal(text: str) -> str:
    return current().seal(text)


def open_value(value: str) -> str:
    return current().open(value)


def blind_index(kind: str, value: str) -> str:
    return current().blind_index(kind, value)

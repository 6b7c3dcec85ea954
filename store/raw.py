"""Raw bytes and text from strangers, made safe to store in any text or JSON column.

PostgreSQL refuses NUL in text and `\\u0000` in JSONB, and varchar columns refuse what is
longer than their width: either would turn a stranger's junk into a 500 and lose the record.
"""

from __future__ import annotations

import json
import re
from typing import Any

from domain.phone import mask_msisdns_in
from plumbing import sealing

#: How much of a refused body we keep: enough to see what was sent, not enough to fill a disk.
REFUSED_BODY_BYTES = 4096


def body_text(raw: bytes, *, limit: int | None = None) -> str:
    """`raw` as storable text: invalid UTF-8 and NUL written as `\\xNN`, cut at `limit` bytes."""
    kept = raw if limit is None else raw[:limit]
    return kept.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def reason(value: str, width: int) -> str:
    """A stranger's short text (a reason quoting a value, a path): numbers masked, e-mails out."""
    return text(EMAIL_LIKE.sub("[e-mail]", mask_msisdns_in(value)), width)


def text(value: str, width: int) -> str:
    """`value` cut to `width` characters, NUL and lone surrogates escaped."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe[:width]


# --- Personal values in raw records -----------------------------------------------------------
#
# A raw record keeps what an operator debugs with (structure, ids, codes, amounts, receipts)
# and seals each personal value in place: values under personal keys, and any value holding
# a phone-like run of digits (a CheckoutRequestID ends with the payer's number) or an e-mail.
# A JSON value is sealed as its JSON text, so opening gives back numbers as numbers. A body
# that is not JSON is sealed whole: junk cannot be told apart from a name.

#: Keys whose value is personal, compared lower-case without `_` and `-`.
PERSONAL_KEYS = frozenset({
    "phonenumber", "phone", "partya", "msisdn", "firstname", "middlename", "lastname",
    "fullname", "customername", "customeremail", "customerphone", "deliveryaddress",
    "address", "notes", "email", "name", "idnumber",
})  # fmt: skip
#: Parts of a key that make its value personal wherever they appear (`payerPhone`).
PERSONAL_PARTS = ("phone", "msisdn", "email", "mail", "firstname", "lastname", "address")
#: Nine or more digits, perhaps grouped by spaces, dashes, dots or brackets, perhaps after +.
PHONE_LIKE = re.compile(r"\d(?:[\s\-.()/]*\d){8,}")
EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
#: A payment or order id: hex digits that are not a number.
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
#: Daraja's own ids, grouped by dashes ("29115-34620561-1"): sealed only for a 9-digit run.
ID_KEYS = frozenset({"merchantrequestid", "conversationid", "originatorconversationid"})
DIGIT_RUN = re.compile(r"\d{9,}")
#: Daraja's compact dates (YYYYMMDDHHmmss) under the keys that hold them stay readable.
DATE_KEYS = frozenset({"timestamp", "transactiondate", "transtime"})
COMPACT_DATE = re.compile(r"20\d{12}")


#: Any of PERSONAL_PARTS, in one search.
_PERSONAL_PART = re.compile("|".join(map(re.escape, PERSONAL_PARTS)))


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _personal_key(name: str, siblings: dict[str, Any]) -> bool:
    key = _key(name)
    if key == "name" and "Value" in siblings:
        return False  # Daraja's {"Name": "PhoneNumber", "Value": …}: a label, not a person
    return key in PERSONAL_KEYS or _PERSONAL_PART.search(key) is not None


def _looks_personal(value: object, key: str | None) -> bool:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        return False
    elif isinstance(value, int | float):
        text = str(value)
    else:
        return False
    # Only a run of digits (ids match a stricter one) or an e-mail is ever personal, and
    # most values hold neither: they are let through before the finer checks below.
    if "@" not in text and PHONE_LIKE.search(text) is None:
        return False
    if sealing.is_sealed(text) or UUID_TEXT.fullmatch(text):
        return False
    kind = _key(key) if key is not None else ""
    if kind in DATE_KEYS and COMPACT_DATE.fullmatch(text):
        return False
    digits = DIGIT_RUN if kind in ID_KEYS else PHONE_LIKE
    return bool(digits.search(text) or EMAIL_LIKE.search(text))


def _seal_value(value: object) -> str:
    return sealing.seal(json.dumps(value, ensure_ascii=True))


def seal_tree(node: Any, key: str | None = None) -> Any:
    """`node` (parsed JSON) with every personal value replaced by its sealed JSON text."""
    if isinstance(node, dict):
        return _seal_object(node)
    if isinstance(node, list):
        return [seal_tree(v, key) for v in node]
    return _seal_value(node) if _looks_personal(node, key) else node


def _seal_object(node: dict[str, Any]) -> dict[str, Any]:
    """One object: each member's key (a stranger's may hold a number) and value."""
    label = node.get("Name")
    context = label if isinstance(label, str) else None
    # Daraja's {"Name": "PhoneNumber", "Value": …}: the value is personal under its label.
    has_value = "Value" in node
    named = context is not None and has_value and _personal_key(context, {})
    sealed: dict[str, Any] = {}
    for k, value in node.items():
        key_personal, value_personal, is_name = _KEYS.get(k) or _key_verdicts(k)
        kept_key = _seal_value(k) if key_personal else k
        # Daraja's {"Name": "PhoneNumber", "Value": …}: that Name is a label, not a person.
        personal = (named and k == "Value") or (value_personal and not (is_name and has_value))
        if personal and value is not None and not _sealed(value):
            sealed[kept_key] = _seal_value(value)
        else:
            # Daraja's {"Name": "TransactionDate", "Value": …}: read under its label.
            sealed[kept_key] = seal_tree(value, context if k == "Value" and context else k)
    return sealed


#: `_key_verdicts` of the keys seen most (Daraja's, ours): bounded, and short keys only.
_KEYS: dict[str, tuple[bool, bool, bool]] = {}
_KEYS_KEPT, _KEY_KEPT_CHARS = 1024, 64


def _key_verdicts(name: str) -> tuple[bool, bool, bool]:
    """Whether the key `name` is itself personal, whether its value is (`_personal_key`),
    and whether it is `Name`, which beside a `Value` is a label (its value is not)."""
    verdicts = (_looks_personal(name, None), _personal_key(name, {}), _key(name) == "name")
    if len(_KEYS) < _KEYS_KEPT and len(name) <= _KEY_KEPT_CHARS:
        _KEYS[name] = verdicts
    return verdicts


def _sealed(value: object) -> bool:
    return isinstance(value, str) and sealing.is_sealed(value)


def open_tree(node: Any) -> Any:
    """The inverse of `seal_tree`: sealed strings back to the JSON values they were."""
    if isinstance(node, dict):
        return {open_tree(k): open_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [open_tree(v) for v in node]
    if _sealed(node):
        return _opened(node)
    return node


def _opened(token: str) -> Any:
    """A sealed JSON value of a raw record, or the token as stored when it does not open."""
    clear = _open_text(token)
    return token if clear is None else json.loads(clear)


def _open_text(token: str) -> str | None:
    """The clear text of `token`; None when it does not open.

    Raw records hold strangers' bytes: a body may carry text shaped like our sealed values,
    which the walker keeps as it is. Such a look-alike (or a value under a lost key) is
    then shown as stored rather than making the whole record unreadable.
    """
    try:
        return sealing.open_value(token)
    except sealing.SealingError:
        return None


def seal_personal(text: str) -> str:
    """A raw body with its personal values sealed (see above); a non-JSON body sealed whole."""
    if sealing.is_sealed(text):
        return text
    try:
        return json.dumps(seal_tree(json.loads(text)), ensure_ascii=True)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to walk
        return sealing.seal(text) if text else text


def open_personal(text: str) -> str:
    """A stored raw body as it was received (JSON re-written, values unchanged)."""
    if sealing.is_sealed(text):
        clear = _open_text(text)
        return text if clear is None else clear
    try:
        return json.dumps(open_tree(json.loads(text)), ensure_ascii=True)
    except (ValueError, RecursionError):
        return text  # stored before sealing, not JSON: legacy clear text

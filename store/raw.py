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


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _personal_key(name: str, siblings: dict[str, Any]) -> bool:
    key = _key(name)
    if key == "name" and "Value" in siblings:
        return False  # Daraja's {"Name": "PhoneNumber", "Value": …}: a label, not a person
    return key in PERSONAL_KEYS or any(part in key for part in PERSONAL_PARTS)


def _looks_personal(value: object, key: str | None) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or sealing.is_sealed(value) or UUID_TEXT.fullmatch(value):
        return False
    kind = _key(key) if key is not None else ""
    if kind in DATE_KEYS and COMPACT_DATE.fullmatch(value):
        return False
    digits = DIGIT_RUN if kind in ID_KEYS else PHONE_LIKE
    return bool(digits.search(value) or EMAIL_LIKE.search(value))


def _seal_value(value: object) -> str:
    return sealing.seal(json.dumps(value, ensure_ascii=True))


def seal_tree(node: Any, key: str | None = None) -> Any:
    """`node` (parsed JSON) with every personal value replaced by its sealed JSON text."""
    if isinstance(node, dict):
        label = node.get("Name")
        named = isinstance(label, str) and "Value" in node and _personal_key(label, {})
        personal = {k for k in node if _personal_key(k, node)} | ({"Value"} if named else set())
        context = label if isinstance(label, str) else None
        return dict(_seal_item(k, v, k in personal, context) for k, v in node.items())
    if isinstance(node, list):
        return [seal_tree(v, key) for v in node]
    return _seal_value(node) if _looks_personal(node, key) else node


def _seal_item(key: str, value: Any, personal: bool, label: str | None) -> tuple[str, Any]:
    """One member of an object: its key (a stranger's may hold a number) and its value."""
    kept_key = _seal_value(key) if _looks_personal(key, None) else key
    if personal and value is not None and not _sealed(value):
        return kept_key, _seal_value(value)
    # Daraja's {"Name": "TransactionDate", "Value": …}: the value is read under its label.
    return kept_key, seal_tree(value, label if key == "Value" and label else key)


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

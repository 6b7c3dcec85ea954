"""Raw bytes and text from strangers, made safe to store in any text or JSON column.

PostgreSQL refuses NUL in text and `\\u0000` in JSONB, and varchar columns refuse what is
longer than their width: either would turn a stranger's junk into a 500 and lose the record.
"""

from __future__ import annotations

#: How much of a refused body we keep: enough to see what was sent, not enough to fill a disk.
REFUSED_BODY_BYTES = 4096


def body_text(raw: bytes, *, limit: int | None = None) -> str:
    """`raw` as storable text: invalid UTF-8 and NUL written as `\\xNN`, cut at `limit` bytes."""
    kept = raw if limit is None else raw[:limit]
    return kept.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def text(value: str, width: int) -> str:
    """`value` cut to `width` characters, NUL and lone surrogates escaped."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe[:width]

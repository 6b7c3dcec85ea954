"""Logging: one JSON object a line, every phone number and e-mail masked before it is written.

Each line names the correlation id of the request or job it was written for, and the
payment when the call passes one (`log.info(..., extra={"payment_id": ...})`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from datetime import UTC, datetime

from khalex_pay import correlation
from khalex_pay.observability import scrub_text

#: `extra` fields a log call may pass that the line carries.
EXTRA_FIELDS = ("payment_id", "job", "message_id", "alert")
#: Those of them that hold our own ids (UUIDs), written exactly as they are.
ID_FIELDS = frozenset({"payment_id", "message_id"})


class MaskingJsonFormatter(logging.Formatter):
    """Formats records as JSON and masks Kenyan mobile numbers and e-mails anywhere in it."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process_name,
            "msg": record.getMessage(),
        }
        correlation_id = getattr(record, "correlation_id", None) or correlation.current()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        ids: dict[str, str] = {}
        for name in EXTRA_FIELDS:
            if (value := getattr(record, name, None)) is None:
                continue
            if name in ID_FIELDS and _is_uuid(value):
                ids[name] = value
            else:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = scrub_text(json.dumps(entry, default=str, ensure_ascii=False))
        if not ids:
            return line
        # Our own UUIDs go out unmasked, so a search by id finds every line: one UUID in
        # about seventy holds a digit run ("…a115619209b7") that masking takes for a phone.
        return line[:-1] + ", " + json.dumps(ids)[1:]


def _is_uuid(value: object) -> bool:
    """True for a UUID in its canonical form: the ids our code passes, never typed text."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def setup_logging(process_name: str, level: str | None = None) -> None:
    """Send this process's logs to stderr as masked JSON lines (LOG_LEVEL, default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingJsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

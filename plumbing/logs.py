"""Logging: one JSON object a line, every phone number and e-mail masked before it is written.

Each line names the correlation id of the request or job it was written for, and the
payment when the call passes one (`log.info(..., extra={"payment_id": ...})`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from plumbing import correlation
from plumbing.observability import scrub_text

#: `extra` fields a log call may pass that the line carries.
EXTRA_FIELDS = ("payment_id", "job", "message_id", "alert")


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
        for name in EXTRA_FIELDS:
            if (value := getattr(record, name, None)) is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub_text(json.dumps(entry, default=str, ensure_ascii=False))


def setup_logging(process_name: str, level: str | None = None) -> None:
    """Send this process's logs to stderr as masked JSON lines (LOG_LEVEL, default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingJsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Logging: one JSON object a line, with every phone number masked before it is written."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from domain.phone import mask_msisdns_in


class MaskingJsonFormatter(logging.Formatter):
    """Formats records as JSON and masks Kenyan mobile numbers anywhere in the text."""

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
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return mask_msisdns_in(json.dumps(entry, default=str, ensure_ascii=False))


def setup_logging(process_name: str, level: str | None = None) -> None:
    """Send this process's logs to stderr as masked JSON lines (LOG_LEVEL, default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingJsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

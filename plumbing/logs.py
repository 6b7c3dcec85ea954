"""Logging: one JSON object a line (or a readable line in dev), every phone number and
e-mail masked before it is written.

Each line names the correlation id of the request or job it was written for, and the
payment when the call passes one (`log.info(..., extra={"payment_id": ...})`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from plumbing import correlation
from plumbing.observability import scrub, scrub_text

#: `extra` fields a log call may pass that the line carries.
EXTRA_FIELDS = ("payment_id", "job", "message_id", "alert")


class MaskingJsonFormatter(logging.Formatter):
    """Formats records as JSON and masks Kenyan mobile numbers and e-mails anywhere in it."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        # Every value that may hold a stranger's text is masked before it is encoded; the
        # time, level, logger and process names are our own. Masking the texts, not the
        # whole line, scans a fraction of the characters.
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process_name,
            "msg": scrub_text(record.getMessage()),
        }
        correlation_id = getattr(record, "correlation_id", None) or correlation.current()
        if correlation_id:
            entry["correlation_id"] = scrub_text(str(correlation_id))
        for name in EXTRA_FIELDS:
            if (value := getattr(record, name, None)) is not None:
                entry[name] = _masked(value)
        if record.exc_info:
            entry["exc"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _masked(value: object) -> object:
    """A value for a JSON line, masked: JSON's own types walked, anything else as text."""
    if isinstance(value, str | int | float | bool | dict | list | tuple):
        return scrub(value)
    return scrub_text(str(value))


class MaskingPlainFormatter(logging.Formatter):
    """Readable lines for a terminal (`khalex-pay dev`): time, level, logger, message, ids."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")  # local time, for a person
        line = f"{at} {record.levelname:<7} {record.name}: {record.getMessage()}"
        ids = [f"{name}={value}" for name in EXTRA_FIELDS if (value := getattr(record, name, None))]
        correlation_id = getattr(record, "correlation_id", None) or correlation.current()
        if correlation_id:
            ids.append(f"correlation_id={correlation_id}")
        if ids:
            line += "  [" + " ".join(ids) + "]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub_text(line)


def setup_logging(process_name: str, level: str = "INFO", *, plain: bool = False) -> None:
    """Send this process's logs to stderr, masked: JSON lines, or readable ones if `plain`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingPlainFormatter() if plain else MaskingJsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Log lines: JSON in production, readable lines in dev, masked either way; LOG_LEVEL obeyed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from khalex_pay.boot.bootstrap import bootstrap
from plumbing.logs import MaskingJsonFormatter, MaskingPlainFormatter, setup_logging
from plumbing.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def _record() -> logging.LogRecord:
    record = logging.LogRecord(
        "payments.initiation", logging.WARNING, __file__, 1, "push to %s", ("0712345678",), None
    )
    record.payment_id = "pay_1"
    return record


def test_plain_lines_are_readable_masked_and_carry_the_ids() -> None:
    line = MaskingPlainFormatter().format(_record())

    assert "WARNING" in line
    assert "payments.initiation: push to" in line
    assert "payment_id=pay_1" in line
    assert "0712345678" not in line
    assert not line.startswith("{")


def test_dev_logs_plain_lines_and_other_processes_json(tmp_path: Path) -> None:
    settings = load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, dotenv=tmp_path / "-")

    bootstrap("dev", settings, in_process=True)
    assert isinstance(logging.getLogger().handlers[0].formatter, MaskingPlainFormatter)
    bootstrap("scheduler", settings, in_process=True)
    formatter = logging.getLogger().handlers[0].formatter
    assert isinstance(formatter, MaskingJsonFormatter)
    assert json.loads(formatter.format(_record()))["payment_id"] == "pay_1"


def test_log_level_from_the_settings_is_the_root_loggers(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=warning\n")

    setup_logging("api", load_settings({}, dotenv=env_file).log_level)

    assert logging.getLogger().level == logging.WARNING

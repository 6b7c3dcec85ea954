"""The scheduler's passes read through indexes: their cost does not grow with old payments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from operations import alerts, retention
from payments import reconciliation
from store.db import utcnow
from store.retention import KINDS
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


def _selects(engine: Engine, run: Callable[[], object], tables: tuple[str, ...]) -> list[Any]:
    """The SELECTs on `tables` that `run` sends, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: Any, *a: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return [(s, p) for s, p in sent if any(f"FROM {t}" in s for t in tables)]


def _assert_no_table_scan(engine: Engine, selects: list[Any]) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # an index must make this possible
        for statement, parameters in selects:
            plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            text = "\n".join(plan)
            assert "Seq Scan" not in text, f"{statement}\n{text}"


def test_every_query_of_a_reconciliation_pass_uses_an_index(h: Harness) -> None:
    engine = h.container.engine
    later = utcnow() + timedelta(seconds=1)

    selects = _selects(
        engine, lambda: reconciliation.tick(h.container, later),
        ("payments", "callback_inbox", "outbox"),
    )  # fmt: skip

    assert len(selects) >= 5
    _assert_no_table_scan(engine, selects)


def test_every_query_of_an_alert_pass_uses_an_index(h: Harness) -> None:
    engine = h.container.engine

    selects = _selects(
        engine, lambda: alerts.run(h.container), ("payments", "payment_events", "job_deliveries")
    )

    assert len(selects) == 4  # success rate, poisoned jobs, late successes, unknown outcomes
    _assert_no_table_scan(engine, selects)


def test_every_delete_of_a_retention_pass_uses_an_index(h: Harness) -> None:
    engine = h.container.engine
    sent: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: Any, *a: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        retention.purge(h.container)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)

    assert len(sent) == len(KINDS)
    _assert_no_table_scan(engine, sent)

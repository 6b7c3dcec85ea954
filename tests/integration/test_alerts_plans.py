"""An alert pass reads through indexes: its cost does not grow with all payments and jobs ever."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from khalex_pay import alerts
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


def test_every_query_of_an_alert_pass_uses_an_index_never_a_table_scan(h: Harness) -> None:
    statements: list[tuple[str, Any]] = []

    def capture(
        conn: object, cursor: object, statement: str, parameters: Any, *args: object
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = h.container.engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        alerts.run(h.container)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)

    tables = ("FROM payments", "FROM payment_events", "FROM job_deliveries")
    selects = [(s, p) for s, p in statements if any(t in s for t in tables)]
    assert len(selects) == 3  # success rate, poisoned jobs, late successes
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # an index must make this possible
        for statement, parameters in selects:
            plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            text = "\n".join(plan)
            assert "Seq Scan" not in text, f"{statement}\n{text}"

"""The counts behind /metrics: kept by triggers, folded by the scheduler, equal to a recount."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest

from migrations.run import upgrade
from operations import metrics
from operations.metrics import DatabaseCollector
from payments import callbacks
from payments.container import Container
from plumbing.settings import load_settings
from store import figures
from store.db import make_engine, utcnow
from store.outbox import Job
from store.payments import PaymentRecord
from store.tables import metric_deltas, metric_totals
from store.tables import payments as payments_table
from tests.factories import stk_callback
from tests.integration.conftest import Harness, ScriptedDaraja

pytestmark = pytest.mark.integration

NOW = utcnow()


def _scrape(h: Harness) -> str:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(h.container.engine, clock=lambda: NOW))
    return generate_latest(registry).decode()


def _settle(h: Harness, p: PaymentRecord, code: int = 0) -> None:
    received = callbacks.receive(
        h.container, stk_callback(p.checkout_request_id or "", code, receipt=f"R{p.id[:8]}"),
        source_ip="127.0.0.1", token=p.callback_token, headers={},
    )  # fmt: skip
    callbacks.process(h.container, received.inbox_id)


def _some_history(h: Harness) -> None:
    for i, code in enumerate((0, 0, 1032, 1)):
        _settle(h, h.pushed(f"25471100010{i}"), code)
    h.pushed("254711000199")
    # Published jobs are marked sent a moment later, off the caller's path: settle that now,
    # or the outbox backlog could change between two scrapes.
    h.container.flush_sent()


def _rows(h: Harness, table: sa.Table) -> int:
    with h.container.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_folding_the_counts_changes_no_figure_and_empties_the_deltas(h: Harness) -> None:
    _some_history(h)
    before = _scrape(h)

    metrics.fold(h.container.engine, NOW)

    assert _scrape(h) == before
    assert _rows(h, metric_deltas) == 0
    assert _rows(h, metric_totals) > 0


def test_counts_go_on_from_the_totals_after_a_fold(h: Harness) -> None:
    _some_history(h)
    metrics.fold(h.container.engine, NOW)

    _settle(h, h.pushed("254711000200"))

    with h.container.engine.connect() as conn:
        counted = figures.counts(conn)
    assert counted[("payments", "completed", "")][0] == 3
    assert counted[("payments", "pushed", "")][0] == 1


def test_rolled_up_callbacks_are_counted_once_and_later_ones_on_top(h: Harness) -> None:
    _some_history(h)
    before = _scrape(h)

    settled = utcnow() + metrics.CALLBACK_SETTLED_AFTER  # all of the above before the mark
    metrics.fold(h.container.engine, settled)
    metrics.fold(h.container.engine, settled)  # nothing more to roll up

    assert _scrape(h) == before
    _settle(h, h.pushed("254711000201"))
    assert "khalex_callback_to_final_seconds_count 5.0" in _scrape(h)


def test_one_statement_changing_many_payments_is_counted_row_by_row(h: Harness) -> None:
    _some_history(h)
    with h.container.engine.begin() as conn:
        conn.execute(
            sa.update(payments_table)
            .where(payments_table.c.status == "completed")
            .values(status="failed", failure_reason="insufficient_funds")
        )

    with h.container.engine.connect() as conn:
        counted = figures.counts(conn)
    assert ("payments", "completed", "") not in counted
    assert counted[("payments", "failed", "")][0] == 3
    assert counted[("failures", "insufficient_funds", "")][0] == 3


@pytest.fixture
def on_sqlite(tmp_path: Path, h: Harness) -> Iterator[Harness]:
    url = f"sqlite:///{tmp_path / 'khalex.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = dataclasses.replace(load_settings({}), database_url=url)
    daraja, published = ScriptedDaraja(), list[Job]()
    yield Harness(Container(settings, engine, published.append, daraja=daraja), daraja, published)
    engine.dispose()


def test_sqlite_keeps_the_same_counts_with_its_row_triggers(on_sqlite: Harness) -> None:
    h = on_sqlite
    _some_history(h)
    before = _scrape(h)

    metrics.fold(h.container.engine, NOW + timedelta(days=1))

    assert _scrape(h) == before
    assert 'khalex_payments{status="completed"} 2.0' in before
    assert 'khalex_payment_failures{reason="cancelled_by_user"} 1.0' in before
    assert "khalex_callback_to_final_seconds_count 4.0" in before
    assert 'khalex_daraja_calls_total{operation="stk_push",outcome="ok"} 5.0' in before

"""The in-flight statuses are the domain's PENDING wherever the store and migrations name them."""

from __future__ import annotations

import re
from pathlib import Path

from domain.payment import FINAL, PENDING, Status
from store.tables import IN_FLIGHT, IN_FLIGHT_PREDICATE, payments

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def test_in_flight_is_exactly_the_domains_pending_statuses() -> None:
    assert set(IN_FLIGHT) == {status.value for status in PENDING}
    assert set(Status) == PENDING | FINAL
    assert not PENDING & FINAL


def test_partial_indexes_use_the_in_flight_predicate() -> None:
    predicates = {
        str(index.dialect_options["postgresql"]["where"])
        for index in payments.indexes
        if "in_flight" in str(index.name) or "pending" in str(index.name)
    }
    assert predicates == {IN_FLIGHT_PREDICATE}


def test_every_migration_that_spells_the_predicate_spells_todays() -> None:
    spelled = {
        match
        for path in VERSIONS.glob("*.py")
        for match in re.findall(r"status IN \([^)]*\)", path.read_text())
    }
    assert spelled == {IN_FLIGHT_PREDICATE}

"""Engines: the autocommit copy of an engine is made once and goes with its engine."""

from __future__ import annotations

import gc
import weakref

import pytest

from store.db import autocommit, make_engine

pytestmark = pytest.mark.unit

#: Nothing listens there: an engine connects only when first used.
NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def test_the_autocommit_copy_is_made_once_per_engine() -> None:
    engine = make_engine(NOWHERE)

    reads = autocommit(engine)

    assert autocommit(engine) is reads
    assert autocommit(reads) is reads
    assert reads.get_execution_options()["isolation_level"] == "AUTOCOMMIT"


def test_a_dropped_engine_is_freed_with_its_autocommit_copy() -> None:
    # Each engine holds pooled connections: one kept alive for ever by its copy held the
    # test suite's idle connections past PostgreSQL's limit.
    engine = make_engine(NOWHERE)
    autocommit(engine)
    gone = weakref.ref(engine)

    del engine
    gc.collect()

    assert gone() is None

"""The buckets migration 0010's triggers count in are the ones /metrics exposes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from operations.metrics import DARAJA_BUCKETS_S
from operations.ops import PROCESSING_BUCKETS_S
from store.figures import bucket_label

pytestmark = pytest.mark.unit

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0012_metric_counts.py"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("metric_counts_0012", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_triggers_count_in_the_buckets_metrics_exposes() -> None:
    migration = _migration()

    assert migration.PROCESSING_BUCKETS_S == PROCESSING_BUCKETS_S
    assert migration.DARAJA_BUCKETS_S == DARAJA_BUCKETS_S


def test_a_bucket_is_labelled_as_prometheus_writes_its_bound() -> None:
    assert [bucket_label(b) for b in (0.05, 2, 30.0)] == ["0.05", "2.0", "30.0"]

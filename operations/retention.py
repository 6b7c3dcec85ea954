"""Purge raw records after RETENTION_DAYS, so anonymous junk cannot fill the disk forever.

Run by the scheduler's leader. Each batch is its own short transaction: a purge never holds
locks long, and a pass stops after MAX_BATCHES per kind (the next pass goes on).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from payments.container import Container
from store import retention
from store.db import utcnow

log = logging.getLogger(__name__)

#: Records deleted per transaction.
BATCH = 500
#: Most batches of one kind per pass (the rest waits for the next pass).
MAX_BATCHES = 20
#: Seconds between two purge passes.
INTERVAL_S = 600.0


def purge(c: Container, now: datetime | None = None, *, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than RETENTION_DAYS; returns how many records of each kind went."""
    cutoff = (now or utcnow()) - timedelta(days=c.settings.retention_days)
    purged: dict[str, int] = {}
    for kind in retention.KINDS:
        total = 0
        for _ in range(MAX_BATCHES):
            with c.engine.begin() as conn:
                deleted = retention.delete_batch(conn, kind, cutoff, batch)
            total += deleted
            if deleted < batch:
                break
        purged[kind.name] = total
    if any(purged.values()):
        log.info("purged raw records older than %s days: %s", c.settings.retention_days, purged)
    return purged

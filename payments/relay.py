"""The outbox relay: hand committed jobs to the broker, then mark them sent."""

from __future__ import annotations

import logging
from collections.abc import Callable

from payments.container import Container
from store import outbox
from store.outbox import Job

log = logging.getLogger(__name__)


def relay(c: Container, job_ids: list[int] | None = None, limit: int = 200) -> int:
    """Publish unsent jobs (`job_ids`, or the oldest `limit`); returns how many went out.

    A broker failure is logged, not raised: the jobs stay unsent and the scheduler's relay
    tries again. A crash after publishing but before marking sends a job twice, which every
    job tolerates. Each job keeps the correlation id of whoever queued it, also when the
    scheduler relays it. Jobs this process published already are marked sent first.
    """
    c.flush_sent()
    with c.engine.begin() as conn:
        jobs = outbox.claim(conn, ids=job_ids, limit=limit)
        many = getattr(c.publish, "many", None)
        if many is not None and len(jobs) > 1:
            sent = _publish_many(many, jobs)
        else:
            sent = _publish_each(c, jobs)
        outbox.mark_sent(conn, sent)
    return len(sent)


def _publish_many(many: Callable[[list[Job]], None], jobs: list[Job]) -> list[int]:
    """The batch in one round trip (Redis); none is marked sent if it fails."""
    try:
        many(jobs)
    except Exception:
        log.exception("broker refused a batch of %d outbox jobs; will retry", len(jobs))
        return []
    return [job.id for job in jobs]


def _publish_each(c: Container, jobs: list[Job]) -> list[int]:
    sent: list[int] = []
    for job in jobs:
        try:
            c.publish(job)
        except Exception:
            log.exception(
                "broker refused outbox job %s (%s); will retry", job.id, job.actor,
                extra={"correlation_id": job.correlation_id, "job": job.actor},
            )  # fmt: skip
            break
        sent.append(job.id)
    return sent


def relay_committed(c: Container, jobs: list[Job]) -> int:
    """Publish jobs their writer has just committed; how many went. They are marked sent
    a moment later, many in one statement, off the request's path (`outbox.SentMarker`).

    The fast path after a request's own commit: the writer holds the jobs, so nothing is
    claimed first. The scheduler's relay may publish one of them too before it is marked;
    every job tolerates a duplicate. A job the broker refuses stays unsent, for the
    scheduler's relay. A batch goes in one round trip where the broker allows (Redis).
    """
    many = getattr(c.publish, "many", None)
    sent = (
        _publish_many(many, jobs) if many is not None and len(jobs) > 1 else _publish_each(c, jobs)
    )
    c.sent_marker.add(sent)
    return len(sent)

"""Only one scheduler acts at a time; another takes over when the leader goes away."""

from __future__ import annotations

import pytest

from store.db import make_engine
from workers.leader import Leadership

pytestmark = pytest.mark.integration


def test_second_scheduler_waits_while_the_first_leads_then_takes_over(postgres_url: str) -> None:
    first, second = make_engine(postgres_url), make_engine(postgres_url)
    leader, follower = Leadership(first), Leadership(second)
    try:
        assert leader.acquire()
        assert not follower.acquire()
        assert leader.acquire()  # still leading on its next tick

        leader.release()  # the leader's process (and so its session) went away

        assert follower.acquire()
        assert not leader.acquire()
    finally:
        leader.release()
        follower.release()
        first.dispose()
        second.dispose()


def test_leader_whose_connection_was_killed_stops_leading_and_can_lead_again(
    postgres_url: str,
) -> None:
    import sqlalchemy as sa

    engine = make_engine(postgres_url)
    leader = Leadership(engine)
    try:
        assert leader.acquire()
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
        # The next tick notices the dead session, and takes the (released) lock again.
        assert leader.acquire()
    finally:
        leader.release()
        engine.dispose()

"""The arithmetic behind the operators' view: percentiles, rates, buckets, replay copies."""

from __future__ import annotations

from collections import Counter

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from operations.dlq import StubQueues, fresh_copy, ids_only, waited_s
from operations.ops import WindowSummary, mask_email, percentile

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_neighbours() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 6, 10, 20, 180], 95) == 148
    assert percentile([7], 95) == 7
    assert percentile([], 50) is None


def test_rates_are_shares_of_final_payments_only() -> None:
    window = WindowSummary(initiated=10, pending=2, completed=6, failed=1, cancelled=1,
                           abandoned=1, failure_reasons=Counter(cancelled_by_user=1))  # fmt: skip

    assert (window.final, window.success_rate, window.abandonment) == (8, 0.75, 0.125)


def test_buckets_count_each_time_once_with_an_overflow_bucket() -> None:
    window = WindowSummary(durations=[0.5, 2.0, 2.1, 601.0])

    buckets = dict(window.buckets())

    assert (buckets[2.0], buckets[5.0], buckets[600.0], buckets[None]) == (2, 1, 0, 1)
    assert sum(buckets.values()) == 4


def test_replayed_copy_keeps_id_and_args_but_not_the_spent_retries() -> None:
    dead: dramatiq.Message[None] = dramatiq.Message(
        queue_name="payments", actor_name="send_push", args=("p-1",), kwargs={},
        options={"retries": 5, "traceback": "boom", "redis_message_id": "r-1", "outbox_id": 7,
                 "correlation_id": "c-1", "eta": 1},
        message_timestamp=1_000,
    )  # fmt: skip

    copy = fresh_copy(dead, now_ms=2_000_000)

    assert (copy.message_id, copy.args, copy.queue_name) == (dead.message_id, ("p-1",), "payments")
    assert copy.options == {"outbox_id": 7, "correlation_id": "c-1"}
    assert copy.message_timestamp == 2_000_000  # else the age limit would kill it again


def test_message_args_shown_are_ids_with_numbers_masked() -> None:
    assert ids_only(["p-1", 42, {"phone": "254712345678"}, "254712345678"]) == [
        "p-1", 42, "<dict>", "2547****5678",
    ]  # fmt: skip


def test_email_is_masked_to_its_first_letter_and_domain() -> None:
    assert mask_email("wanjiru@example.com") == "w***@example.com"
    assert mask_email("nonsense") == "***"


def test_payment_ids_in_message_args_are_never_masked() -> None:
    # The last group holds a lone 9-digit run starting with 7: a phone number to the masker.
    payment_id = "0fa7a13c-3592-45bf-ba20-a712345678ab"

    assert ids_only([payment_id]) == [payment_id]


def _sent(age_s: float, now_s: float, **options: object) -> dramatiq.Message[object]:
    return dramatiq.Message(
        queue_name="callbacks", actor_name="process_callback", args=(7,), kwargs={},
        options=options, message_timestamp=int((now_s - age_s) * 1000),
    )  # fmt: skip


def test_a_message_has_waited_since_it_was_sent_or_since_its_eta_if_later() -> None:
    now_s = 1_800_000_000.0

    assert waited_s(_sent(42, now_s), now_s) == 42
    assert waited_s(_sent(3600, now_s, eta=int((now_s - 10) * 1000)), now_s) == 10
    assert waited_s(_sent(5, now_s, eta=int((now_s + 60) * 1000)), now_s) == 0


def test_the_dev_queues_give_a_retried_message_its_age_since_its_eta() -> None:
    now_s = 1_800_000_000.0
    broker = StubBroker()
    broker.declare_queue("callbacks")
    broker.enqueue(_sent(3600, now_s, eta=int((now_s - 10) * 1000)))

    (stats,) = StubQueues(broker, ("callbacks",), clock=lambda: now_s).stats()

    assert stats.oldest_age_s == 10

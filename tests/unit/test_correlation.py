"""The correlation id: taken from X-Request-ID or made, echoed, carried to jobs and log lines."""

from __future__ import annotations

import json
import logging
from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from litestar import Litestar, get
from litestar.testing import TestClient

from api.correlation import correlation_middleware
from domain.phone import mask_msisdns_in
from plumbing import correlation
from plumbing.logs import MaskingJsonFormatter
from store.outbox import Job
from workers.broker import publisher
from workers.correlation import OPTION, CorrelationMiddleware

pytestmark = pytest.mark.unit


@get("/whoami", sync_to_thread=True)
def whoami() -> dict[str, str | None]:
    # A sync handler runs on a worker thread: the id must follow it there.
    return {"correlationId": correlation.current()}


@pytest.fixture
def client() -> Any:
    app = Litestar(route_handlers=[whoami], middleware=[correlation_middleware])
    with TestClient(app=app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "value",
    [
        "req-1",
        "3f2b9c0e-5a1d-4c7e-9f00-a1b2c3d4e5f6",
        "005d5cf6-37bd-48c9-bc9e-a115619209b7",  # a UUID with a phone-like digit run
        "a" * 64,
    ],
)
def test_sound_caller_ids_are_kept(value: str) -> None:
    assert correlation.is_valid(value)


def test_ids_we_make_read_the_same_in_masked_log_lines() -> None:
    made = [correlation.new_id("sched-") for _ in range(5000)]

    assert all(mask_msisdns_in(value) == value and correlation.is_valid(value) for value in made)
    assert len(set(made)) == len(made)


@pytest.mark.parametrize(
    "value",
    ["", "a" * 65, "has space", "line\nbreak", "quote\"d", "<script>", "254712345678",
     "order-0712345678", "wanjiru@example.com"],
)  # fmt: skip
def test_unsafe_long_or_personal_caller_ids_are_refused(value: str) -> None:
    assert not correlation.is_valid(value)


def test_bound_ids_nest_and_restore_the_outer_one() -> None:
    with correlation.bound("outer"):
        with correlation.bound() as inner:
            assert correlation.current() == inner != "outer"
        assert correlation.current() == "outer"
    assert correlation.current() is None


def test_request_runs_under_the_callers_id_and_echoes_it(client: Any) -> None:
    answer = client.get("/whoami", headers={"X-Request-ID": "shop-req-42"})

    assert answer.json() == {"correlationId": "shop-req-42"}
    assert answer.headers["x-request-id"] == "shop-req-42"


@pytest.mark.parametrize("sent", [None, "bad id with spaces", "0712345678", "x" * 65])
def test_request_without_a_sound_id_gets_a_new_one_echoed(client: Any, sent: str | None) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}

    answer = client.get("/whoami", headers=headers)

    made = answer.json()["correlationId"]
    assert made != sent
    assert correlation.is_valid(made)
    assert answer.headers["x-request-id"] == made


def test_each_request_gets_its_own_id(client: Any) -> None:
    first, second = (client.get("/whoami").headers["x-request-id"] for _ in range(2))

    assert first != second


def test_log_lines_carry_the_correlation_id_and_the_payment_passed_in_extra() -> None:
    formatter = MaskingJsonFormatter("test")
    record = logging.LogRecord(
        "khalex", logging.INFO, __file__, 1, "push for %s by %s",
        ("254712345678", "wanjiru@example.com"), None,
    )  # fmt: skip
    record.payment_id = "pay-1"

    with correlation.bound("req-7"):
        line = formatter.format(record)

    entry = json.loads(line)
    assert (entry["correlation_id"], entry["payment_id"]) == ("req-7", "pay-1")
    assert "254712345678" not in line
    assert "wanjiru@example.com" not in line


def test_log_lines_outside_any_request_or_job_have_no_correlation_id() -> None:
    record = logging.LogRecord("khalex", logging.INFO, __file__, 1, "idle", (), None)

    assert "correlation_id" not in json.loads(MaskingJsonFormatter("test").format(record))


def test_publisher_puts_the_jobs_correlation_id_in_the_message_options() -> None:
    broker = StubBroker()
    broker.declare_queue("payments")

    publisher(broker)(Job(7, "payments", "send_push", ["p-1"], "req-9"))

    message = broker.queues["payments"].get_nowait()
    options = dramatiq.Message.decode(message).options
    assert (options["outbox_id"], options[OPTION]) == (7, "req-9")


def _message(**options: Any) -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name="payments", actor_name="send_push", args=("p-1",), kwargs={},
            options=options,
        )
    )  # fmt: skip


def test_worker_runs_the_job_under_the_messages_id_and_clears_it_after() -> None:
    middleware, broker = CorrelationMiddleware(), StubBroker()
    message = _message(correlation_id="r1")

    middleware.before_process_message(broker, message)
    during = correlation.current()
    middleware.after_process_message(broker, message, result=None)

    assert (during, correlation.current()) == ("r1", None)


def test_worker_gives_a_message_without_an_id_a_new_one_that_its_retries_keep() -> None:
    middleware, broker = CorrelationMiddleware(), StubBroker()
    message = _message()

    middleware.before_process_message(broker, message)
    during = correlation.current()
    middleware.after_process_message(broker, message, exception=RuntimeError("retry"))

    assert during is not None
    assert during.startswith("job-")
    assert message.options[OPTION] == during
    assert correlation.current() is None


def test_worker_clears_the_id_of_a_skipped_job() -> None:
    middleware, broker = CorrelationMiddleware(), StubBroker()
    message = _message(correlation_id="r2")

    middleware.before_process_message(broker, message)
    middleware.after_skip_message(broker, message)

    assert correlation.current() is None


class _Lines(logging.Handler):
    """Formats each record as it is emitted, as the real stderr handler does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(MaskingJsonFormatter("worker"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_worker_logs_the_end_of_a_payment_job_with_its_ids() -> None:
    middleware, broker = CorrelationMiddleware(), StubBroker()
    message = _message(correlation_id="r3")
    handler, logger = _Lines(), logging.getLogger("workers.correlation")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        middleware.before_process_message(broker, message)
        middleware.after_process_message(broker, message, result=None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)

    [line] = handler.lines
    assert (line["correlation_id"], line["payment_id"], line["job"]) == ("r3", "p-1", "send_push")
    assert line["message_id"] == message.message_id

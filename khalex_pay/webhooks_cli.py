"""`khalex-pay webhooks list|redeliver`: the shop webhooks' events and attempts, for operators."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plumbing.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from payments.container import Container

#: Events `webhooks list` prints unless told otherwise.
LIST_DEFAULT = 50
STATES = ("pending", "delivered", "failed")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hooks = sub.add_parser("webhooks", help="the shop's webhook events: list, redeliver")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    listing = hooks_sub.add_parser("list", help="the newest events with their last attempt")
    listing.add_argument("--state", choices=STATES, help="only events in this state")
    listing.add_argument("--limit", type=_positive, default=LIST_DEFAULT, help="default 50")
    again = hooks_sub.add_parser("redeliver", help="send one event again now and wait for it")
    again.add_argument("event_id", metavar="EVENT_ID", help="the event id (webhook-id, msg_…)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text!r}")
    return int(text)


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from payments.container import Container  # noqa: PLC0415

    container = Container.build(settings, _no_publish)
    try:
        if args.webhooks_command == "list":
            return _list(container.engine, args.state, args.limit)
        return _redeliver(container, args.event_id)
    finally:
        container.close()


def _no_publish(job: object) -> None:
    raise RuntimeError("the command line does not publish jobs")


def _list(engine: Engine, state: str | None, limit: int) -> int:
    from store import webhooks  # noqa: PLC0415

    with engine.connect() as conn:
        events = webhooks.listing(conn, state, limit)
    for e in events:
        when = f"delivered {_iso(e['delivered_at'])}" if e["delivered_at"] else ""
        if e["state"] == "pending":
            when = f"next {_iso(e['next_attempt_at'])}"
        _say(
            f"{e['id']}  {e['type']:<18} {_subject(e['payload'])}  {e['state']:<9} "
            f"attempts {e['attempts']:<3} created {_iso(e['created_at'])}  {when}  "
            f"last {_last(e['last_attempt'])}"
        )
    _say(f"{len(events)} event(s)", err=True)
    return 0


def _redeliver(container: Container, event_id: str) -> int:
    from payments import shop_webhooks  # noqa: PLC0415

    if not container.settings.shop_webhook_url:
        _say("khalex-pay: SHOP_WEBHOOK_URL is not set: there is nowhere to send it", err=True)
        return 2
    try:
        outcome = shop_webhooks.redeliver(container, event_id)
    except shop_webhooks.Busy:
        _say(f"khalex-pay: event {event_id} is being sent right now; try again shortly", err=True)
        return 1
    if outcome is None:
        _say(f"khalex-pay: no webhook event {event_id!r}", err=True)
        return 1
    answer = outcome.answer
    said = _answer(answer.http_status, answer.latency_ms, answer.error)
    if answer.delivered:
        _say(f"{event_id}: delivered ({said})")
        return 0
    nxt = f", next attempt {_iso(outcome.next_attempt_at)}" if outcome.next_attempt_at else ""
    excerpt = f": {' '.join((answer.excerpt or '').split())[:120]}" if answer.excerpt else ""
    _say(f"khalex-pay: {event_id} not delivered ({said}{excerpt}); {outcome.state}{nxt}", err=True)
    return 1


def _subject(payload: dict[str, Any]) -> str:
    """The order or payment the event is about (ids only)."""
    data = payload.get("data") or {}
    if data.get("paymentId"):
        return f"payment {data['paymentId']}"
    return f"order {data.get('orderId') or '-'}"


def _last(attempt: dict[str, Any] | None) -> str:
    if attempt is None:
        return "-"
    return _answer(attempt["http_status"], attempt["latency_ms"], attempt["error"])


def _answer(status: int | None, latency_ms: int | None, error: str | None) -> str:
    said = f"HTTP {status}" if status is not None else (error or "no answer")
    return f"{said} in {latency_ms} ms" if latency_ms is not None else said


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {"webhooks": _webhooks}

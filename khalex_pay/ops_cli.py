"""The operators' commands: `khalex-pay ops-token`, `dlq ...` and `payments show|requery`.

Each reads the same settings as the servers and talks to PostgreSQL and Redis directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from operations.operator_tokens import issue_token
from plumbing.settings import Settings

if TYPE_CHECKING:
    from operations.dlq import RedisQueues
    from operations.ops import PaymentDetails
    from payments.container import Container

#: Most dead letters `khalex-pay dlq list` prints per queue.
LIST_MAX = 1000


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("ops-token", help="print a signed operator token for /api/ops and /ops")
    token.add_argument(
        "--hours", type=float, default=8.0, help="lifetime (default 8, at most OPS_TOKEN_MAX_HOURS)"
    )
    token.add_argument("--subject", default="operator", help="who the token is for")
    dlq = sub.add_parser("dlq", help="dead-lettered jobs in Redis: list, replay, purge")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="show dead letters (ids only)")
    replay = dlq_sub.add_parser("replay", help="put dead letters back on their queue")
    purge = dlq_sub.add_parser("purge", help="delete dead letters")
    for cmd in (listing, replay, purge):
        cmd.add_argument("--queue", help="only this queue (default: all)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="message_id", help="a message id or dead-letter entry id")
    which.add_argument("--all", action="store_true", help="every dead letter (of --queue)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    payments = sub.add_parser("payments", help="look into one payment")
    pay_sub = payments.add_subparsers(dest="payments_command", required=True)
    for name, text in (
        ("show", "the payment, its events, callbacks and Daraja exchanges (phone masked)"),
        ("requery", "ask Daraja for the payment's outcome now and apply it"),
    ):
        cmd = pay_sub.add_parser(name, help=text)
        cmd.add_argument("ref", help="paymentId or CheckoutRequestID")


def _say(text: str = "", *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _ops_token(settings: Settings, args: argparse.Namespace) -> int:
    if not 0 < args.hours <= settings.ops_token_max_hours:
        _say(
            f"khalex-pay: --hours must be more than 0 and at most OPS_TOKEN_MAX_HOURS "
            f"({settings.ops_token_max_hours:g}), not {args.hours:g}",
            err=True,
        )
        return 2
    if settings.jwt_secret == Settings.jwt_secret:
        # The default is published in this repository: anyone could sign the same token.
        if settings.production:
            _say("khalex-pay: refusing to sign with the public default JWT_SECRET", err=True)
            return 2
        _say("khalex-pay: warning: signed with the public default JWT_SECRET", err=True)
    _say(issue_token(settings.jwt_secret, args.subject, args.hours))
    return 0


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    import redis  # noqa: PLC0415

    from operations.dlq import RedisQueues  # noqa: PLC0415

    if not settings.redis_url:
        _say(
            "khalex-pay: REDIS_URL is not set; in `khalex-pay dev` the dead letters live in "
            "that process (see /ops)",
            err=True,
        )
        return 2
    queues = RedisQueues(redis.Redis.from_url(settings.redis_url))
    if args.queue is not None and args.queue not in queues.queues:
        _say(f"khalex-pay: unknown queue {args.queue!r} ({', '.join(queues.queues)})", err=True)
        return 2
    commands = {"list": _dlq_list, "replay": _dlq_replay, "purge": _dlq_purge}
    return commands[args.dlq_command](settings, queues, args)


def _dlq_list(settings: Settings, queues: RedisQueues, args: argparse.Namespace) -> int:
    from operations.dlq import dead_deliveries  # noqa: PLC0415
    from store.db import make_engine  # noqa: PLC0415

    letters = queues.dead_letters(args.queue, limit=LIST_MAX)
    for stats in queues.stats():
        if args.queue in (None, stats.name):
            _say(f"{stats.name}: {stats.dead_lettered} dead letter(s)")
        for m in (m for m in letters if m.queue == stats.name):
            error = f"  error: {m.error}" if m.error else ""
            _say(
                f"  {m.entry_id}  message {m.message_id}  {m.actor}({_args(m.args)})  "
                f"dead since {_iso(m.dead_lettered_at)}  retries {m.retries}{error}"
            )
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        poisoned = [d for d in dead_deliveries(conn, LIST_MAX) if args.queue in (None, d["queue"])]
    engine.dispose()
    _say(f"stopped by the poison guard (job_deliveries): {len(poisoned)}")
    for d in poisoned:
        _say(
            f"  message {d['message_id']}  {d['queue']}/{d['actor']}({_args(d['args'])})  "
            f"started {d['started']} finished {d['finished']}  "
            f"dead since {_iso(d['dead_lettered_at'])}  {d['last_error'] or ''}"
        )
    return 0


def _dlq_replay(settings: Settings, queues: RedisQueues, args: argparse.Namespace) -> int:
    from operations import dlq  # noqa: PLC0415
    from store.db import make_engine  # noqa: PLC0415

    if args.all:
        entries = queues.all_entries(args.queue)
    else:
        entries = queues.find(args.message_id, args.queue)
    if not entries:
        _say("no such dead letter" if args.message_id else "no dead letters", err=True)
        return 1 if args.message_id else 0
    engine = make_engine(settings.database_url)
    try:
        done = dlq.replay(queues, engine, entries, _progress("replayed"))
    finally:
        engine.dispose()
    _say(f"replayed {done} of {len(entries)} dead letter(s)")
    return 0


def _dlq_purge(settings: Settings, queues: RedisQueues, args: argparse.Namespace) -> int:
    from operations import dlq  # noqa: PLC0415

    entries = queues.all_entries(args.queue)
    if not entries:
        _say("no dead letters")
        return 0
    where = args.queue or "every queue"
    if not args.yes and not _confirm(f"delete {len(entries)} dead letter(s) from {where}?"):
        _say("nothing deleted (pass --yes to skip this question)", err=True)
        return 1
    done = dlq.purge(queues, entries, _progress("deleted"))
    _say(f"deleted {done} dead letter(s) from {where}")
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False  # a script must say --yes; never delete on a closed stdin
    return input(f"{question} Type yes: ").strip().lower() == "yes"


def _progress(verb: str) -> Callable[[int, int], None]:
    """A counter line on stderr, rewritten in place, ending with a newline when done."""

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r{verb} {done}/{total}" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return show


def _payments(settings: Settings, args: argparse.Namespace) -> int:
    from payments.container import Container  # noqa: PLC0415

    container = Container.build(settings, _no_publish)
    try:
        if args.payments_command == "show":
            return _payment_show(container, args.ref)
        return _payment_requery(container, args.ref)
    finally:
        container.close()


def _no_publish(job: object) -> None:
    # Raising leaves a job unsent in the outbox, for the scheduler's relay to send.
    raise RuntimeError("the command line does not publish jobs")


def _payment_show(container: Container, ref: str) -> int:
    from operations import ops  # noqa: PLC0415

    with container.engine.connect() as conn:
        found = ops.details(conn, ref)
    if found is None:
        _say(f"khalex-pay: no payment {_masked(ref)!r}", err=True)
        return 1
    for line in _describe(found):
        _say(line)
    return 0


def _describe(found: PaymentDetails) -> Iterator[str]:
    """The payment for people: ids as they are, every free-text field masked.

    Masking whole lines would also hit ids (a UUID can hold a run of digits that reads as
    a phone number), so only the fields that can carry a number go through `_masked`.
    """
    from domain.phone import mask_msisdn  # noqa: PLC0415
    from operations.ops import mask_email  # noqa: PLC0415

    p, m = found.payment, _masked
    code = "-" if p.result_code is None else str(p.result_code)
    yield f"payment {p.id}  {p.status}  {p.currency} {p.amount}"
    yield f"  phone       {mask_msisdn(p.phone_number)}"
    yield f"  customer    {m(p.customer_name)} <{mask_email(p.customer_email)}>"
    yield f"  product     {m(p.product_id)} ({m(p.product_name)})  order {m(p.order_id or '-')}"
    yield f"  checkout    {m(p.checkout_request_id or '-')}"
    yield f"  merchant    {p.merchant_request_id or '-'}"
    yield f"  receipt     {p.mpesa_receipt_number or '-'}  at {_iso(p.transaction_date)}"
    yield f"  result      {code} {m(p.result_desc or '')}"
    yield f"  failure     {p.failure_reason or '-'}  late success {p.late_success}"
    yield f"  created     {_iso(p.created_at)}  finished {_iso(p.finished_at)}"
    yield f"  attempts    pushes {p.push_attempts}  queries {p.query_attempts}"
    yield f"  next query  {_iso(p.next_query_at)}"
    yield from _section("events", found.events, _event_line)
    yield from _section("callbacks", found.inbox, _inbox_line)
    yield from _section("daraja exchanges", found.exchanges, _exchange_lines)


def _section(
    title: str, rows: list[dict[str, Any]], render: Callable[[dict[str, Any]], str | list[str]]
) -> Iterator[str]:
    yield f"{title} ({len(rows)})"
    for row in rows:
        lines = render(row)
        yield from [lines] if isinstance(lines, str) else lines


def _event_line(e: dict[str, Any]) -> str:
    moved = f"{e['from_status'] or '-'} -> {e['to_status']}"
    return f"  {_iso(e['created_at'])}  {e['kind']:<16} {moved:<22} {_masked(_json(e['data']))}"


def _inbox_line(r: dict[str, Any]) -> str:
    return (
        f"  #{r['id']}  {_iso(r['received_at'])}  {r['state']:<10} attempts {r['attempts']}  "
        f"processed {_iso(r['processed_at'])}  {_masked(r['reason'] or '')}"
    ).rstrip()


def _exchange_lines(x: dict[str, Any]) -> list[str]:
    lines = [f"  #{x['id']}  {_iso(x['sent_at'])}  {x['operation']:<10} {_answer(x)}"]
    if x["answer"]:
        lines.append(f"      answer: {_masked(_short(x['answer']))}")
    return lines


def _answer(x: dict[str, Any]) -> str:
    status = "no answer" if x["http_status"] is None else f"HTTP {x['http_status']}"
    elapsed = "" if x["elapsed_ms"] is None else f" in {x['elapsed_ms']} ms"
    return f"{status}{elapsed}  {_masked(x['error'] or '')}".rstrip()


def _payment_requery(container: Container, ref: str) -> int:
    from operations import ops  # noqa: PLC0415

    result = ops.requery(container, ref)
    if result is None:
        _say(f"khalex-pay: no payment {_masked(ref)!r}", err=True)
        return 1
    before, after = result.before, result.after
    answer = result.answer
    if answer is None:
        never = before.checkout_request_id is None
        why = "never reached Daraja (no CheckoutRequestID)" if never else f"is {before.status}"
        _say(f"payment {before.id} {why}: not queried")
        return 0
    reason = f" ({after.failure_reason})" if after.failure_reason else ""
    _say(f"payment {before.id}: {before.status} -> {after.status}{reason}")
    _say(f"query: {_answer(answer)}  {_masked(_short(answer['answer'] or ''))}".rstrip())
    return 0


def _args(args: Sequence[object]) -> str:
    return ", ".join(str(a) for a in args)


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else "-"


def _masked(text: str) -> str:
    from domain.phone import mask_msisdns_in  # noqa: PLC0415

    return mask_msisdns_in(text)


def _json(value: object) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _short(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "ops-token": _ops_token,
    "dlq": _dlq,
    "payments": _payments,
}

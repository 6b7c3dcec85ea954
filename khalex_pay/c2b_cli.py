"""`khalex-pay c2b register|list`: the shop's PayBill (C2B) URLs and payments, for operators."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from plumbing.settings import Settings

if TYPE_CHECKING:
    from payments.container import Container

#: What Daraja does when the validation URL does not answer in time.
RESPONSE_TYPES = ("Completed", "Cancelled")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c2b = sub.add_parser("c2b", help="PayBill (C2B): register the URLs, list the payments")
    c2b_sub = c2b.add_subparsers(dest="c2b_command", required=True)
    register = c2b_sub.add_parser(
        "register", help="register the C2B confirmation and validation URLs with Daraja"
    )
    register.add_argument(
        "--response-type", choices=RESPONSE_TYPES, default="Completed",
        help="what Daraja does when the validation URL does not answer (default Completed)",
    )  # fmt: skip
    register.add_argument(
        "--base-url", help="the API's public origin (default: MPESA_CALLBACK_URL's)"
    )
    listing = c2b_sub.add_parser(
        "list", help="PayBill payments; by default those that paid no order"
    )
    listing.add_argument("--state", help="only this state (e.g. matched, unmatched, duplicate)")
    listing.add_argument("--limit", type=int, default=50, help="default 50")
    assign = c2b_sub.add_parser(
        "assign", help="apply an unmatched or untrusted PayBill payment to an order"
    )
    assign.add_argument("c2b_id", metavar="C2B_ID", help="the PayBill payment (c2b list)")
    assign.add_argument("order_id", metavar="ORDER_ID", help="the order it pays")


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _c2b(settings: Settings, args: argparse.Namespace) -> int:
    from payments.container import Container  # noqa: PLC0415

    container = Container.build(settings, _no_publish)
    try:
        if args.c2b_command == "register":
            return _register(container, args.response_type, args.base_url)
        if args.c2b_command == "assign":
            return _assign(container, args.c2b_id, args.order_id)
        return _list(container, args.state, args.limit)
    finally:
        container.close()


def _no_publish(job: object) -> None:
    raise RuntimeError("the command line does not publish jobs")


def _register(container: Container, response_type: str, base_url: str | None) -> int:
    from daraja.errors import DarajaError  # noqa: PLC0415
    from payments import c2b_register  # noqa: PLC0415

    try:
        registered, urls = c2b_register.register(
            container, response_type=response_type, base_url=base_url
        )
    except DarajaError as exc:
        _say(f"khalex-pay: c2b register refused: {exc.message}", err=True)
        return 1
    for kind, url in urls.items():
        _say(f"{kind:<12} {_masked(url, container.settings.c2b_url_secret)}")
    _say(f"registered ({registered.response_description or 'accepted'})")
    return 0


def _assign(container: Container, record_id: str, order_id: str) -> int:
    from payments import c2b  # noqa: PLC0415

    try:
        state, reason = c2b.assign(container, record_id, order_id)
    except c2b.NotAssignable as exc:
        _say(f"khalex-pay: cannot assign: {exc}", err=True)
        return 1
    _say(f"{record_id}: {state}{f' ({reason})' if reason else ''}, order {order_id}")
    return 0


def _masked(url: str, secret: str) -> str:
    """`url` with the secret path segment hidden (terminals and logs are not secret)."""
    return url.replace(secret, secret[:4] + "…") if secret else url


def _list(container: Container, state: str | None, limit: int) -> int:
    from operations import paybill  # noqa: PLC0415

    if state is not None and state not in paybill.STATES:
        _say(f"khalex-pay: --state must be one of {', '.join(paybill.STATES)}", err=True)
        return 2
    if state is None:
        found = paybill.listing(container, limit=limit)
    else:
        found = paybill.listing(container, states=(state,), kind=None, limit=limit)
    for p in found:
        _say(
            f"{p['id']}  {p['receivedAt']}  {p['kind']:<12} {p['receipt'] or '-':<12} "
            f"KES {p['amount'] if p['amount'] is not None else '?':<7} "
            f"ref {p['accountReference'] or '-':<14} {p['state']:<10} "
            f"order {p['orderId'] or '-'}  {p['reason'] or ''}"
        )
    _say(f"{len(found)} PayBill payment(s)", err=True)
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {"c2b": _c2b}

"""`khalex-pay orders show ID | list [--status S] [--refund-due]`: orders for operators.

Customer fields are masked as on `payments show`; amounts, ids and events are shown whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plumbing.settings import Settings

if TYPE_CHECKING:
    from payments.container import Container
    from payments.orders import OrderView

#: Most orders `orders list` prints.
LIST_MAX = 1000


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("orders", help="look into orders: show one, list them")
    orders_sub = cmd.add_subparsers(dest="orders_command", required=True)
    show = orders_sub.add_parser("show", help="the order, its payments and events (masked)")
    show.add_argument("order_id", help="the orderId")
    listing = orders_sub.add_parser("list", help="orders, newest first")
    listing.add_argument("--status", help="only orders in this status (pending, confirmed, ...)")
    listing.add_argument(
        "--refund-due", action="store_true", help="only orders that owe a customer money back"
    )
    listing.add_argument("--limit", type=int, default=50, help=f"at most (default 50, {LIST_MAX})")


def _say(text: str = "", *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _orders(settings: Settings, args: argparse.Namespace) -> int:
    from payments.container import Container  # noqa: PLC0415

    container = Container.build(settings, _no_publish)
    try:
        if args.orders_command == "show":
            return _show(container, args.order_id)
        return _list(container, args)
    finally:
        container.close()


def _no_publish(job: object) -> None:
    raise RuntimeError("the command line does not publish jobs")


def _show(container: Container, order_id: str) -> int:
    from payments import orders  # noqa: PLC0415
    from store import orders as orders_store  # noqa: PLC0415

    try:
        view = orders.get(container, order_id)
    except orders.OrderNotFound:
        _say(f"khalex-pay: no order {_masked(order_id)!r}", err=True)
        return 1
    with container.engine.connect() as conn:
        events = orders_store.events(conn, view.order.id)
    for line in _describe(view, events):
        _say(line)
    return 0


def _describe(view: OrderView, events: list[dict[str, Any]]) -> Iterator[str]:
    from domain.phone import mask_msisdn  # noqa: PLC0415
    from operations.ops import mask_email  # noqa: PLC0415

    o, m = view.order, _masked
    yield f"order {o.id}  {o.status}  {o.currency} {o.total_amount}" + (
        "  REFUND DUE" if o.refund_due else ""
    )
    yield f"  customer    {m(o.customer_name)} <{mask_email(o.customer_email or '')}>"
    yield f"  phone       {mask_msisdn(o.customer_phone)}"
    for item in o.order_items:
        yield (
            f"  item        {item['quantity']} x {m(item['productName'])} ({m(item['productId'])})"
            f" @ {item['unitPrice']}"
        )
    yield f"  delivery    fee {o.delivery_fee}"
    yield f"  paid by     {o.paid_by_payment_id or '-'}"
    yield f"  refund due  {', '.join(o.refund_payment_ids) or '-'}"
    yield f"  created     {_iso(o.created_at)}  updated {_iso(o.updated_at)}"
    yield from _section("payments", view.payment_ids, lambda p: f"  {p}")
    yield from _section("events", events, _event_line)


def _section(title: str, rows: list[Any], render: Callable[[Any], str]) -> Iterator[str]:
    yield f"{title} ({len(rows)})"
    yield from (render(row) for row in rows)


def _event_line(e: dict[str, Any]) -> str:
    moved = f"{e['from_status'] or '-'} -> {e['to_status']}"
    data = json.dumps(e["data"], default=str, separators=(",", ":"))
    return f"  {_iso(e['created_at'])}  {e['kind']:<12} {moved:<24} {_masked(data)}"


def _list(container: Container, args: argparse.Namespace) -> int:
    from payments import orders  # noqa: PLC0415

    wanted = max(1, min(args.limit, LIST_MAX))
    shown = 0
    cursor: str | None = None
    while shown < wanted:
        page = orders.list_orders(
            container, status=args.status, refund_due=True if args.refund_due else None,
            limit=min(orders.MAX_PAGE, wanted - shown), cursor=cursor,
        )  # fmt: skip
        for view in page.orders:
            o = view.order
            flag = "  refund due: " + ",".join(o.refund_payment_ids) if o.refund_due else ""
            _say(f"{o.id}  {_iso(o.created_at)}  {o.status:<10} KES {o.total_amount:>7}{flag}")
        shown += len(page.orders)
        cursor = page.next_cursor
        if cursor is None:
            break
    _say(f"{shown} order(s)", err=True)
    return 0


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


def _masked(text: str) -> str:
    from domain.phone import mask_msisdns_in  # noqa: PLC0415

    return mask_msisdns_in(text)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {"orders": _orders}

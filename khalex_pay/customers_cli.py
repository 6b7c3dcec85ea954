"""`khalex-pay customers export PHONE | erase PHONE`: a customer's rights over their data.

`export` prints everything held about the customer as JSON, unmasked: it is for them.
`erase` replaces their personal fields on finished payments and orders (amounts, receipts
and dates stay) and refuses, in one line, while one of their payments is still in flight.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from plumbing.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("customers", help="a customer's data: export it, erase it")
    customers_sub = cmd.add_subparsers(dest="customers_command", required=True)
    export = customers_sub.add_parser("export", help="everything held about PHONE, as JSON")
    export.add_argument("phone", help="the customer's number, in any form (0712…, 2547…)")
    erase = customers_sub.add_parser("erase", help="erase PHONE's personal data (keeps the books)")
    erase.add_argument("phone", help="the customer's number, in any form (0712…, 2547…)")


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _customers(settings: Settings, args: argparse.Namespace) -> int:
    from domain.phone import InvalidPhoneNumber  # noqa: PLC0415
    from operations import customers  # noqa: PLC0415
    from plumbing.sealing import SealingError  # noqa: PLC0415
    from store.db import make_engine  # noqa: PLC0415

    engine = make_engine(settings.database_url)
    try:
        if args.customers_command == "export":
            held = customers.export(engine, args.phone)
            _say(json.dumps(held, indent=2, default=str, ensure_ascii=False))
            return 0
        erased = customers.erase(engine, args.phone)
    except (InvalidPhoneNumber, SealingError) as exc:
        _say(f"khalex-pay: {exc}", err=True)
        return 2
    except customers.CustomerBusy as exc:
        _say(f"khalex-pay: not erased: {exc}", err=True)
        return 1
    finally:
        engine.dispose()
    _say(
        f"erased: {erased.payments} payments, {erased.orders} orders, "
        f"{erased.paybill_payments} PayBill payments, "
        f"{erased.raw_records} raw records (amounts, receipts and dates kept)"
    )
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {"customers": _customers}

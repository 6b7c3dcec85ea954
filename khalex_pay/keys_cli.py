"""`khalex-pay keys create NAME | list | revoke ID`: the shop servers' API keys.

A key is printed once, by `create`, and stored only as its SHA-256 (store/api_keys.py).
`khalex-pay keys rotate-data` re-seals the personal data under the first of
DATA_ENCRYPTION_KEYS (store/rotation.py), with a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plumbing.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="the shop servers' API keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key (printed once, stored hashed)")
    create.add_argument("name", help="what the key is for, e.g. the shop's server")
    keys_sub.add_parser("list", help="every key: id, name, prefix, created, last used, revoked")
    revoke = keys_sub.add_parser("revoke", help="stop a key from working, at once")
    revoke.add_argument("id", help="the key's id (from `keys list`)")
    keys_sub.add_parser(
        "rotate-data",
        help="re-seal all personal data under the first DATA_ENCRYPTION_KEYS key (resumable)",
    )


def _say(text: str = "", *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import make_engine  # noqa: PLC0415

    engine = make_engine(settings.database_url)
    try:
        command: Callable[[argparse.Namespace], int] = {
            "create": lambda a: _create(engine, a.name),
            "list": lambda _: _list(engine),
            "revoke": lambda a: _revoke(engine, a.id),
            "rotate-data": lambda _: _rotate_data(engine),
        }[args.keys_command]
        return command(args)
    finally:
        engine.dispose()


def _create(engine: Engine, name: str) -> int:
    from store import api_keys  # noqa: PLC0415

    try:
        with engine.begin() as conn:
            record, key = api_keys.create(conn, name)
    except ValueError as exc:
        _say(f"khalex-pay: {exc}", err=True)
        return 2
    _say(key)
    _say(
        f"API key {record.id} ({record.name!r}) created. It is shown only now: store it in "
        "the shop server's secrets and send it as Authorization: Bearer <key>.",
        err=True,
    )
    return 0


def _list(engine: Engine) -> int:
    from store import api_keys  # noqa: PLC0415

    with engine.connect() as conn:
        records = api_keys.all_keys(conn)
    if not records:
        _say("no API keys (make one with `khalex-pay keys create NAME`)", err=True)
    for r in records:
        state = f"revoked {_iso(r.revoked_at)}" if r.revoked_at else "active"
        _say(
            f"{r.id}  {r.prefix}…  {r.name}  created {_iso(r.created_at)}  "
            f"last used {_iso(r.last_used_at)}  {state}"
        )
    return 0


def _revoke(engine: Engine, key_id: str) -> int:
    from store import api_keys  # noqa: PLC0415

    with engine.begin() as conn:
        record = api_keys.revoke(conn, key_id)
    if record is None:
        _say(f"khalex-pay: no API key {key_id!r}", err=True)
        return 1
    _say(f"API key {record.id} ({record.name!r}) revoked {_iso(record.revoked_at)}")
    return 0


def _rotate_data(engine: Engine) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress as Bar  # noqa: PLC0415

    from plumbing import sealing  # noqa: PLC0415
    from store import rotation  # noqa: PLC0415

    try:
        current = sealing.current().current_id
    except sealing.SealingError as exc:
        _say(f"khalex-pay: {exc}", err=True)
        return 2
    tasks: dict[str, Any] = {}
    with Bar(console=Console(stderr=True), transient=False) as bar:

        def show(p: rotation.Progress) -> None:
            if p.table not in tasks:
                tasks[p.table] = bar.add_task(p.table, total=p.total or 1)
            bar.update(tasks[p.table], completed=p.seen if p.total else 1, total=p.total or 1)

        try:
            changed = rotation.rotate(engine, show)
        except sealing.SealingError as exc:
            _say(f"khalex-pay: {exc}", err=True)
            return 1
    _say(f"{changed} rows re-sealed under key {current}; every value is under it now", err=True)
    return 0


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {"keys": _keys}

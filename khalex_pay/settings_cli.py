"""`khalex-pay settings [--markdown [--update README.md]]`: every setting, from its declaration.

Without options it prints each setting's value in this shell (secrets hidden) and where it
came from, and the problems found; it runs even when the settings are bad.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plumbing.settings import declared, hide_password, resolve
from plumbing.settings_doc import markdown_table, rewrite_readme


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("settings", help="every setting: its value and source, or the table")
    cmd.add_argument("--markdown", action="store_true", help="print the README's table")
    cmd.add_argument("--update", metavar="README", type=Path, help="rewrite that file's table")


def run(args: argparse.Namespace) -> int:
    """The `settings` command; it needs no valid settings."""
    if args.update:
        args.update.write_text(rewrite_readme(args.update.read_text(encoding="utf-8")), "utf-8")
        return 0
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    resolved = resolve()
    for d in declared():
        source = resolved.sources.get(d.name, "default")
        if any(p.startswith(f"{d.name} ") for p in resolved.problems):
            source += ", refused: the default is shown"
        value = hide_password(d.kind.show(resolved.values[d.field]))
        shown = "(hidden)" if d.spec.secret and value else value or "(empty)"
        sys.stdout.write(f"{d.name}={shown}  # {source}\n")
    for problem in resolved.problems:
        sys.stderr.write(f"khalex-pay: bad setting: {problem}\n")
    return 2 if resolved.problems else 0

"""How one setting is declared: its kind, default, meaning, checks and production rule.

`Settings` (plumbing/settings.py) declares each of its fields with `setting(...)`; loading,
checking and the README's settings table are all read from those declarations.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A rate limit: (count, window in seconds).
Rate = tuple[int, int]

T = TypeVar("T")
V = TypeVar("V", int, float)

#: A check of a parsed value: what is wrong with it, after its name ("must be 1 to 12 …"),
#: or None when it is fine.
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Rule:
    """A production rule: `says` for the README, `problem` gives the refusal line or None."""

    says: str
    problem: Callable[[str, Any, Any], str | None]  # (name, value, default)


@dataclass(frozen=True)
class Spec:
    """One setting's declaration (see `setting`)."""

    default: Any
    doc: str
    env: str = ""
    production_default: Any = None
    default_from: str = ""
    shown_default: str = ""
    check: Check | None = None
    production: Rule | None = None
    clean: Callable[[Any], Any] | None = None
    secret: bool = False


def setting(
    default: Any,
    doc: str,
    *,
    env: str = "",
    production_default: Any = None,
    default_from: str = "",
    shown_default: str = "",
    check: Check | None = None,
    production: Rule | None = None,
    clean: Callable[[Any], Any] | None = None,
    secret: bool = False,
) -> Any:
    """Declare a `Settings` field.

    Parameters: `default` (sandbox's; `production_default` replaces it in production, and
    `default_from` names a setting whose value it takes); `doc` (the README's meaning);
    `env` (the variable's name when it is not the field's name in capitals); `shown_default`
    (the README's text when the value itself would not help); `check` (every environment);
    `production` (production only); `clean` (normalises a read value); `secret` (never shown).
    """
    spec = Spec(
        default=default, doc=doc, env=env, production_default=production_default,
        default_from=default_from, shown_default=shown_default, check=check,
        production=production, clean=clean, secret=secret,
    )  # fmt: skip
    return dataclasses.field(default=default, metadata={"setting": spec})


# --- Kinds: how a value is read from text ---------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How a type is read from the environment and shown in the README."""

    name: str
    parse: Callable[[str], Any]  # raises ValueError whose text follows the setting's name
    show: Callable[[Any], str]


def _number(raw: str) -> float:
    return _not_negative(_read(float, raw, "a number"))


def _whole(raw: str) -> int:
    return _not_negative(_read(int, raw, "a whole number"))


def _read(parse: Callable[[str], T], raw: str, kind: str) -> T:
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"must be {kind}, not {raw!r}") from None


def _not_negative(value: V) -> V:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _switch(raw: str) -> bool:
    word = raw.lower()
    if word not in ("on", "off"):
        raise ValueError(f"must be on or off, not {word!r}")
    return word == "on"


def _words(raw: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip() for part in raw.split(","))))


def _cidrs(raw: str) -> tuple[Network, ...]:
    nets: list[Network] = []
    bad: list[str] = []
    for part in _words(raw):
        if part == "*":  # "anyone", said explicitly
            nets.extend((ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            bad.append(repr(part))
    if bad:
        raise ValueError(f"has a bad address or range: {', '.join(bad)}")
    return tuple(nets)


def _rate(raw: str) -> Rate:
    """A `count/seconds` limit, e.g. `3/600`."""
    count, _, window = raw.partition("/")
    if not (count.strip().isdigit() and window.strip().isdigit()):
        raise ValueError(f"must be count/seconds, e.g. 3/600, not {raw!r}")
    if int(count) < 1 or int(window) < 1:
        raise ValueError("needs a count and a window of at least 1")
    return int(count), int(window)


def _seconds(raw: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(part) for part in raw.split(","))
    except ValueError:
        steps = ()
    if not steps or any(step < 0 for step in steps):
        raise ValueError(f"must be comma-separated seconds (e.g. 5,300,1800), not {raw!r}")
    return steps


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _joined(value: tuple[Any, ...]) -> str:
    return ",".join(_plain(v) for v in value)


#: Each type a setting may have, and how it is read.
KINDS: dict[object, Kind] = {
    str: Kind("text", str, str),
    int: Kind("whole number", _whole, str),
    float: Kind("number", _number, _plain),
    bool: Kind("on/off", _switch, _plain),
    tuple[str, ...]: Kind("comma-separated list", _words, _joined),
    tuple[Network, ...]: Kind("comma-separated addresses or CIDRs", _cidrs, _joined),
    Rate: Kind("count/seconds", _rate, lambda r: f"{r[0]}/{r[1]}"),
    tuple[float, ...]: Kind("comma-separated seconds", _seconds, _joined),
}


# --- Checks: every environment --------------------------------------------------------------


def one_of(*choices: str) -> Check:
    said = " or ".join(choices)
    return lambda v: None if v in choices else f"must be {said}, not {v!r}"


def between(low: float, high: float, text: str = "") -> Check:
    said = text or f"{low:g} to {high:g}"
    return lambda v: None if low <= v <= high else f"must be {said}"


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def more_than_zero(value: float) -> str | None:
    return None if value > 0 else "must be more than 0"


def characters(low: int, high: int) -> Check:
    return lambda v: None if low <= len(v) <= high else f"must be {low} to {high} characters"


def http_url(value: str) -> str | None:
    """An http(s) URL; an empty value (unset) passes."""
    parts = urlsplit(value)
    if not value or (parts.scheme in ("http", "https") and parts.netloc and " " not in value):
        return None
    return f"must be an http(s) URL, not {value!r}"


# --- Production rules ------------------------------------------------------------------------


def https_only(name: str, value: str, default: str) -> str | None:
    if value and not value.startswith("https://"):
        return f"production needs an https:// {name}"
    return None


HTTPS = Rule("https:// only", https_only)

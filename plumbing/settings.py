"""Settings read from the environment (and a `.env` file), validated once at start.

Every setting is declared once, below, with its kind, default, meaning, checks and
production rule; loading, the production guard and the README's settings table
(`khalex-pay settings --markdown`) all read those declarations. Adding a setting is one
`setting(...)` line in `Settings`.

Every command builds one `Settings` with `load_settings()`. An empty value counts as unset
(the default stays); a bad value stops the command with one clear line per problem
(`SettingsError.problems`), naming the variable and where it was set.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import ipaddress
import os
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plumbing.sealing import Keyring, key_problem
from plumbing.setting_spec import (
    HTTPS,
    KINDS,
    Kind,
    Network,
    Rate,
    Rule,
    Spec,
    at_least,
    between,
    characters,
    http_url,
    more_than_zero,
    one_of,
    setting,
)

__all__ = [
    "Network",
    "Rate",
    "Settings",
    "SettingsError",
    "declared",
    "hide_password",
    "keyring",
    "load_settings",
    "normalise_database_url",
    "read_dotenv",
    "webhook_secret_bytes",
]

#: Daraja's sandbox PayBill and its public passkey (DARAJA.md §7): the embedded default.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
#: Credentials the simulator accepts when none are configured (never valid in production).
DEV_CONSUMER_KEY = "khalex-dev-key"
DEV_CONSUMER_SECRET = "khalex-dev-secret"  # noqa: S105 - a published development default

#: Safaricom's published callback source addresses (DARAJA.md §4).
SAFARICOM_CALLBACK_IPS = tuple(
    ipaddress.ip_network(f"196.201.{host}")
    for host in (
        "214.200", "214.206", "213.114", "214.207", "214.208", "213.44",
        "212.127", "212.138", "212.129", "212.136", "212.74", "212.69",
    )
)  # fmt: skip

#: Signs shop webhooks in sandbox when SHOP_WEBHOOK_SECRET is unset (refused in production).
DEV_SHOP_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"khalex-dev-shop-webhook-secret!!").decode()
#: Seconds between two attempts at a shop webhook (the first is at once): Svix's schedule,
#: with 10 h steps until just over 3 days.
SHOP_WEBHOOK_RETRY_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, *(36000.0,) * 7)
#: Standard Webhooks' bounds for the decoded secret (bytes).
WEBHOOK_SECRET_BYTES = (24, 64)

BASE_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}

#: Shortest passkey accepted in production: Daraja's passkeys are 64 hex characters.
MIN_PASSKEY = 32
#: Shortest JWT_SECRET and WEBHOOK_SECRET accepted in production.
MIN_SECRET = 32


class SettingsError(Exception):
    """Raised with every problem found, so a person can fix them all at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- Checks and production rules the declarations use ----------------------------------------


def _shortcode(value: str) -> str | None:
    return None if value.isdigit() and 5 <= len(value) <= 7 else "must be 5 to 7 digits"


def _digits(value: str) -> str | None:
    return None if value.isdigit() else "must be digits (the till or PayBill number)"


#: A C2B URL secret: URL-safe, long enough not to be guessed.
_C2B_SECRET = re.compile(r"[A-Za-z0-9_-]{24,64}")
#: Words Daraja refuses anywhere in a C2B URL (daraja.c2b.BANNED_URL_WORDS, which settings
#: may not import).
_C2B_BANNED = ("mpesa", "m-pesa", "safaricom", "exec", "exe", "cmd", "sql", "query")


def _c2b_url_secret(value: str) -> str | None:
    if not value or (
        _C2B_SECRET.fullmatch(value) and not any(word in value.lower() for word in _C2B_BANNED)
    ):
        return None
    return (
        "must be 24 to 64 of A-Z a-z 0-9 _ - without a word Daraja refuses in URLs "
        "(mpesa, safaricom, exe, cmd, sql, query)"
    )


def _redis_url(value: str) -> str | None:
    if not value or value.startswith(("redis://", "rediss://", "unix://")):
        return None
    return "must start with redis://, rediss:// or unix://"


def _shop_webhook_secret(value: str) -> str | None:
    if not value:
        return None
    try:
        webhook_secret_bytes(value)
    except ValueError as exc:
        low, high = WEBHOOK_SECRET_BYTES
        return (
            f"must be whsec_ then the base64 of {low} to {high} random bytes ({exc}); "
            "make one with: echo whsec_$(openssl rand -base64 32)"
        )
    return None


def _long_passkey(name: str, value: str, default: str) -> str | None:
    if len(value) < MIN_PASSKEY:
        return f"production needs a real {name} (at least {MIN_PASSKEY} characters)"
    return None


def _public_callback_url(name: str, url: str, default: str) -> str | None:
    if not url.startswith("https://"):
        return f"production needs an https:// {name}"
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"production needs a public {name}, not a local host name"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: Daraja resolves it, we cannot tell from here
    if not ip.is_global:
        return f"production needs a public {name}, not a loopback/private address"
    return None


def _not_anyone(name: str, nets: tuple[Network, ...], default: object) -> str | None:
    """An empty allow-list, or one holding 0.0.0.0/0 or ::/0 (what `*` means), allows anyone."""
    if not nets or any(net.prefixlen == 0 for net in nets):
        return (
            f"production refuses an {name} that allows any address "
            "(leave it unset for Safaricom's list)"
        )
    return None


def _real_secret(name: str, value: str, default: str) -> str | None:
    if value == default or len(value) < MIN_SECRET:
        return f"production needs a {name} of at least {MIN_SECRET} characters"
    return None


def _required(name: str, value: str, default: str) -> str | None:
    return None if value else f"production needs {name}"


def _postgresql(name: str, value: str, default: str) -> str | None:
    return f"production needs a PostgreSQL {name}" if value.startswith("sqlite") else None


def _auth_on(name: str, value: bool, default: bool) -> str | None:
    return None if value else f"production refuses {name}=off (anyone could start payments)"


def _base64_keys(value: str) -> str | None:
    """Comma-separated base64 32-byte keys (an empty value, unset, passes)."""
    for part in filter(None, (p.strip() for p in value.split(","))):
        if problem := key_problem(part):
            return problem
    return None


def _base64_key(value: str) -> str | None:
    return key_problem(value) if value else None


def normalise_database_url(url: str) -> str:
    """Accept the seed's `postgresql://user:pass@host/db` and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def hide_password(url: str) -> str:
    """`url` with the password of its user part (DATABASE_URL, REDIS_URL) shown as ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _no_trailing_slash(url: str) -> str:
    return url.rstrip("/")


_SECRET = Rule(f"at least {MIN_SECRET} characters, not the dev value", _real_secret)
_POSITIVE: dict[str, Any] = {"check": more_than_zero}


@dataclass(frozen=True)
class Settings:
    """What every Khalex Pay process needs to know; each field is one setting."""

    mpesa_environment: str = setting(
        "sandbox",
        "`sandbox` or `production`: which Daraja, and whether the production guard runs",
        check=one_of("sandbox", "production"),
    )
    mpesa_consumer_key: str = setting(
        DEV_CONSUMER_KEY,
        "Daraja app consumer key",
        shown_default="a dev value the simulator accepts",
        secret=True,
    )
    mpesa_consumer_secret: str = setting(
        DEV_CONSUMER_SECRET,
        "Daraja app consumer secret",
        shown_default="a dev value the simulator accepts",
        secret=True,
    )
    mpesa_business_shortcode: str = setting(
        SANDBOX_SHORTCODE, "PayBill or store number (5 to 7 digits)", check=_shortcode
    )
    mpesa_passkey: str = setting(
        SANDBOX_PASSKEY,
        "Lipa na M-Pesa passkey",
        shown_default="Daraja's public sandbox passkey",
        production=Rule(f"at least {MIN_PASSKEY} characters", _long_passkey),
        secret=True,
    )
    mpesa_callback_url: str = setting(
        "http://127.0.0.1:8000/api/payments/webhook",
        "public URL of the webhook; each push adds `/<payment token>`",
        check=http_url,
        production=Rule("https://, a public host", _public_callback_url),
        clean=_no_trailing_slash,
    )
    mpesa_base_url: str = setting(
        BASE_URLS["sandbox"],
        "Daraja's address; point it at the simulator in tests",
        production_default=BASE_URLS["production"],
        check=http_url,
        production=HTTPS,
        clean=_no_trailing_slash,
    )
    mpesa_transaction_type: str = setting(
        "CustomerPayBillOnline",
        "or `CustomerBuyGoodsOnline` (a till)",
        check=one_of("CustomerPayBillOnline", "CustomerBuyGoodsOnline"),
    )
    mpesa_party_b: str = setting(
        SANDBOX_SHORTCODE,
        "the till number for Buy Goods",
        default_from="mpesa_business_shortcode",
        check=_digits,
    )
    mpesa_account_reference: str = setting(
        "KhalexChess", "shown in the prompt and SMS (1 to 12 characters)", check=characters(1, 12)
    )
    mpesa_transaction_desc: str = setting(
        "Khalex Chess",
        "the payment's description sent to Daraja (1 to 13 characters)",
        check=characters(1, 13),
    )
    mpesa_callback_allowed_ips: tuple[Network, ...] = setting(
        (),
        "who may post callbacks: addresses or CIDR ranges, `*` for anyone",
        production_default=SAFARICOM_CALLBACK_IPS,
        shown_default="anyone in sandbox; Safaricom's published list in production",
        production=Rule("must not allow any address (`*`, `0.0.0.0/0`, `::/0`)", _not_anyone),
    )
    mpesa_callback_signature: str = setting(
        "off",
        "`required`: callbacks must carry `X-Mpesa-Signature` (hex HMAC-SHA256 of the body "
        "with `WEBHOOK_SECRET`), for a signing relay in front of the webhook",
        check=one_of("off", "required"),
    )
    mpesa_timeout_s: float = setting(10.0, "read timeout for Daraja calls, in seconds")
    daraja_max_concurrency: int = setting(
        64,
        "Daraja calls one worker process has in flight at once (threads beyond it wait, "
        "sending nothing); after a rate-limit answer every call of the process waits a "
        "backoff step",
        check=at_least(1),
    )
    jwt_secret: str = setting(
        "dev-jwt-secret-change-me",
        "signs operator and checkout tokens (`ops-token` refuses the dev value outside sandbox)",
        shown_default="a dev value",
        production=_SECRET,
        secret=True,
    )
    webhook_secret: str = setting(
        "dev-webhook-secret-change-me",
        "the callback URL tokens and `X-Mpesa-Signature`",
        shown_default="a dev value",
        production=_SECRET,
        secret=True,
    )
    database_url: str = setting(
        "sqlite:///khalex-pay.db",
        "`postgresql://user:pass@host/db` works as given",
        production=Rule("PostgreSQL", _postgresql),
        clean=normalise_database_url,
    )
    redis_url: str = setting(
        "",
        "the Dramatiq broker, the rate limits and the shared Daraja token",
        check=_redis_url,
        production=Rule("required", _required),
    )
    sentry_dsn: str = setting("", "error reporting", secret=True)
    log_level: str = setting(
        "INFO",
        "the least level logged; phone numbers and e-mails are always masked",
        check=one_of("DEBUG", "INFO", "WARNING", "ERROR"),
        clean=str.upper,
    )
    log_format: str = setting(
        "auto",
        "`json` (one object a line), `plain` (readable lines) or `auto`: plain in "
        "`khalex-pay dev`, JSON everywhere else",
        check=one_of("auto", "json", "plain"),
        clean=str.lower,
    )
    reconcile_after_s: int = setting(20, "a pushed payment without an outcome this long is queried")
    payment_expiry_s: int = setting(
        180, "after this, a payment without a final answer fails with `timeout`"
    )
    mpesa_rollout_percent: int = setting(
        100,
        "0 to 100: the share of orders (stable buckets) whose checkout may pay by M-Pesa; "
        "the rest see `SHOP_CONTACT`",
        check=between(0, 100),
    )
    shop_contact: str = setting(
        "Call or WhatsApp Khalex Chess on 0700 000 000 to order by phone.",
        "sent with `503 payments_unavailable`",
        shown_default="a call-to-order line",
    )
    sim_callback_delay_s: float = setting(
        1.0, "simulator: seconds before its callback", env="SIM_CALLBACK_DELAY"
    )
    sim_late_callback_delay_s: float = setting(
        120.0, "simulator: seconds before a late callback", env="SIM_LATE_CALLBACK_DELAY"
    )
    sim_chaos: str = setting("", "simulator: faults to inject (see the simulator's section)")
    alert_interval_s: float = setting(
        30.0, "seconds between alert checks (by the scheduler leader)", **_POSITIVE
    )
    alert_success_window_s: int = setting(
        900, "the success rate is over payments that ended in this window", **_POSITIVE
    )
    alert_success_rate_min: float = setting(
        0.5,
        "alert when completed ÷ ended is below this",
        check=between(0, 1, "between 0 and 1 (e.g. 0.5)"),
    )
    alert_min_payments: int = setting(
        10, "no success-rate alert until this many payments ended in the window", **_POSITIVE
    )
    alert_queue_age_s: float = setting(
        120.0, "alert when a queue's oldest ready job waited longer than this", **_POSITIVE
    )
    alert_repeat_s: int = setting(
        900, "a condition that stays true alerts again at most this often", **_POSITIVE
    )
    alert_webhook_url: str = setting(
        "",
        'each alert is POSTed here as JSON `{"alert", "message", "details", "at"}`',
        check=http_url,
        secret=True,
    )
    api_auth: bool = setting(
        True,
        "`off` lets anyone call as the shop server, for local trials",
        production=Rule("must be on", _auth_on),
    )
    ops_token_max_hours: float = setting(
        24.0, "longest operator token lifetime (`exp - iat`) accepted or issued", **_POSITIVE
    )
    metrics_token: str = setting(
        "", "when set, `/metrics` needs `Authorization: Bearer <it>`", secret=True
    )
    cors_allow_origins: tuple[str, ...] = setting(
        (), "origins of the shop's pages (CORS is off when empty)"
    )
    trusted_proxies: tuple[Network, ...] = setting(
        (), "reverse proxies whose `X-Forwarded-For` is believed"
    )
    rate_limit_phone: Rate = setting((3, 600), "STK prompts to one phone number per window")
    rate_limit_ip: Rate = setting((30, 60), "initiates per client address")
    rate_limit_key: Rate = setting((600, 60), "initiates per API key or checkout token subject")
    retention_days: int = setting(
        90,
        "raw records (callbacks, Daraja exchanges, refused requests, jobs) older than this "
        "are purged; payments and their events are kept",
        check=at_least(1),
    )
    shop_webhook_url: str = setting(
        "",
        "where shop webhooks are POSTed (none are sent when empty)",
        check=http_url,
        production=HTTPS,
    )
    shop_webhook_secret: str = setting(
        DEV_SHOP_WEBHOOK_SECRET,
        "`whsec_` + base64 of 24 to 64 random bytes (`echo whsec_$(openssl rand -base64 32)`)",
        production_default="",
        shown_default="a dev value in sandbox; none in production",
        check=_shop_webhook_secret,
        secret=True,
    )
    shop_webhook_retry_s: tuple[float, ...] = setting(
        SHOP_WEBHOOK_RETRY_S,
        "seconds between attempts at a webhook (the first is at once); after the last, "
        "the event fails",
        shown_default="5,300,1800,7200,18000 then 36000 seven times",
    )
    c2b_url_secret: str = setting(
        "",
        "the secret last path segment of the registered PayBill (C2B) URLs (24 to 64 of "
        "`A-Za-z0-9_-`, without a word Daraja refuses in URLs); with it, C2B requests on the "
        "bare URLs are kept and alerted, never applied",
        check=_c2b_url_secret,
        secret=True,
    )
    data_encryption_keys: str = setting(
        "",
        "comma-separated base64 32-byte keys (`openssl rand -base64 32`) sealing personal data; "
        "the first seals, all open ([docs/OPERATIONS.md](docs/OPERATIONS.md))",
        shown_default="empty (`khalex-pay dev` makes its own)",
        check=_base64_keys,
        production=Rule("required", _required),
        secret=True,
    )
    blind_index_key: str = setting(
        "",
        "base64 32-byte key of the blind indexes (look-ups by phone and CheckoutRequestID); "
        "never changes",
        shown_default="empty (`khalex-pay dev` makes its own)",
        check=_base64_key,
        production=Rule("required", _required),
        secret=True,
    )

    @property
    def production(self) -> bool:
        return self.mpesa_environment == "production"

    def callback_ip_allowed(self, address: str) -> bool:
        """True when `address` may post callbacks (an empty allow-list allows any)."""
        if not self.mpesa_callback_allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.mpesa_callback_allowed_ips)


@dataclass(frozen=True)
class Declared:
    """A `Settings` field with its variable's name and kind."""

    field: str
    name: str
    kind: Kind
    spec: Spec


@functools.cache
def declared() -> tuple[Declared, ...]:
    """Every setting, in declaration order."""
    hints = typing.get_type_hints(Settings)
    return tuple(
        Declared(f.name, f.metadata["setting"].env or f.name.upper(), KINDS[hints[f.name]], spec)
        for f in dataclasses.fields(Settings)
        if (spec := f.metadata.get("setting"))
    )


#: Where a value was set, as a problem line names it.
ENVIRONMENT, DOTENV = "the environment", ".env"


@dataclass(frozen=True)
class Resolved:
    """The settings, each variable's source (unset ones absent), and the problems found."""

    values: dict[str, Any]
    sources: dict[str, str]
    problems: list[str]


def read_dotenv(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a `.env` file; comments, blanks and `export ` are ignored."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build and validate `Settings` from `environ` (default: `os.environ` over `.env`)."""
    resolved = resolve(environ, dotenv)
    if resolved.problems:
        raise SettingsError(resolved.problems)
    return Settings(**resolved.values)


def resolve(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Resolved:
    """Read every setting; an empty value is unset. Problems name the variable's source."""
    raw: dict[str, tuple[str, str]] = {}
    for source, layer in (
        (DOTENV, read_dotenv(dotenv or Path(".env"))),
        (ENVIRONMENT, os.environ if environ is None else environ),
    ):
        raw.update({k: (v.strip(), source) for k, v in layer.items() if v.strip()})
    values: dict[str, Any] = {}
    problems: list[str] = []
    for d in declared():
        values[d.field] = _value(d, raw.get(d.name, ("", ""))[0], values, problems)
    settings = Settings(**values)
    problems.extend(_checked(settings))
    sources = {d.name: raw[d.name][1] for d in declared() if d.name in raw}
    return Resolved(values, sources, [_with_source(p, sources) for p in problems])


def _value(d: Declared, text: str, earlier: dict[str, Any], problems: list[str]) -> Any:
    """`d`'s value read from `text`, or its default (with a problem when `text` is bad)."""
    if text:
        try:
            value = d.kind.parse(text)
            return d.spec.clean(value) if d.spec.clean else value
        except ValueError as exc:
            problems.append(f"{d.name} {exc}")
    if d.spec.default_from:
        return earlier[d.spec.default_from]
    if earlier.get("mpesa_environment") == "production" and d.spec.production_default is not None:
        return d.spec.production_default
    return d.spec.default


def _checked(s: Settings) -> Iterator[str]:
    """Each declared check and, in production, each production rule, then the cross rules."""
    for d in declared():
        value = getattr(s, d.field)
        if d.spec.check and (tail := d.spec.check(value)):
            yield f"{d.name} {tail}"
        rule = d.spec.production if s.production else None
        if rule and (said := rule.problem(d.name, value, d.spec.default)):
            yield said
    for cross in CROSS_RULES:
        if (s.production or not cross.production_only) and (said := cross.problem(s)):
            yield said


def _with_source(problem: str, sources: dict[str, str]) -> str:
    """`problem`, followed by where each setting it names was set (if it was)."""
    named = list(dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9_]+\b", problem)))
    named = [name for name in named if name in sources]
    if not named:
        return problem
    if named == [problem.partition(" ")[0]]:
        return f"{problem} (from {sources[named[0]]})"
    return f"{problem} ({'; '.join(f'{name} from {sources[name]}' for name in named)})"


# --- Rules over more than one setting ---------------------------------------------------------


@dataclass(frozen=True)
class CrossRule:
    """A rule between settings: `says` for the README, `problem` the refusal line or None."""

    says: str
    problem: Callable[[Settings], str | None]
    production_only: bool = True


def _sandbox_credentials(s: Settings) -> str | None:
    if s.mpesa_business_shortcode == SANDBOX_SHORTCODE or s.mpesa_passkey == SANDBOX_PASSKEY:
        return "production refuses the sandbox shortcode or passkey"
    return None


def _dev_consumer(s: Settings) -> str | None:
    dev = (DEV_CONSUMER_KEY, DEV_CONSUMER_SECRET)
    names = [
        name
        for name, value in (
            ("MPESA_CONSUMER_KEY", s.mpesa_consumer_key),
            ("MPESA_CONSUMER_SECRET", s.mpesa_consumer_secret),
        )
        if value in dev
    ]
    return f"production refuses the development {' and '.join(names)}" if names else None


def _secrets_differ(s: Settings) -> str | None:
    if s.jwt_secret == s.webhook_secret:
        return "production needs JWT_SECRET and WEBHOOK_SECRET to differ"
    return None


def _shop_webhook_signed(s: Settings) -> str | None:
    if s.shop_webhook_url and s.shop_webhook_secret in ("", DEV_SHOP_WEBHOOK_SECRET):
        return "production needs SHOP_WEBHOOK_SECRET (whsec_...) with SHOP_WEBHOOK_URL"
    return None


def _expiry_after_query(s: Settings) -> str | None:
    if s.payment_expiry_s <= s.reconcile_after_s:
        return "PAYMENT_EXPIRY_S must be longer than RECONCILE_AFTER_S"
    return None


def _keys_together(s: Settings) -> str | None:
    # Production needs both, and its own rule names each one missing.
    if not s.production and bool(s.data_encryption_keys) != bool(s.blind_index_key):
        return "DATA_ENCRYPTION_KEYS and BLIND_INDEX_KEY go together: set both or neither"
    return None


def keyring(s: Settings) -> Keyring | None:
    """The personal-data keyring of these settings; None when no keys are set (not production)."""
    if not (s.data_encryption_keys or s.blind_index_key):
        return None
    return Keyring.parse(s.data_encryption_keys, s.blind_index_key)


#: The rules that involve two settings (the production guard's and one for every environment).
CROSS_RULES = (
    CrossRule("`PAYMENT_EXPIRY_S` longer than `RECONCILE_AFTER_S`", _expiry_after_query, False),
    CrossRule(
        "`DATA_ENCRYPTION_KEYS` and `BLIND_INDEX_KEY` both or neither", _keys_together, False
    ),
    CrossRule("not Daraja's sandbox shortcode or passkey", _sandbox_credentials),
    CrossRule("not the development `MPESA_CONSUMER_KEY`/`SECRET`", _dev_consumer),
    CrossRule("`JWT_SECRET` and `WEBHOOK_SECRET` differ", _secrets_differ),
    CrossRule("a `SHOP_WEBHOOK_URL` needs its own `SHOP_WEBHOOK_SECRET`", _shop_webhook_signed),
)


def webhook_secret_bytes(secret: str) -> bytes:
    """The key in a Standard Webhooks secret `whsec_<base64>`; ValueError if it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("no whsec_ prefix")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    low, high = WEBHOOK_SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"{len(key)} bytes, not {low} to {high}")
    return key

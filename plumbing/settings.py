"""Settings read from the environment (and a `.env` file), validated once at start.

Every command builds one `Settings` with `load_settings()`; a bad value stops the command
with one clear line per problem (`SettingsError.problems`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

#: Daraja's sandbox PayBill and its public passkey (DARAJA.md §7): the embedded default.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
#: Credentials the simulator accepts when none are configured (never valid in production).
DEV_CONSUMER_KEY = "khalex-dev-key"
DEV_CONSUMER_SECRET = "khalex-dev-secret"  # noqa: S105 - a published development default

#: Safaricom's published callback source addresses (DARAJA.md §4).
SAFARICOM_CALLBACK_IPS = (
    "196.201.214.200,196.201.214.206,196.201.213.114,196.201.214.207,196.201.214.208,"
    "196.201.213.44,196.201.212.127,196.201.212.138,196.201.212.129,196.201.212.136,"
    "196.201.212.74,196.201.212.69"
)

#: Signs shop webhooks in sandbox when SHOP_WEBHOOK_SECRET is unset (refused in production).
DEV_SHOP_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"khalex-dev-shop-webhook-secret!!").decode()
#: Seconds between two attempts at a shop webhook (the first is at once): Svix's schedule,
#: with 10 h steps until just over 3 days.
SHOP_WEBHOOK_RETRY_S = (5, 300, 1800, 7200, 18000, *(36000,) * 7)
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

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A rate limit: (count, window in seconds).
Rate = tuple[int, int]
#: A number read from the environment (int or float).
N = TypeVar("N", int, float)


class SettingsError(Exception):
    """Raised with every problem found, so a person can fix them all at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """What every Khalex Pay process needs to know; see the README's settings table."""

    mpesa_environment: str = "sandbox"
    mpesa_consumer_key: str = DEV_CONSUMER_KEY
    mpesa_consumer_secret: str = DEV_CONSUMER_SECRET
    mpesa_business_shortcode: str = SANDBOX_SHORTCODE
    mpesa_passkey: str = SANDBOX_PASSKEY
    mpesa_callback_url: str = "http://127.0.0.1:8000/api/payments/webhook"
    mpesa_base_url: str = BASE_URLS["sandbox"]
    mpesa_transaction_type: str = "CustomerPayBillOnline"
    mpesa_party_b: str = SANDBOX_SHORTCODE
    mpesa_account_reference: str = "KhalexChess"
    mpesa_transaction_desc: str = "Khalex Chess"
    mpesa_callback_allowed_ips: tuple[Network, ...] = ()
    #: `required`: callbacks must carry X-Mpesa-Signature (behind a signing relay).
    mpesa_callback_signature: str = "off"
    mpesa_timeout_s: float = 10.0
    # Daraja calls one worker process has in flight at once (a bound, not a target).
    daraja_max_concurrency: int = 64
    jwt_secret: str = "dev-jwt-secret-change-me"  # noqa: S105 - refused in production
    webhook_secret: str = "dev-webhook-secret-change-me"  # noqa: S105 - refused in production
    database_url: str = "sqlite:///khalex-pay.db"
    redis_url: str = ""
    sentry_dsn: str = ""
    reconcile_after_s: int = 20
    payment_expiry_s: int = 180
    #: Share of checkout tokens (stable buckets by order) offered M-Pesa (CONTRACT §11).
    mpesa_rollout_percent: int = 100
    shop_contact: str = "Call or WhatsApp Khalex Chess on 0700 000 000 to order by phone."
    sim_callback_delay_s: float = 1.0
    sim_late_callback_delay_s: float = 120.0
    sim_chaos: str = ""
    alert_interval_s: float = 30.0
    alert_success_window_s: int = 900
    alert_success_rate_min: float = 0.5
    alert_min_payments: int = 10
    alert_queue_age_s: float = 120.0
    alert_repeat_s: int = 900
    alert_webhook_url: str = ""
    # Who may call what and how often (CONTRACT.md §8, §9; README "Callers and limits").
    api_auth: bool = True
    ops_token_max_hours: float = 24.0
    metrics_token: str = ""
    cors_allow_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    rate_limit_phone: Rate = (3, 600)
    rate_limit_ip: Rate = (30, 60)
    rate_limit_key: Rate = (600, 60)
    #: Raw records (callbacks, Daraja exchanges, refused requests, jobs) kept this long.
    retention_days: int = 90
    shop_webhook_url: str = ""
    shop_webhook_secret: str = ""
    shop_webhook_retry_s: tuple[float, ...] = SHOP_WEBHOOK_RETRY_S

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
    env = read_dotenv(dotenv or Path(".env"))
    env.update(os.environ if environ is None else environ)
    problems: list[str] = []
    mode = env.get("MPESA_ENVIRONMENT", "sandbox")
    if mode not in BASE_URLS:
        problems.append(f"MPESA_ENVIRONMENT must be sandbox or production, not {mode!r}")
        mode = "sandbox"
    shortcode = env.get("MPESA_BUSINESS_SHORTCODE", SANDBOX_SHORTCODE)
    values = Settings(
        mpesa_environment=mode,
        mpesa_consumer_key=env.get("MPESA_CONSUMER_KEY", DEV_CONSUMER_KEY),
        mpesa_consumer_secret=env.get("MPESA_CONSUMER_SECRET", DEV_CONSUMER_SECRET),
        mpesa_business_shortcode=shortcode,
        mpesa_passkey=env.get("MPESA_PASSKEY", SANDBOX_PASSKEY),
        mpesa_callback_url=env.get(
            "MPESA_CALLBACK_URL", "http://127.0.0.1:8000/api/payments/webhook"
        ).rstrip("/"),
        mpesa_base_url=env.get("MPESA_BASE_URL", BASE_URLS[mode]).rstrip("/"),
        mpesa_transaction_type=env.get("MPESA_TRANSACTION_TYPE", "CustomerPayBillOnline"),
        mpesa_party_b=env.get("MPESA_PARTY_B", shortcode),
        mpesa_account_reference=env.get("MPESA_ACCOUNT_REFERENCE", "KhalexChess"),
        mpesa_transaction_desc=env.get("MPESA_TRANSACTION_DESC", "Khalex Chess"),
        mpesa_callback_allowed_ips=_networks(env, mode, problems),
        mpesa_callback_signature=env.get("MPESA_CALLBACK_SIGNATURE", "off").strip() or "off",
        mpesa_timeout_s=_number(env, "MPESA_TIMEOUT_S", 10.0, problems),
        daraja_max_concurrency=_integer(env, "DARAJA_MAX_CONCURRENCY", 64, problems),
        jwt_secret=env.get("JWT_SECRET", Settings.jwt_secret),
        webhook_secret=env.get("WEBHOOK_SECRET", Settings.webhook_secret),
        database_url=normalise_database_url(env.get("DATABASE_URL", Settings.database_url)),
        redis_url=env.get("REDIS_URL", ""),
        sentry_dsn=env.get("SENTRY_DSN", ""),
        reconcile_after_s=int(_number(env, "RECONCILE_AFTER_S", 20, problems)),
        payment_expiry_s=int(_number(env, "PAYMENT_EXPIRY_S", 180, problems)),
        mpesa_rollout_percent=_integer(env, "MPESA_ROLLOUT_PERCENT", 100, problems),
        shop_contact=env.get("SHOP_CONTACT", Settings.shop_contact),
        sim_callback_delay_s=_number(env, "SIM_CALLBACK_DELAY", 1.0, problems),
        sim_late_callback_delay_s=_number(env, "SIM_LATE_CALLBACK_DELAY", 120.0, problems),
        sim_chaos=env.get("SIM_CHAOS", ""),
        alert_interval_s=_number(env, "ALERT_INTERVAL_S", 30.0, problems),
        alert_success_window_s=_integer(env, "ALERT_SUCCESS_WINDOW_S", 900, problems),
        alert_success_rate_min=_number(env, "ALERT_SUCCESS_RATE_MIN", 0.5, problems),
        alert_min_payments=_integer(env, "ALERT_MIN_PAYMENTS", 10, problems),
        alert_queue_age_s=_number(env, "ALERT_QUEUE_AGE_S", 120.0, problems),
        alert_repeat_s=_integer(env, "ALERT_REPEAT_S", 900, problems),
        alert_webhook_url=env.get("ALERT_WEBHOOK_URL", "").strip(),
        api_auth=_switch(env, "API_AUTH", problems),
        ops_token_max_hours=_number(env, "OPS_TOKEN_MAX_HOURS", 24.0, problems),
        metrics_token=env.get("METRICS_TOKEN", "").strip(),
        cors_allow_origins=tuple(
            filter(None, (o.strip() for o in env.get("CORS_ALLOW_ORIGINS", "").split(",")))
        ),
        trusted_proxies=_cidrs("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES", ""), problems),
        rate_limit_phone=_rate(env, "RATE_LIMIT_PHONE", Settings.rate_limit_phone, problems),
        rate_limit_ip=_rate(env, "RATE_LIMIT_IP", Settings.rate_limit_ip, problems),
        rate_limit_key=_rate(env, "RATE_LIMIT_KEY", Settings.rate_limit_key, problems),
        retention_days=_integer(env, "RETENTION_DAYS", 90, problems),
        shop_webhook_url=env.get("SHOP_WEBHOOK_URL", "").strip(),
        shop_webhook_secret=env.get("SHOP_WEBHOOK_SECRET", "").strip()
        or (DEV_SHOP_WEBHOOK_SECRET if mode == "sandbox" else ""),
        shop_webhook_retry_s=_seconds_list(env, "SHOP_WEBHOOK_RETRY_S", problems),
    )
    problems.extend(_check(values))
    if problems:
        raise SettingsError(problems)
    return values


def normalise_database_url(url: str) -> str:
    """Accept the seed's `postgresql://user:pass@host/db` and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _number(env: dict[str, str], name: str, default: float, problems: list[str]) -> float:
    return _parsed(env, name, default, problems, parse=float, kind="a number")


def _integer(env: dict[str, str], name: str, default: int, problems: list[str]) -> int:
    return _parsed(env, name, default, problems, parse=int, kind="a whole number")


def _parsed(
    env: dict[str, str],
    name: str,
    default: N,
    problems: list[str],
    *,
    parse: Callable[[str], N],
    kind: str,
) -> N:
    """`env[name]` read by `parse` and never negative; the default (and a problem) if not."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        problems.append(f"{name} must be {kind}, not {raw!r}")
        return default
    if value < 0:
        problems.append(f"{name} must not be negative")
        return default
    return value


def _seconds_list(env: dict[str, str], name: str, problems: list[str]) -> tuple[float, ...]:
    """Comma-separated seconds, each 0 or more; the default schedule when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return SHOP_WEBHOOK_RETRY_S
    try:
        steps = tuple(float(part) for part in raw.split(","))
    except ValueError:
        steps = ()
    if not steps or any(step < 0 for step in steps):
        problems.append(f"{name} must be comma-separated seconds (e.g. 5,300,1800), not {raw!r}")
        return SHOP_WEBHOOK_RETRY_S
    return steps


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


def _networks(env: dict[str, str], mode: str, problems: list[str]) -> tuple[Network, ...]:
    default = SAFARICOM_CALLBACK_IPS if mode == "production" else ""
    raw = env.get("MPESA_CALLBACK_ALLOWED_IPS", default)
    return _cidrs("MPESA_CALLBACK_ALLOWED_IPS", raw, problems)


def _cidrs(name: str, raw: str, problems: list[str]) -> tuple[Network, ...]:
    nets: list[Network] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if part == "*":  # "anyone", said explicitly
            nets.extend((ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            problems.append(f"{name} has a bad address or range: {part!r}")
    return tuple(nets)


def _switch(env: dict[str, str], name: str, problems: list[str]) -> bool:
    raw = env.get(name, "on").strip().lower()
    if raw not in ("on", "off"):
        problems.append(f"{name} must be on or off, not {raw!r}")
    return raw != "off"


def _rate(env: dict[str, str], name: str, default: Rate, problems: list[str]) -> Rate:
    """A `count/seconds` limit, e.g. `3/600`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    count, _, window = raw.partition("/")
    if not (count.strip().isdigit() and window.strip().isdigit()):
        problems.append(f"{name} must be count/seconds, e.g. 3/600, not {raw!r}")
        return default
    if int(count) < 1 or int(window) < 1:
        problems.append(f"{name} needs a count and a window of at least 1")
        return default
    return int(count), int(window)


def _check(s: Settings) -> list[str]:
    problems: list[str] = []
    if not s.mpesa_business_shortcode.isdigit() or not 5 <= len(s.mpesa_business_shortcode) <= 7:
        problems.append("MPESA_BUSINESS_SHORTCODE must be 5 to 7 digits")
    if not s.mpesa_party_b.isdigit():
        problems.append("MPESA_PARTY_B must be digits (the till or PayBill number)")
    if s.mpesa_transaction_type not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        problems.append(
            "MPESA_TRANSACTION_TYPE must be CustomerPayBillOnline or CustomerBuyGoodsOnline"
        )
    if not 1 <= len(s.mpesa_account_reference) <= 12:
        problems.append("MPESA_ACCOUNT_REFERENCE must be 1 to 12 characters")
    if not 0 <= s.mpesa_rollout_percent <= 100:
        problems.append("MPESA_ROLLOUT_PERCENT must be 0 to 100")
    if not 1 <= len(s.mpesa_transaction_desc) <= 13:
        problems.append("MPESA_TRANSACTION_DESC must be 1 to 13 characters")
    urls = (("MPESA_CALLBACK_URL", s.mpesa_callback_url), ("MPESA_BASE_URL", s.mpesa_base_url))
    for name, url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            problems.append(f"{name} must be an http(s) URL, not {url!r}")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("REDIS_URL must start with redis://, rediss:// or unix://")
    if s.payment_expiry_s <= s.reconcile_after_s:
        problems.append("PAYMENT_EXPIRY_S must be longer than RECONCILE_AFTER_S")
    problems.extend(_trust_problems(s))
    problems.extend(_alert_problems(s))
    problems.extend(_shop_webhook_problems(s))
    if s.production:
        problems.extend(_production_problems(s))
    return problems


def _trust_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    if s.ops_token_max_hours <= 0:
        problems.append("OPS_TOKEN_MAX_HOURS must be more than 0")
    if s.mpesa_callback_signature not in ("off", "required"):
        problems.append("MPESA_CALLBACK_SIGNATURE must be off or required")
    if s.retention_days < 1:
        problems.append("RETENTION_DAYS must be at least 1")
    if s.daraja_max_concurrency < 1:
        problems.append("DARAJA_MAX_CONCURRENCY must be at least 1")
    return problems


def _alert_problems(s: Settings) -> list[str]:
    problems = [
        f"{name} must be more than 0"
        for name, value in (
            ("ALERT_INTERVAL_S", s.alert_interval_s),
            ("ALERT_SUCCESS_WINDOW_S", s.alert_success_window_s),
            ("ALERT_MIN_PAYMENTS", s.alert_min_payments),
            ("ALERT_QUEUE_AGE_S", s.alert_queue_age_s),
            ("ALERT_REPEAT_S", s.alert_repeat_s),
        )
        if value <= 0
    ]
    if not 0 <= s.alert_success_rate_min <= 1:
        problems.append("ALERT_SUCCESS_RATE_MIN must be between 0 and 1 (e.g. 0.5)")
    url = urlsplit(s.alert_webhook_url)
    if s.alert_webhook_url and (url.scheme not in ("http", "https") or not url.netloc):
        problems.append(f"ALERT_WEBHOOK_URL must be an http(s) URL, not {s.alert_webhook_url!r}")
    return problems


def _shop_webhook_problems(s: Settings) -> list[str]:
    problems = []
    url = urlsplit(s.shop_webhook_url)
    if s.shop_webhook_url and (url.scheme not in ("http", "https") or not url.netloc):
        problems.append(f"SHOP_WEBHOOK_URL must be an http(s) URL, not {s.shop_webhook_url!r}")
    if s.shop_webhook_secret:
        try:
            webhook_secret_bytes(s.shop_webhook_secret)
        except ValueError as exc:
            low, high = WEBHOOK_SECRET_BYTES
            problems.append(
                f"SHOP_WEBHOOK_SECRET must be whsec_ then the base64 of {low} to {high} random "
                f"bytes ({exc}); make one with: echo whsec_$(openssl rand -base64 32)"
            )
    return problems


def _production_problems(s: Settings) -> list[str]:
    """Each unsafe production setting, one line each (issue 8's guard table)."""
    problems: list[str] = []
    if s.mpesa_business_shortcode == SANDBOX_SHORTCODE or s.mpesa_passkey == SANDBOX_PASSKEY:
        problems.append("production refuses the sandbox shortcode or passkey")
    if len(s.mpesa_passkey) < MIN_PASSKEY:
        problems.append(
            f"production needs a real MPESA_PASSKEY (at least {MIN_PASSKEY} characters)"
        )
    if not s.mpesa_consumer_key.strip() or not s.mpesa_consumer_secret.strip():
        problems.append("production needs MPESA_CONSUMER_KEY and MPESA_CONSUMER_SECRET")
    elif DEV_CONSUMER_KEY in (s.mpesa_consumer_key, s.mpesa_consumer_secret) or (
        DEV_CONSUMER_SECRET in (s.mpesa_consumer_key, s.mpesa_consumer_secret)
    ):
        problems.append("production refuses the development MPESA_CONSUMER_KEY/SECRET")
    if not s.mpesa_base_url.startswith("https://"):
        problems.append("production needs an https:// MPESA_BASE_URL")
    problems.extend(_callback_url_problems(s.mpesa_callback_url))
    if _allows_anyone(s.mpesa_callback_allowed_ips):
        problems.append(
            "production refuses an MPESA_CALLBACK_ALLOWED_IPS that allows any address "
            "(leave it unset for Safaricom's list)"
        )
    for name, secret, default in (
        ("JWT_SECRET", s.jwt_secret, Settings.jwt_secret),
        ("WEBHOOK_SECRET", s.webhook_secret, Settings.webhook_secret),
    ):
        if secret == default or len(secret) < MIN_SECRET:
            problems.append(f"production needs a {name} of at least {MIN_SECRET} characters")
    if s.jwt_secret == s.webhook_secret:
        problems.append("production needs JWT_SECRET and WEBHOOK_SECRET to differ")
    if not s.redis_url:
        problems.append("production needs REDIS_URL")
    if s.database_url.startswith("sqlite"):
        problems.append("production needs a PostgreSQL DATABASE_URL")
    if not s.api_auth:
        problems.append("production refuses API_AUTH=off (anyone could start payments)")
    problems.extend(_production_webhook_problems(s))
    return problems


def _production_webhook_problems(s: Settings) -> list[str]:
    problems = []
    if s.shop_webhook_url and not s.shop_webhook_url.startswith("https://"):
        problems.append("production needs an https:// SHOP_WEBHOOK_URL")
    if s.shop_webhook_url and s.shop_webhook_secret in ("", DEV_SHOP_WEBHOOK_SECRET):
        problems.append("production needs SHOP_WEBHOOK_SECRET (whsec_...) with SHOP_WEBHOOK_URL")
    return problems


def _callback_url_problems(url: str) -> list[str]:
    if not url.startswith("https://"):
        return ["production needs an https:// MPESA_CALLBACK_URL"]
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return ["production needs a public MPESA_CALLBACK_URL, not a local host name"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name: Daraja resolves it, we cannot tell from here
    if not ip.is_global:
        return ["production needs a public MPESA_CALLBACK_URL, not a loopback/private address"]
    return []


def _allows_anyone(nets: tuple[Network, ...]) -> bool:
    """An empty allow-list, or one holding 0.0.0.0/0 or ::/0 (what `*` would mean)."""
    return not nets or any(net.prefixlen == 0 for net in nets)

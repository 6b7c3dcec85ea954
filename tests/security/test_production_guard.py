"""The production guard: each unsafe setting is refused with one line that names it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from khalex_pay import ops_cli
from khalex_pay.cli import main
from plumbing.settings import Settings, SettingsError, load_settings

pytestmark = pytest.mark.integration  # the security suite runs as one; no services needed here

#: A production configuration the guard accepts; each row below spoils one thing.
SAFE = {
    "MPESA_ENVIRONMENT": "production",
    "MPESA_CONSUMER_KEY": "k" * 40,
    "MPESA_CONSUMER_SECRET": "s" * 40,
    "MPESA_BUSINESS_SHORTCODE": "600100",
    "MPESA_PASSKEY": "a1" * 32,
    "MPESA_CALLBACK_URL": "https://pay.khalexchess.co.ke/api/payments/webhook",
    "JWT_SECRET": "j" * 40,
    "WEBHOOK_SECRET": "w" * 40,
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgresql://shop:pw@db/khalex",
}


def test_a_safe_production_configuration_starts() -> None:
    s = load_settings(SAFE, dotenv=None)

    assert s.production
    assert not s.callback_ip_allowed("8.8.8.8")  # Safaricom's list by default
    assert s.callback_ip_allowed("196.201.214.200")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MPESA_CALLBACK_ALLOWED_IPS", "*", "MPESA_CALLBACK_ALLOWED_IPS"),
        ("MPESA_CALLBACK_ALLOWED_IPS", "0.0.0.0/0", "MPESA_CALLBACK_ALLOWED_IPS"),
        ("MPESA_CALLBACK_ALLOWED_IPS", "196.201.214.200,::/0", "MPESA_CALLBACK_ALLOWED_IPS"),
        ("MPESA_BASE_URL", "http://api.safaricom.co.ke", "https:// MPESA_BASE_URL"),
        ("MPESA_PASSKEY", "x", "MPESA_PASSKEY"),
        ("MPESA_CONSUMER_KEY", "", "MPESA_CONSUMER_KEY"),
        ("MPESA_CONSUMER_SECRET", "", "MPESA_CONSUMER_SECRET"),
        ("MPESA_CONSUMER_KEY", "khalex-dev-key", "MPESA_CONSUMER_KEY"),
        ("JWT_SECRET", "w" * 40, "differ"),
        ("JWT_SECRET", "short", "JWT_SECRET"),
        ("JWT_SECRET", "dev-jwt-secret-change-me", "JWT_SECRET"),
        ("WEBHOOK_SECRET", "short", "WEBHOOK_SECRET"),
        ("WEBHOOK_SECRET", "dev-webhook-secret-change-me", "WEBHOOK_SECRET"),
        ("MPESA_CALLBACK_URL", "http://pay.khalexchess.co.ke/cb", "https://"),
        ("MPESA_CALLBACK_URL", "https://127.0.0.1/cb", "loopback/private"),
        ("MPESA_CALLBACK_URL", "https://10.0.0.5/cb", "loopback/private"),
        ("MPESA_CALLBACK_URL", "https://192.168.1.10/cb", "loopback/private"),
        ("MPESA_CALLBACK_URL", "https://169.254.169.254/cb", "loopback/private"),
        ("MPESA_CALLBACK_URL", "https://[::1]/cb", "loopback/private"),
        ("MPESA_CALLBACK_URL", "https://localhost/cb", "local host name"),
        ("MPESA_CALLBACK_SIGNATURE", "maybe", "MPESA_CALLBACK_SIGNATURE"),
        ("RETENTION_DAYS", "0", "RETENTION_DAYS"),
        ("REDIS_URL", "", "REDIS_URL"),
        ("DATABASE_URL", "sqlite:///x.db", "PostgreSQL"),
    ],
)
def test_production_refuses_an_unsafe_setting_with_one_line_naming_it(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({**SAFE, name: value}, dotenv=None)

    assert len(refused.value.problems) == 1, refused.value.problems
    assert says in refused.value.problems[0]


def test_an_empty_allow_list_in_production_is_unset_so_safaricoms_list() -> None:
    s = load_settings({**SAFE, "MPESA_CALLBACK_ALLOWED_IPS": " "}, dotenv=None)

    assert not s.callback_ip_allowed("8.8.8.8")
    assert s.callback_ip_allowed("196.201.214.200")


def test_sandbox_allows_any_sender_and_the_simulators_http_url() -> None:
    s = load_settings({"MPESA_CALLBACK_ALLOWED_IPS": "", "MPESA_BASE_URL": "http://127.0.0.1:8001"})

    assert s.callback_ip_allowed("8.8.8.8")


def test_ops_token_warns_when_signed_with_the_public_default_secret_in_sandbox(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("MPESA_ENVIRONMENT", "sandbox")

    assert main(["ops-token"]) == 0

    out, err = capsys.readouterr()
    assert out.count(".") == 2  # a JWT
    assert "public default JWT_SECRET" in err


def test_ops_token_refuses_the_public_default_secret_outside_sandbox(
    capsys: pytest.CaptureFixture[str],
) -> None:
    production = dataclasses.replace(load_settings(SAFE), jwt_secret=Settings.jwt_secret)

    token = ops_cli.COMMANDS["ops-token"]
    assert token(production, argparse.Namespace(subject="op", hours=1.0)) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "refusing" in err

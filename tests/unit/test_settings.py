"""Settings: defaults that run, bad values named one per line, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from khalex_pay.cli import main
from plumbing.settings import SettingsError, load_settings, read_dotenv
from tests.conftest import TEST_DATA_KEYS, TEST_INDEX_KEY

pytestmark = pytest.mark.unit

#: Personal-data keys, which production requires.
KEYS = {"DATA_ENCRYPTION_KEYS": TEST_DATA_KEYS, "BLIND_INDEX_KEY": TEST_INDEX_KEY}


def test_defaults_run_the_embedded_sandbox() -> None:
    s = load_settings({})

    assert s.mpesa_environment == "sandbox"
    assert s.database_url.startswith("sqlite")
    assert (s.reconcile_after_s, s.payment_expiry_s) == (20, 180)
    assert s.callback_ip_allowed("8.8.8.8")


def test_seed_style_database_url_gets_the_psycopg_driver() -> None:
    s = load_settings({"DATABASE_URL": "postgresql://shop:pw@db/khalex"})

    assert s.database_url == "postgresql+psycopg://shop:pw@db/khalex"


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings(
            {
                "MPESA_ENVIRONMENT": "staging",
                "RECONCILE_AFTER_S": "soon",
                "MPESA_ACCOUNT_REFERENCE": "ThisIsTooLongForDaraja",
                "MPESA_CALLBACK_ALLOWED_IPS": "196.201.214.200,not-an-ip",
            }
        )

    assert len(bad.value.problems) == 4
    assert any("MPESA_ENVIRONMENT" in p for p in bad.value.problems)
    assert any("RECONCILE_AFTER_S" in p for p in bad.value.problems)


def test_production_refuses_sandbox_credentials_http_callbacks_and_default_secrets() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings({"MPESA_ENVIRONMENT": "production"})

    text = "\n".join(bad.value.problems)
    for expected in ("sandbox shortcode", "https://", "JWT_SECRET", "WEBHOOK_SECRET", "REDIS_URL"):
        assert expected in text


def test_production_defaults_the_allow_list_to_safaricoms_addresses() -> None:
    s = load_settings({
        "MPESA_ENVIRONMENT": "production",
        "MPESA_CONSUMER_KEY": "key", "MPESA_CONSUMER_SECRET": "secret",
        "MPESA_BUSINESS_SHORTCODE": "600100", "MPESA_PASSKEY": "p" * 64,
        "MPESA_CALLBACK_URL": "https://pay.khalexchess.co.ke/api/payments/webhook",
        "JWT_SECRET": "j" * 40, "WEBHOOK_SECRET": "w" * 40, "REDIS_URL": "redis://r:6379/0",
        "DATABASE_URL": "postgresql://u:p@db/khalex", **KEYS,
    })  # fmt: skip

    assert s.callback_ip_allowed("196.201.214.200")
    assert not s.callback_ip_allowed("10.0.0.1")


def test_cidr_ranges_are_accepted_in_the_allow_list() -> None:
    s = load_settings({"MPESA_CALLBACK_ALLOWED_IPS": "196.201.212.0/24"})

    assert s.callback_ip_allowed("196.201.212.69")
    assert not s.callback_ip_allowed("196.201.213.44")


def test_dotenv_lines_are_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# shop\nexport RECONCILE_AFTER_S=30\nPAYMENT_EXPIRY_S='240'\n")

    assert read_dotenv(env_file) == {"RECONCILE_AFTER_S": "30", "PAYMENT_EXPIRY_S": "240"}
    s = load_settings({"PAYMENT_EXPIRY_S": "300"}, dotenv=env_file)
    assert (s.reconcile_after_s, s.payment_expiry_s) == (30, 300)


def test_command_exits_non_zero_with_one_line_per_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MPESA_ENVIRONMENT", "staging")
    monkeypatch.setenv("PAYMENT_EXPIRY_S", "-1")

    assert main(["migrate"]) == 2

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("khalex-pay: bad setting:") for line in lines)


def test_caller_and_limit_settings_default_to_auth_on_and_the_contracts_limits() -> None:
    s = load_settings({})

    assert s.api_auth is True
    assert (s.rate_limit_phone, s.rate_limit_ip, s.rate_limit_key) == (
        (3, 600),
        (30, 60),
        (600, 60),
    )
    assert (s.trusted_proxies, s.cors_allow_origins, s.metrics_token) == ((), (), "")
    assert s.ops_token_max_hours == 24


def test_caller_and_limit_settings_are_read_and_bad_ones_named() -> None:
    s = load_settings({
        "API_AUTH": "off", "RATE_LIMIT_PHONE": "5/60", "TRUSTED_PROXIES": "10.0.0.0/8",
        "CORS_ALLOW_ORIGINS": "https://shop.example, https://www.shop.example",
    })  # fmt: skip
    with pytest.raises(SettingsError) as bad:
        load_settings({
            "API_AUTH": "maybe", "RATE_LIMIT_IP": "30 per minute", "RATE_LIMIT_KEY": "0/60",
            "TRUSTED_PROXIES": "proxy.local", "OPS_TOKEN_MAX_HOURS": "0",
        })  # fmt: skip

    assert s.api_auth is False
    assert s.rate_limit_phone == (5, 60)
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8"]
    assert s.cors_allow_origins == ("https://shop.example", "https://www.shop.example")
    names = (
        "API_AUTH",
        "RATE_LIMIT_IP",
        "RATE_LIMIT_KEY",
        "TRUSTED_PROXIES",
        "OPS_TOKEN_MAX_HOURS",
    )
    assert len(bad.value.problems) == len(names)
    for name in names:
        assert any(p.startswith(name) for p in bad.value.problems), name


@pytest.mark.parametrize("command", ["api", "worker", "scheduler"])
def test_servers_refuse_to_start_without_the_personal_data_keys(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "")
    monkeypatch.setenv("BLIND_INDEX_KEY", "")

    assert main([command]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert "DATA_ENCRYPTION_KEYS and BLIND_INDEX_KEY are needed" in line

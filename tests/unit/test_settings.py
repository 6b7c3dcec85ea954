"""Settings: defaults that run, bad values named one per line, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from khalex_pay.cli import main
from plumbing.settings import SettingsError, load_settings, read_dotenv

pytestmark = pytest.mark.unit


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
        "DATABASE_URL": "postgresql://u:p@db/khalex",
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


@pytest.mark.parametrize(
    "secret",
    ["short", "has spaces in it 0123456789abcdef", "x" * 65, "abc-mpesa-0123456789abcdefgh"],
)
def test_a_c2b_url_secret_must_be_long_url_safe_and_free_of_words_daraja_bans(secret: str) -> None:
    with pytest.raises(SettingsError, match="C2B_URL_SECRET"):
        load_settings({"C2B_URL_SECRET": secret})


def test_a_good_c2b_url_secret_is_kept() -> None:
    secret = "Zq8_wT3-kLm9Rv2Pn4Hx7Jc5"

    assert load_settings({"C2B_URL_SECRET": secret}).c2b_url_secret == secret


def test_an_empty_value_is_unset_so_the_default_stays(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET=from-the-file-but-long-enough-for-it\n")

    s = load_settings(
        {"MPESA_TRANSACTION_TYPE": "", "DATABASE_URL": " ", "JWT_SECRET": "", "LOG_LEVEL": ""},
        dotenv=env_file,
    )

    assert s.mpesa_transaction_type == "CustomerPayBillOnline"
    assert s.database_url == "sqlite:///khalex-pay.db"
    assert s.jwt_secret == "from-the-file-but-long-enough-for-it"
    assert s.log_level == "INFO"


def test_log_level_is_read_from_the_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=debug\n")

    assert load_settings({}, dotenv=env_file).log_level == "DEBUG"


def test_a_bad_value_says_whether_it_came_from_the_environment_or_dotenv(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RECONCILE_AFTER_S=soon\nLOG_LEVEL=chatty\n")

    with pytest.raises(SettingsError) as bad:
        load_settings({"PAYMENT_EXPIRY_S": "-1"}, dotenv=env_file)

    assert sorted(bad.value.problems) == [
        "LOG_LEVEL must be DEBUG or INFO or WARNING or ERROR, not 'CHATTY' (from .env)",
        "PAYMENT_EXPIRY_S must not be negative (from the environment)",
        "RECONCILE_AFTER_S must be a whole number, not 'soon' (from .env)",
    ]


def test_a_rule_between_settings_names_where_each_was_set(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RECONCILE_AFTER_S=300\n")

    with pytest.raises(SettingsError) as bad:
        load_settings({"PAYMENT_EXPIRY_S": "200"}, dotenv=env_file)

    assert bad.value.problems == [
        "PAYMENT_EXPIRY_S must be longer than RECONCILE_AFTER_S "
        "(PAYMENT_EXPIRY_S from the environment; RECONCILE_AFTER_S from .env)"
    ]


def test_derived_defaults_follow_the_environment_and_the_shortcode() -> None:
    s = load_settings({"MPESA_BUSINESS_SHORTCODE": "600100"})

    assert s.mpesa_party_b == "600100"
    assert s.mpesa_base_url == "https://sandbox.safaricom.co.ke"


def test_settings_command_prints_values_with_their_source_and_hides_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", "a-secret-nobody-should-see-printed")
    monkeypatch.setenv("DATABASE_URL", "postgresql://shop:pw@db/khalex")

    assert main(["settings"]) == 0

    out = capsys.readouterr().out
    assert "JWT_SECRET=(hidden)  # the environment" in out
    assert "DATABASE_URL=postgresql+psycopg://shop:***@db/khalex  # the environment" in out
    assert "RECONCILE_AFTER_S=20  # default" in out
    assert "a-secret-nobody" not in out

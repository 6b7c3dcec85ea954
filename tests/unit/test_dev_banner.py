from __future__ import annotations

from khalex_pay.boot.dev import banner
from plumbing.settings import Settings


def test_the_dev_banner_names_its_pages_the_paybill_and_this_runs_credentials() -> None:
    settings = Settings(mpesa_base_url="http://127.0.0.1:8000", mpesa_business_shortcode="600100")

    text = banner(settings, "kp_live_key", "ops.jwt.token", 8)

    for page in ("/ ", "/phone", "/ops", "/schema"):
        assert f"http://127.0.0.1:8000{page}" in text
    assert "PayBill 600100" in text
    assert "Didn't get the prompt?" in text
    assert "kp_live_key" in text
    assert "operator token (8 h): ops.jwt.token" in text
